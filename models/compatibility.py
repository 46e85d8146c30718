"""Checks that a model made elsewhere (a .keras file, a plug-in) fits the data."""

from kerasrun.core.errors import UsageError


def check_model_fits_data(model, input_shape, head, source):
    """Refuses a model whose input or output does not match the dataset.

    A model whose shapes are not known yet (a subclassed or unbuilt model)
    passes; Keras will complain when it first sees data.

    Args:
        model: The `keras.Model` to check.
        input_shape: The shape of one example, without the batch axis; None
            when the inputs are checked elsewhere (a table's model takes named columns).
        head: The `Head` the task needs.
        source: How the user named the model, e.g. "--model='old.keras'",
            used as the start of messages.

    Raises:
        UsageError: if the model has several inputs or outputs, takes a
            different input shape, or has an output of another width than the task's.
    """
    model_inputs = None if input_shape is None else _known_shapes(model, "inputs")
    if model_inputs is not None:
        expected = tuple(input_shape)
        takes = _only_shape(model_inputs, "inputs", source)[1:]
        if not _shapes_agree(takes, expected):
            raise UsageError(
                f"{source}: the model takes input of shape {takes} "
                f"but the dataset gives {expected}"
            )
    model_outputs = _known_shapes(model, "outputs")
    if model_outputs is not None:
        predicts = _only_shape(model_outputs, "outputs", source)[-1]
        if predicts is not None and predicts != head.units:
            raise UsageError(f"{source}: {width_mismatch(predicts, head)}")


def _known_shapes(model, attribute):
    try:
        tensors = getattr(model, attribute)
    except (AttributeError, ValueError):  # Not built: no shapes to compare yet.
        return None
    if not tensors:
        return None
    return [tuple(tensor.shape) for tensor in tensors]


def _only_shape(shapes, what, source):
    if len(shapes) != 1:
        raise UsageError(
            f"{source}: the model has {len(shapes)} {what}; the runner needs exactly one"
        )
    return shapes[0]


def _shapes_agree(model_shape, data_shape):
    # An axis the model leaves as None accepts any size.
    return len(model_shape) == len(data_shape) and all(
        wanted is None or wanted == given for wanted, given in zip(model_shape, data_shape)
    )



def width_mismatch(predicts, head):
    """Says that a model's output of width `predicts` does not fit the head the task needs."""
    if head.task == "classification":
        return f"the model predicts {predicts} classes but the dataset has {head.units}"
    return (f"the model has {predicts} outputs but the {head.task} task needs {head.units} "
            f"({head.describe()})")
