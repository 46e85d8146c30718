"""The last layer of a model: what it predicts for the run's task.

Every model the runner builds (built-ins, keras.applications) ends in
`output_layer(head)`; plug-in builders are told the task and the width.
"""

import dataclasses

TASKS = ("classification", "binary", "multilabel", "regression")

_ACTIVATIONS = {"classification": "softmax", "binary": "sigmoid", "multilabel": "sigmoid", "regression": "linear"}


@dataclasses.dataclass(frozen=True)
class Head:
    """What a model's output must be.

    Args:
        task: One of TASKS.
        units: The width of the output: the classes (classification), 1
            (binary), the labels (multilabel) or the targets (regression).
        scaling: For regression, None or (means, variances) of the targets:
            the output layer then predicts standardised values and a
            Normalization layer (invert=True) turns them into the targets' units.
    """

    task: str
    units: int
    scaling: tuple = None

    def scaled(self, mean, variance):
        """Returns the head that also undoes a standardisation: (mean, variance) per output, as lists."""
        return dataclasses.replace(self, scaling=(tuple(float(m) for m in mean), tuple(float(v) for v in variance)))

    @property
    def activation(self):
        """softmax over classes, a sigmoid per label (binary, multilabel), linear for values."""
        return _ACTIVATIONS[self.task]

    def describe(self):
        """Returns the head in words, for messages: "a softmax over 10 classes"."""
        if self.task == "classification":
            return f"a softmax over {self.units} classes"
        if self.task == "binary":
            return "one sigmoid"
        if self.task == "multilabel":
            return f"{self.units} sigmoids, one per label"
        return f"{self.units} linear output{'s' if self.units != 1 else ''}"


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
