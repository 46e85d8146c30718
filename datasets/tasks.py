"""Decides what the labels ask a model to do: the task, and the labels in the form its loss takes.

`--task auto` decides from the labels alone, before any model is built, and
says why; an explicit task is checked against the labels. A case the labels
cannot settle (whole numbers that could be class ids or values) is refused,
naming --task, never guessed.
"""

import dataclasses

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import labels
from kerasrun.core.heads import TASKS, Head

TASK_FLAG = "--task"
AUTO = "auto"

# --task auto reads whole-number labels numbered from 0 with few gaps as class ids when there are at most
# this many, or more with this many examples each (1,000 ImageNet classes, say); more distinct numbers with
# gaps are values; anything else is asked about.
_FEW_CLASSES = 100
_EXAMPLES_PER_CLASS = 20
# --task classification refuses class ids that would make a softmax wider than this, mostly of classes never
# seen (prices taken for class ids); narrower ones train, with a note (datasets/labels.py).
_HUGE_SOFTMAX = 10_000


@dataclasses.dataclass(frozen=True, eq=False)
class Decided:
    """The task the labels get, and the labels in the form its loss takes.

    Args:
        head: The `Head`: the task and the width of the model's output.
        reason: Why, in a few words, for the line the run prints.
        encoded: {array name: encoded labels}: int32 class ids, float32
            one-hot rows (classification); float32 columns of 0 and 1
            (binary, multilabel); float32 (n, targets) values (regression).
        label_kind: "int" or "one_hot" (classification), "binary",
            "multi_hot" or "values".
        class_names: The names of the classes (or of a binary task's two
            values, negative first) when the labels had names; else None.
    """

    head: Head
    reason: str
    encoded: dict
    label_kind: str
    class_names: tuple = None


def decide(labels_by_name, task, context, what="the labels", chosen_by_loss=None, columns=None):
    """Returns the `Decided` task for label arrays from one source.

    Args:
        labels_by_name: {name used in messages: label array}, training first.
        task: The --task value: auto or one of TASKS.
        context: The flag and value the data came from, as a message prefix.
        what: The labels in words, for the printed reason ("label column
            'price'"). Defaults to "the labels". With several arrays the
            reason counts them all, and names them all ("y_train and y_val").
        chosen_by_loss: The --loss when it compares values (mse, ...): with
            --task auto it makes the task regression. Defaults to None.
        columns: The names of the label columns (a CSV's), for messages about
            one of them. Defaults to None (columns are numbered).

    Raises:
        UsageError: for labels the task cannot take, or an auto decision the
            labels cannot settle.
    """
    arrays = {name: _column_or_rows(np.asarray(y)) for name, y in labels_by_name.items()}
    for name, y in arrays.items():
        if y.ndim not in (1, 2):
            raise UsageError(f"{context}: {name} has shape {y.shape}; expected one label per example, shape (n,), "
                             "or one row of labels or targets per example, shape (n, columns)")
    first = next(iter(arrays.values()))
    if any(y.ndim != first.ndim or y.shape[1:] != first.shape[1:] for y in arrays.values()):
        described = ", ".join(f"{name} has shape {y.shape}" for name, y in arrays.items())
        raise UsageError(f"{context}: label arrays disagree ({described})")
    if len(arrays) > 1:  # What is counted below (distinct values, classes) is over all the arrays: name them all.
        what = " and ".join([what, *list(arrays)[1:]])
    if first.dtype.kind in "US":
        return _text_labels(arrays, task, context, what)
    if first.dtype.kind not in "biuf":
        raise UsageError(f"{context}: {next(iter(arrays))} holds {first.dtype} values; "
                         "expected numbers (class ids, 0/1, values) or strings (class names)")
    if first.dtype.kind != "b":
        _check_finite(arrays, context)
    values = np.concatenate([y.reshape(len(y), -1) for y in arrays.values()])
    if task == AUTO:
        task, reason = _auto_task(first, values, what, chosen_by_loss, context)
    else:
        reason = f"{TASK_FLAG} {task}"
    if task == "regression" and not chosen_by_loss:
        _check_not_constant(values, context, what)
    if task == "multilabel":
        return _multilabel(arrays, values, reason, context, what, columns)
    return _ENCODERS[task](arrays, values, reason, context, what)


def _check_not_constant(values, context, what):
    """Refuses a target that never changes, unless the loss was chosen for it (Keras's EarlyStopping example)."""
    constant = [column for column in range(values.shape[1]) if np.all(values[:, column] == values[0, column])]
    if constant:
        where = f"column {constant[0] + 1} of {what}" if values.shape[1] > 1 else what
        raise UsageError(f"{context}: every target in {where} is {_number(values[0, constant[0]])}, so a model has "
                         "nothing to learn (choose the --loss yourself to train on it anyway)")


def _column_or_rows(y):
    if y.ndim == 2 and y.shape[1] == 1:  # One column, as Keras's cifar datasets store class ids.
        return y.reshape(-1)
    return y


