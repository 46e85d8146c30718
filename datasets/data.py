"""The `Data` record every dataset source returns."""

import dataclasses


# eq=False: the fields hold numpy arrays, whose `==` is element-wise, so a
# generated `__eq__` would raise instead of answering.
@dataclasses.dataclass(frozen=True, eq=False)
class Data:
    """A loaded dataset, ready to be turned into `tf.data` pipelines.

    Args:
        train: Training examples: an `(x, y)` tuple of numpy arrays, or an
            unbatched `tf.data.Dataset` of `(x, y)` elements.
        val: Validation examples in the same form as `train`, or None.
        test: Test examples in the same form as `train`, or None: evaluated
            once after training, never seen by it.
        input_shape: Shape of one `x`, without the batch axis.
        num_classes: Number of classes the labels range over; for other
            tasks the width of the model's output.
        label_kind: `"int"` for integer class ids, `"one_hot"` for rows of
            one-hot (or probability) labels, "binary", "multi_hot" or
            "values" for the other tasks (datasets/tasks.py).
        class_names: Names of the classes in label order when the source
            has them (string labels, image folders); None otherwise.
        head: The `models.heads.Head` the task needs; classification over
            `num_classes` unless the source decided otherwise.
        task_reason: Why the task is what it is, for the line the run prints.
        target_stats: For regression, (mean, variance) of each target
            column of the training split; else None.
        table: For a table (a CSV file), {column: kind} of its features
            (`datasets.tabular`), whose `train` and `val` hold
            {column: array (n, 1)}; None for arrays. `input_shape` is then
            (columns,).
        origins: {"validation": words, "test": words}: where the
            validation and test splits came from, for the line the run
            prints ("10% of the training data held out"); empty if unsaid.
    """

    train: object
    val: object
    input_shape: tuple
    num_classes: int
    label_kind: str
    class_names: tuple = None
    head: object = None
    task_reason: str = ""
    target_stats: tuple = None
    table: dict = None
    test: object = None
    origins: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.head is None:  # Sources that hold classes only (image folders).
            from kerasrun.core.heads import Head

            object.__setattr__(self, "head", Head("classification", self.num_classes))
