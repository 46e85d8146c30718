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
        input_shape: Shape of one `x`, without the batch axis.
        num_classes: Number of classes the labels range over.
        label_kind: `"int"` for integer class ids, `"one_hot"` for rows of
            one-hot (or probability) labels.
        class_names: Names of the classes in label order when the source
            has them (string labels, image folders); None otherwise.
    """

    train: object
    val: object
    input_shape: tuple
    num_classes: int
    label_kind: str
    class_names: tuple = None