def _check_finite(arrays, context):
    for name, y in arrays.items():
        bad = ~np.isfinite(y.reshape(len(y), -1).astype(np.float64)).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            value = y.reshape(len(y), -1)[row][~np.isfinite(y.reshape(len(y), -1)[row].astype(np.float64))][0]
            raise UsageError(f"{context}: {name} holds {value.item()!r} in row {row}; labels must be finite numbers")


def _auto_task(y, values, what, chosen_by_loss, context):
    """Returns (task, reason) as --task auto decides them, or refuses naming --task."""
    if chosen_by_loss:
        return "regression", f"--loss {chosen_by_loss} compares values"
    whole = bool(np.all(values == np.round(values)))
    distinct = np.unique(values)
    if y.ndim == 2:
        if np.isin(distinct, (0, 1)).all():
            ones = values.sum(axis=1)
            if np.all(ones == 1):
                return "classification", f"{what} {_verb(what, 'holds')} one-hot rows of {y.shape[1]} classes"
            return "multilabel", f"{what} {_verb(what, 'holds')} rows of 0 and 1 with up to {int(ones.max())} ones"
        if (values >= 0).all() and np.allclose(values.sum(axis=1), 1, atol=1e-4):
            return "classification", f"{what} {_verb(what, 'holds')} rows of class probabilities ({y.shape[1]} classes)"
        return "regression", f"{what} {_verb(what, 'holds')} rows of {y.shape[1]} values"
    if not whole:
        return "regression", f"{what} {_verb(what, 'holds')} {len(distinct)} distinct non-integer values"
    if len(distinct) == 1:
        raise UsageError(f"{context}: every label is {_number(distinct[0])}, so a model has nothing to learn; give "
                         f"at least two classes, or say {TASK_FLAG} regression (or a loss that compares values, "
                         "such as --loss mse) for a constant target")
    lowest, highest = distinct[0], distinct[-1]
    # Class ids number the classes from 0 with few gaps; many classes need many examples each.
    dense = lowest >= 0 and len(distinct) >= (highest + 1) / 2
    few = len(distinct) <= _FEW_CLASSES or len(values) >= _EXAMPLES_PER_CLASS * len(distinct)
    if dense and few:
        return "classification", f"{what} {_verb(what, 'holds')} {len(distinct)} integer class ids"
    if len(distinct) > _FEW_CLASSES and not dense:
        return "regression", (f"{what} {_verb(what, 'holds')} {len(distinct)} distinct whole numbers from {_number(lowest)} to "
                               f"{_number(highest)}")
    if len(distinct) == 2:  # Such as -1 and 1: class ids must start at 0, so the classes are binary's.
        raise UsageError(
            f"{context}: {what} {_verb(what, 'holds')} two whole numbers, {_number(lowest)} and {_number(highest)}: "
            f"two classes or values? Say {TASK_FLAG} binary ({_number(highest)} is then the positive class) or "
            f"{TASK_FLAG} regression")
    raise UsageError(
        f"{context}: {what} {_verb(what, 'holds')} {len(distinct)} distinct whole numbers from {_number(lowest)} to "
        f"{_number(highest)}: class ids or values? Say {TASK_FLAG} classification or {TASK_FLAG} regression")


def _verb(what, singular):
    """Returns the verb for `what`: "holds" for "label column 'y'", "hold" for "label columns a, b"."""
    plural = {"holds": "hold", "has": "have", "is": "are"}[singular]
    several = " and " in what and not what.startswith("label column ")  # "y_train and y_val".
    return plural if what.startswith("label columns") or what == "the labels" or several else singular


def _number(value):
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _text_labels(arrays, task, context, what):
    if any(y.ndim != 1 for y in arrays.values()):
        raise UsageError(f"{context}: {what} {_verb(what, 'holds')} text in several columns; class names need one column")
    if task in ("multilabel", "regression"):
        raise UsageError(f"{TASK_FLAG}={task}: {what} {_verb(what, 'holds')} text (class names); {task} needs numbers")
    encoded, _, class_names = labels.encode(arrays, context)
    if task == "binary":
        return _binary(encoded, class_names, f"{TASK_FLAG} binary", context, what)
    reason = (f"{what} {_verb(what, 'holds')} text: {len(class_names)} class names" if task == AUTO
              else f"{TASK_FLAG} {task}")
    return _classification_result(encoded, "int", class_names, reason)


def _classification(arrays, values, reason, context, what):
    if next(iter(arrays.values())).ndim == 2:
        if not ((values >= 0).all() and np.allclose(values.sum(axis=1), 1, atol=1e-4)):
            raise UsageError(f"{context}: {what} {_verb(what, 'holds')} rows that are not one-hot (nor class probabilities); "
                             f"for several labels per example say {TASK_FLAG} multilabel, for values "
                             f"{TASK_FLAG} regression")
    distinct = np.unique(values)
    one_column = next(iter(arrays.values())).ndim == 1
    if one_column and len(distinct) == 2 and distinct[0] < 0 and distinct[0] == round(distinct[0]):
        raise UsageError(f"{context}: {what} {_verb(what, 'holds')} the negative class id "
                         f"{_number(distinct[0])}; class ids start at 0; for two values such as "
                         f"{_number(distinct[0])} and {_number(distinct[1])} say {TASK_FLAG} binary")
    encoded, kind, names = labels.encode(arrays, context)
    if kind == "int" and names is None:
        _check_ids_dense(values, context, what)
    return _classification_result(encoded, kind, names, reason)


