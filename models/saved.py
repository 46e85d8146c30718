"""Models saved as `.keras` files, loaded so training continues from their weights."""

import zipfile

from kerasrun.core.errors import UsageError, first_line
from kerasrun.models.compatibility import check_model_fits_data


def load_saved_model(path, input_shape, head, safe_mode=True, flag="--model"):
    """Loads a `.keras` file, uncompiled, and checks it fits the dataset.

    Args:
        path: The path of an existing `.keras` file.
        input_shape: The shape of one example, without the batch axis.
        head: The `Head` the task needs; the model's output must be as wide.
        safe_mode: Passed to `keras.saving.load_model`; when True, a file
            holding code (Lambda layers) is refused. Defaults to True.
        flag: The flag the file was named with, for messages. Defaults to
            "--model".

    Returns:
        The loaded `keras.Model`, with its weights and without an optimizer.

    Raises:
        UsageError: if the file cannot be loaded, does not hold a model, or
            the model's input or output does not fit the dataset.
    """
    import keras

    source = f"{flag}={path!r}"
    if not zipfile.is_zipfile(path):
        # Keras would report such a file as "not found", which misleads.
        raise UsageError(
            f"{source}: cannot load this .keras file: it is not a zip archive "
            f"(damaged, or saved in another format)"
        )
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as error:  # A damaged or foreign file fails in many ways.
        reason = first_line(error)
        if safe_mode and "safe_mode" in reason:
            # Keras's hint names its Python argument; ours is a flag.
            reason = ("it holds Python code (a Lambda layer), which safe mode refuses to run; "
                      "if you trust the file, add --model_safe_mode False")
        raise UsageError(f"{source}: cannot load this .keras file: {reason}") from None
    if not isinstance(model, keras.Model):
        raise UsageError(f"{source}: the file holds a {type(model).__name__}, not a model")
    check_model_fits_data(model, input_shape, head, source)
    return model
