"""`mlp`: the default model, a one-hidden-layer perceptron."""

from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.models.heads import output_layer
from kerasrun.models.layers import normalize_and_activate, regularizer



@BUILT_IN_MODELS.register("mlp")
def build_mlp(input_shape, head, *, units=128, layers=1, dropout=0.1, activation="relu", normalization="none",
              l2=0.0):
    """Builds Flatten -> `layers` x (Dense(units) -> normalisation -> activation -> Dropout) -> the task's head.

    Works on any input shape, since everything is flattened first. The
    defaults (those of the --mlp_* flags, models/hyperparameters.py) are
    Flatten -> Dense(128, relu) -> Dropout(0.1) -> head: a little dropout keeps
    the small digits set from being memorised in the first few epochs
    without slowing the climb to 90% accuracy.

    Args:
        input_shape: The shape of one example, without the batch axis.
        head: The `Head` the model ends in.
        units: Width of each hidden layer.
        layers: Number of hidden layers (0: the head sits on the flattened input).
        dropout: Dropout rate after each hidden layer; 0 adds no Dropout layer.
        activation: A Keras activation name.
        normalization: none, batch or layer, between each Dense layer and its activation.
        l2: L2 penalty on the hidden kernels; 0 for none.

    Returns:
        An uncompiled `keras.Model`.
    """
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    x = keras.layers.Flatten()(inputs)
    for _ in range(layers):
        if normalization == "none":
            x = keras.layers.Dense(units, activation=activation, kernel_regularizer=regularizer(l2))(x)
        else:
            x = keras.layers.Dense(units, kernel_regularizer=regularizer(l2))(x)
            x = normalize_and_activate(x, normalization, activation)
        if dropout > 0:
            x = keras.layers.Dropout(dropout)(x)
    outputs = output_layer(head)(x)
    return keras.Model(inputs, outputs, name="mlp")
