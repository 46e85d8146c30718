"""`resnet`: a small residual network for image input."""

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer
from kerasrun.models.image_input import require_image_input

# Three stages of two blocks each, in the spirit of the CIFAR ResNets; each
# stage after the first halves the image and doubles the width.
STAGE_FILTERS = (16, 32, 64)
BLOCKS_PER_STAGE = 2


@BUILT_IN_MODELS.register("resnet")
def build_resnet(input_shape, head):
    """Builds a stem, six residual blocks, global average pooling, the task's head.

    Strided convolutions use "same" padding, so an 8x8 image goes down to
    2x2 and never below one pixel.

    Args:
        input_shape: The shape of one example, (height, width, channels).
        head: The `Head` the model ends in.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        UsageError: if `input_shape` is not (height, width, channels).
    """
    require_image_input(input_shape, "resnet", BUILT_IN_MODELS.flag)
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    x = _conv_bn(inputs, STAGE_FILTERS[0], strides=1)
    x = keras.layers.ReLU()(x)
    for stage, filters in enumerate(STAGE_FILTERS):
        for block in range(BLOCKS_PER_STAGE):
            downsample = stage > 0 and block == 0
            x = _residual_block(x, filters, strides=2 if downsample else 1)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="resnet")


def _residual_block(x, filters, strides):
    import keras

    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        # The identity no longer matches in size or width; project it.
        shortcut = _conv_bn(x, filters, strides=strides, kernel_size=1)
    y = _conv_bn(x, filters, strides=strides)
    y = keras.layers.ReLU()(y)
    y = _conv_bn(y, filters, strides=1)
    y = keras.layers.Add()([shortcut, y])
    return keras.layers.ReLU()(y)


def _conv_bn(x, filters, strides, kernel_size=3):
    import keras

    # No bias: the batch norm that follows has its own offset.
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False
    )(x)
    return keras.layers.BatchNormalization()(x)
