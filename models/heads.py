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
    """

    task: str
    units: int

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
    """Returns the Dense layer a built model ends in, computing in float32 (also under mixed precision)."""
    import keras

    return keras.layers.Dense(head.units, activation=head.activation, dtype="float32", name=name)
