"""The last layer of a model: what it predicts for the run's task.

Every model the runner builds (built-ins, keras.applications) ends in
`output_layer(head)`; plug-in builders are told the task and the width.
"""


def output_layer(head, name=None):
    """Returns what a built model ends in, as a function of the last tensor.

    A Dense layer computing in float32 (also under mixed precision), and for a
    scaled regression head Keras's Normalization layer with `invert=True`,
    which maps standardised values back into the targets' units, so the
    model predicts in them and its saved file needs nothing else.
    """
    import keras

    dense = keras.layers.Dense(head.units, activation=head.activation, dtype="float32", name=name)
    if head.scaling is None:
        return dense
    mean, variance = head.scaling
    unscale = keras.layers.Normalization(mean=list(mean), variance=list(variance), invert=True, dtype="float32",
                                         name=f"{name or 'output'}_in_target_units")
    return lambda x: unscale(dense(x))