def _check_ids_dense(values, context, what):
    """Refuses whole numbers that, as class ids, would make a softmax mostly of classes never seen."""
    distinct = np.unique(values)
    highest = distinct[-1]
    if highest + 1 > _HUGE_SOFTMAX and len(distinct) < (highest + 1) / 10 and np.all(distinct == np.round(distinct)):
        raise UsageError(
            f"{TASK_FLAG}=classification: {what} {_verb(what, 'holds')} {len(distinct)} distinct whole numbers up to "
            f"{_number(highest)}, which as class ids make a softmax over {int(highest) + 1:,} classes, most never "
            f"seen; number the classes from 0, or say {TASK_FLAG} regression if they are values")


def _classification_result(encoded, kind, class_names, reason):
    classes = labels.count_classes(list(encoded.values()), kind, class_names)
    return Decided(Head("classification", classes), reason, encoded, kind, class_names)


def _binary(arrays, class_names, reason, context, what):
    distinct = np.unique(np.concatenate([y.reshape(-1) for y in arrays.values()]))
    if next(iter(arrays.values())).ndim == 2:
        raise UsageError(f"{TASK_FLAG}=binary: {what} {_verb(what, 'has')} {next(iter(arrays.values())).shape[1]} columns; "
                         f"binary needs one column of two values (several 0/1 columns: {TASK_FLAG} multilabel)")
    if len(distinct) != 2:
        raise UsageError(f"{TASK_FLAG}=binary: {what} {_verb(what, 'holds')} {len(distinct)} distinct values; binary needs exactly two")
    positive = distinct[1]
    encoded = {name: (y == positive).astype(np.float32).reshape(-1, 1) for name, y in arrays.items()}
    if class_names is None and not np.isin(distinct, (0, 1)).all():
        class_names = tuple(_number(value) for value in distinct)
    if class_names is not None:
        reason += f": {class_names[1]!r} is the positive class (1), {class_names[0]!r} the negative (0)"
    return Decided(Head("binary", 1), reason, encoded, "binary", class_names)


def _binary_numbers(arrays, values, reason, context, what):
    return _binary(arrays, None, reason, context, what)


def _multilabel(arrays, values, reason, context, what, columns=None):
    y = next(iter(arrays.values()))
    if y.ndim != 2:
        raise UsageError(f"{TASK_FLAG}=multilabel: {what} {_verb(what, 'is')} one column; multilabel needs one 0/1 column per "
                         f"label (for one label of two values: {TASK_FLAG} binary)")
    if not np.isin(np.unique(values), (0, 1)).all():
        raise UsageError(f"{TASK_FLAG}=multilabel: {what} {_verb(what, 'holds')} values other than 0 and 1")
    # A label never (or always) positive in training cannot be learnt: its sigmoid would only learn the constant.
    for column in range(y.shape[1]):
        if np.all(y[:, column] == y[0, column]):
            name = f"label column {columns[column]!r}" if columns else f"column {column + 1} of {next(iter(arrays))}"
            value = int(y[0, column])
            raise UsageError(f"{context}: {name} is {value} in every training example, so a model cannot learn "
                             f"it; leave the column out (or give examples where it is {1 - value})")
    encoded = {name: y.astype(np.float32) for name, y in arrays.items()}
    return Decided(Head("multilabel", y.shape[1]), reason, encoded, "multi_hot")


def _regression(arrays, values, reason, context, what):
    encoded = {name: y.reshape(len(y), -1).astype(np.float32) for name, y in arrays.items()}
    return Decided(Head("regression", values.shape[1]), reason, encoded, "values")


_ENCODERS = {"classification": _classification, "binary": _binary_numbers, "multilabel": _multilabel,
             "regression": _regression}
assert set(_ENCODERS) == set(TASKS)


def for_classes(data, task, context):
    """Returns an image folder's `Data` with its task: classification, or binary for two classes when asked.

    Raises:
        UsageError: for multilabel or regression (a folder per class holds
            classes), or binary with other than two classes.
    """
    if task in ("multilabel", "regression"):
        raise UsageError(f"{TASK_FLAG}={task}: {context} holds one folder per class; {task} needs a file of "
                         "labels (csv: or npz:)")
    if task == "binary":
        if data.num_classes != 2:
            raise UsageError(f"{TASK_FLAG}=binary: {context} has {data.num_classes} class folders; binary needs two")
        return dataclasses.replace(data, head=Head("binary", 1), label_kind="binary",
                                   task_reason=f"{TASK_FLAG} binary: {data.class_names[1]!r} is the positive class")
    reason = f"{TASK_FLAG} classification" if task != AUTO else f"{data.num_classes} class folders"
    return dataclasses.replace(data, task_reason=reason)
