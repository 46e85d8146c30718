"""Works out what kind of labels a dataset has and turns them into class ids."""

import numpy as np

from kerasrun.core.errors import UsageError

_EXPECTED_SHAPES = (
    "expected one class id per example (shape (n,) or (n, 1)) "
    "or one-hot rows (shape (n, classes))"
)


def encode(labels_by_name, context):
    """Checks label arrays and brings them to one kind and dtype.

    Integer-valued labels become int32 class ids; string labels become class
    ids in sorted order of the strings (over all arrays together, so train
    and validation agree); 2-D labels wider than one column are one-hot rows
    and become float32.

    Args:
        labels_by_name: Maps a name used in messages ("y_train") to an array.
        context: What the labels came from, as a message prefix
            ("--dataset='npz:data.npz'").

    Returns:
        `(encoded, label_kind, class_names)`: a dict with the same keys as
        `labels_by_name`, "int" or "one_hot", and a tuple of class names for
        string labels (None otherwise).

    Raises:
        UsageError: if a label array has an unusable shape or values, or the
            arrays disagree on the kind of label.
    """
    arrays = {name: _squeeze_column(np.asarray(y)) for name, y in labels_by_name.items()}
    kinds = {name: _kind_of(name, y, context) for name, y in arrays.items()}
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{name} is {kind}" for name, kind in kinds.items())
        raise UsageError(f"{context}: label arrays disagree ({described})")
    kind = next(iter(kinds.values()))
    if kind == "one_hot":
        return _encode_one_hot(arrays, context), "one_hot", None
    if kind == "string":
        return _encode_strings(arrays)
    return {name: _to_class_ids(name, y, context) for name, y in arrays.items()}, "int", None


def count_classes(label_arrays, label_kind, class_names=None):
    """Returns the number of classes that encoded labels range over.

    Args:
        label_arrays: Encoded label arrays (from `encode`).
        label_kind: "int" or "one_hot".
        class_names: The class names, if the labels had names. Defaults to None.
    """
    if class_names is not None:
        return len(class_names)
    if label_kind == "one_hot":
        return int(label_arrays[0].shape[1])
    count = int(max(y.max() for y in label_arrays)) + 1
    used = len(np.unique(np.concatenate([np.asarray(y).ravel() for y in label_arrays])))
    if count >= 2 * used and count - used >= 10:  # Years or codes used as class ids, say.
        print(f"note: the class ids go up to {count - 1}, so the model predicts {count} classes, though only "
              f"{used} of them occur; give the labels as strings (or number them 0 to {used - 1}) for {used}",
              flush=True)
    return count


def _squeeze_column(y):
    # Keras' own datasets (cifar) store class ids as a single column.
    if y.ndim == 2 and y.shape[1] == 1:
        return y.reshape(-1)
    return y


def _kind_of(name, y, context):
    if y.ndim == 2 and y.shape[1] > 1:
        if not _is_numeric(y):
            raise UsageError(
                f"{context}: {name} has one-hot rows of {y.dtype} values; expected numbers"
            )
        return "one_hot"
    if y.ndim != 1:
        raise UsageError(f"{context}: {name} has shape {y.shape}; {_EXPECTED_SHAPES}")
    if y.dtype.kind in "US":
        return "string"
    if not _is_numeric(y):
        raise UsageError(
            f"{context}: {name} holds {y.dtype} values; expected integer class ids or strings"
        )
    return "int"


def _is_numeric(array):
    return array.dtype.kind in "biuf"


def _encode_one_hot(arrays, context):
    widths = {name: y.shape[1] for name, y in arrays.items()}
    if len(set(widths.values())) > 1:
        described = ", ".join(f"{name} has {width}" for name, width in widths.items())
        raise UsageError(f"{context}: one-hot label widths disagree ({described} columns)")
    return {name: y.astype(np.float32) for name, y in arrays.items()}


def _encode_strings(arrays):
    class_names = tuple(sorted(set().union(*(set(y.tolist()) for y in arrays.values()))))
    index_of = {class_name: index for index, class_name in enumerate(class_names)}
    encoded = {
        name: np.array([index_of[label] for label in y.tolist()], dtype=np.int32)
        for name, y in arrays.items()
    }
    return encoded, "int", tuple(_display_name(class_name) for class_name in class_names)


def _display_name(class_name):
    if isinstance(class_name, bytes):
        return class_name.decode("utf-8", errors="replace")
    return str(class_name)


def _to_class_ids(name, y, context):
    if y.dtype.kind == "f":
        not_whole = ~np.isfinite(y) | (y != np.round(y))
        if not_whole.any():
            bad = y[not_whole][0].item()
            raise UsageError(
                f"{context}: {name} holds {bad!r}; class ids must be whole numbers "
                "(or give one-hot rows of shape (n, classes))"
            )
    lowest, highest = y.min().item(), y.max().item()
    if lowest < 0:
        raise UsageError(
            f"{context}: {name} holds the negative class id {lowest:g}; class ids start at 0"
        )
    if highest >= _MOST_CLASSES:  # Cast to int32 it would wrap round, silently merging classes.
        raise UsageError(f"{context}: {name} holds the class id {highest}; class ids number the classes "
                         f"0, 1, 2, ... (below {_MOST_CLASSES:,}); give strings to name them otherwise")
    return y.astype(np.int32)


# The model gets one output per class id up to the highest: ids must stay far below int32's limit.
_MOST_CLASSES = 1_000_000
