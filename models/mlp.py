"""`mlp`: the default model, a one-hidden-layer perceptron."""

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer

HIDDEN_UNITS = 128
# A little dropout keeps the small digits set from being memorised in the
# first few epochs without slowing the climb to 90% accuracy.
DROPOUT_RATE = 0.1


@BUILT_IN_MODELS.register("mlp")
def build_mlp(input_shape, head):
    """Builds Flatten -> Dense(128, relu) -> Dropout -> the task's head.

    Works on any input shape, since everything is flattened first.

    Args:
        input_shape: The shape of one example, without the batch axis.
        head: The `Head` the model ends in.

    Returns:
        An uncompiled `keras.Model`.
    """
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(x)
    x = keras.layers.Dropout(DROPOUT_RATE)(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="mlp")
