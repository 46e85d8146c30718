"""Checks shared by every model that needs image input."""

from kerasrun.core.errors import UsageError


def require_image_input(input_shape, model_name, flag="--model"):
    """Refuses an input shape that is not (height, width, channels).

    Args:
        input_shape: The shape of one example, without the batch axis.
        model_name: The model that needs images, for the message.
        flag: The flag the model was named with, for the message. Defaults
            to "--model".

    Raises:
        UsageError: if `input_shape` does not have exactly three axes.
    """
    if len(input_shape) != 3:
        raise UsageError(
            f"{flag}={model_name} needs image input (height, width, channels); "
            f"the dataset gives {tuple(input_shape)}"
        )
