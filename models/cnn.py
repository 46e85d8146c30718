"""`cnn`: a small convolutional network for image input."""

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer
from kerasrun.models.layers import normalize_and_activate, regularizer
from kerasrun.models.image_input import require_image_input



@BUILT_IN_MODELS.register("cnn")
def build_cnn(input_shape, head, *, filters=(32, 64), kernel_size=3, dropout=0.25, activation="relu",
              normalization="none", l2=0.0):
    """Builds one conv/pool block per entry of `filters`, then Flatten -> Dropout -> the task's head.

    Convolutions and pooling use "same" padding, so even an 8x8 (or 1x1)
    image never shrinks below one pixel. The defaults (those of the --cnn_*
    flags) are two blocks of 32 and 64 3x3 ReLU filters and Dropout(0.25).

    Args:
        input_shape: The shape of one example, (height, width, channels).
        head: The `Head` the model ends in.
        filters: The filters of each block's convolution.
        kernel_size: Height and width of the kernels.
        dropout: Dropout rate before the head; 0 adds no Dropout layer.
        activation: A Keras activation name.
        normalization: none, batch or layer, between each convolution and its activation.
        l2: L2 penalty on the convolution kernels; 0 for none.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        UsageError: if `input_shape` is not (height, width, channels).
    """
    require_image_input(input_shape, "cnn", BUILT_IN_MODELS.flag)
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for width in filters:
        if normalization == "none":
            x = keras.layers.Conv2D(width, kernel_size, padding="same", activation=activation,
                                    kernel_regularizer=regularizer(l2))(x)
        else:
            x = keras.layers.Conv2D(width, kernel_size, padding="same", kernel_regularizer=regularizer(l2))(x)
            x = normalize_and_activate(x, normalization, activation)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout)(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="cnn")
