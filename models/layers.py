"""Pieces the built-in models share: regularisers, normalisation and activation layers."""


def regularizer(l2):
    """Returns an L2 kernel regulariser, or None for a penalty of 0."""
    import keras

    return keras.regularizers.L2(l2) if l2 > 0 else None


def normalize_and_activate(x, normalization, activation):
    """Applies the normalisation (none, batch, layer), then the activation, to tensor `x`."""
    import keras

    if normalization == "batch":
        x = keras.layers.BatchNormalization()(x)
    elif normalization == "layer":
        x = keras.layers.LayerNormalization()(x)
    return activation_layer(activation)(x)


def activation_layer(activation):
    """Returns a layer applying `activation`: Keras's ReLU layer for relu (as the models always had)."""
    import keras

    return keras.layers.ReLU() if activation == "relu" else keras.layers.Activation(activation)
