"""`cnn`: a small convolutional network for image input."""

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer
from kerasrun.models.image_input import require_image_input

CONV_FILTERS = (32, 64)
DROPOUT_RATE = 0.25


@BUILT_IN_MODELS.register("cnn")
def build_cnn(input_shape, head):
    """Builds two conv/pool blocks, then Flatten -> Dropout -> the task's head.

    Convolutions and pooling use "same" padding, so even an 8x8 (or 1x1)
    image never shrinks below one pixel.

    Args:
        input_shape: The shape of one example, (height, width, channels).
        head: The `Head` the model ends in.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        UsageError: if `input_shape` is not (height, width, channels).
    """
    require_image_input(input_shape, "cnn", BUILT_IN_MODELS.flag)
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for filters in CONV_FILTERS:
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(DROPOUT_RATE)(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="cnn")
