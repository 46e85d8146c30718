"""Models saved as `.keras` files, loaded so training continues from their weights."""

import zipfile

from kerasrun.core.errors import UsageError, first_line
from kerasrun.models.compatibility import check_model_fits_data


def load_saved_model(path, input_shape, head, safe_mode=True, flag="--model"):
    """Loads a `.keras` file, uncompiled, and checks it fits the dataset (not a table: see `load_table_model`).

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
            the model's input or output does not fit the dataset, or the model
            takes a table's columns (a checkpoint of a CSV run).
    """
    source = f"{flag}={path!r}"
    model = _load(path, safe_mode, source)
    columns = table_columns(model)
    if columns is not None:
        raise UsageError(f"{source}: the model takes a table's columns ({', '.join(columns)}), "
                         f"but the dataset is not a table (a CSV file)")
    check_model_fits_data(model, input_shape, head, source)
    return model


def load_table_model(path, kinds, head, safe_mode=True, flag="--model"):
    """Loads a `.keras` file saved from a table (it holds its FeatureSpace), to take the table's columns as it is.

    Args:
        path: The path of an existing `.keras` file.
        kinds: The table's {column: kind}.
        head: The `Head` the task needs; the model's output must be as wide.
        safe_mode: As for `load_saved_model`.
        flag: The flag the file was named with, for messages.

    Returns:
        The loaded `keras.Model` if it takes named columns (a dict of
        inputs), checked to be the table's; None for a model of one plain
        input, which the runner puts behind a FeatureSpace like a model it builds.

    Raises:
        UsageError: if the file cannot be loaded, or the model's input names
            are not the table's columns, or its output does not fit the task.
    """
    source = f"{flag}={path!r}"
    model = _load(path, safe_mode, source)
    columns = table_columns(model)
    if columns is None:
        return None
    missing = sorted(set(kinds) - set(columns))
    extra = sorted(set(columns) - set(kinds))
    if missing or extra:
        differ = "; ".join(part for part in (f"the model lacks {', '.join(missing)}" if missing else "",
                                             f"the table lacks {', '.join(extra)}" if extra else "") if part)
        raise UsageError(f"{source}: the model takes the columns {', '.join(columns)}, not the table's "
                         f"{', '.join(kinds)} ({differ})")
    check_model_fits_data(model, None, head, source)
    return model


def load_model_file(path, safe_mode=True, flag="--model"):
    """Loads a `.keras` file as it is, uncompiled, for using it (--mode predict), not fitting it to a dataset.

    Raises:
        UsageError: if the file cannot be loaded or does not hold a model.
    """
    return _load(path, safe_mode, f"{flag}={path!r}")


def table_columns(model):
    """Returns the sorted names of the columns a model takes as a dict of inputs (a table's model), else None."""
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return None
    return sorted(inputs) if isinstance(inputs, dict) else None


def _load(path, safe_mode, source):
    import keras

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
    return model


def save_model(model, path):
    """Saves `model` as a .keras file at `path` in one step: a kill leaves the old file or the new one."""
    from kerasrun.core import files

    files.replace_atomically(path, model.save)
