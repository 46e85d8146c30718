"""What a model's output must be for the run's task: a plain description, no Keras.

The datasets decide it from the labels (datasets/tasks.py); the models end in
the layer it asks for (models/heads.py).
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
