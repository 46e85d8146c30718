"""`resnet`: a small residual network for image input."""

import functools

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer
from kerasrun.models.image_input import require_image_input
from kerasrun.models.layers import activation_layer, regularizer


@BUILT_IN_MODELS.register("resnet")
def build_resnet(input_shape, head, *, filters=(16, 32, 64), blocks=2, dropout=0.0, activation="relu",
                 normalization="batch", l2=0.0):
    """Builds a stem, `blocks` residual blocks per stage, global average pooling, the task's head.

    The defaults (those of the --resnet_* flags) are three stages of two
    blocks each, in the spirit of the CIFAR ResNets: each stage after the
    first halves the image and (16, 32, 64) doubles the width. Strided
    convolutions use "same" padding, so an 8x8 image goes down to 2x2 and
    never below one pixel.

    Args:
        input_shape: The shape of one example, (height, width, channels).
        head: The `Head` the model ends in.
        filters: The width of each stage.
        blocks: Residual blocks per stage.
        dropout: Dropout rate before the head; 0 adds no Dropout layer.
        activation: A Keras activation name.
        normalization: batch, layer or none, after each convolution.
        l2: L2 penalty on the convolution kernels; 0 for none.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        UsageError: if `input_shape` is not (height, width, channels).
    """
    require_image_input(input_shape, "resnet", BUILT_IN_MODELS.flag)
    import keras

    conv = functools.partial(_conv_norm, normalization=normalization, l2=l2)
    inputs = keras.Input(shape=tuple(input_shape))
    x = conv(inputs, filters[0], strides=1)
    x = activation_layer(activation)(x)
    for stage, width in enumerate(filters):
        for block in range(blocks):
            downsample = stage > 0 and block == 0
            x = _residual_block(x, width, strides=2 if downsample else 1, conv=conv, activation=activation)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout)(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="resnet")


def _residual_block(x, filters, strides, conv, activation):
    import keras

    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        # The identity no longer matches in size or width; project it.
        shortcut = conv(x, filters, strides=strides, kernel_size=1)
    y = conv(x, filters, strides=strides)
    y = activation_layer(activation)(y)
    y = conv(y, filters, strides=1)
    y = keras.layers.Add()([shortcut, y])
    return activation_layer(activation)(y)


def _conv_norm(x, filters, strides, kernel_size=3, normalization="batch", l2=0.0):
    import keras

    # No bias before a normalisation: it has its own offset.
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=normalization == "none",
        kernel_regularizer=regularizer(l2),
    )(x)
    if normalization == "batch":
        return keras.layers.BatchNormalization()(x)
    if normalization == "layer":
        return keras.layers.LayerNormalization()(x)
    return x
