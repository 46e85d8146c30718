"""Turns `(x, y)` numpy arrays from any source into a checked `Data`."""

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import split, tabular, tasks
from kerasrun.datasets.data import Data

DEFAULT_ARRAY_NAMES = {name: name for name in ("x_train", "y_train", "x_val", "y_val")}


def build_data(train, val, *, context, validation_split, seed, array_names=None, task="auto", chosen_by_loss=None,
               table=None):
    """Checks arrays, encodes labels and holds out validation data if asked.

    Args:
        train: `(x_train, y_train)`, array-likes with one example per row.
        val: `(x_val, y_val)` or None.
        context: What the arrays came from, as a message prefix
            ("--dataset='npz:data.npz'").
        validation_split: Fraction of the training examples to hold out for
            validation, in [0, 1); when above 0 it replaces `val`.
        seed: Seed of the hold-out shuffle.
        array_names: Maps "x_train", "y_train", "x_val", "y_val" to the names
            used in messages, for sources whose arrays are called otherwise,
            and "y_columns" to the label columns' names when it has several.
            Defaults to None (the names themselves).
        task: The --task: auto, or the task the labels must suit. Defaults
            to auto.
        chosen_by_loss: The --loss, when it compares values (see
            `tasks.decide`). Defaults to None.
        table: For features given as a table ({column: array (n, 1)}, from
            `datasets.tabular`), {column: kind}; None for arrays.

    Returns:
        A `Data` whose `x` arrays are float32.

    Raises:
        UsageError: if an array is empty, not numeric, has the wrong shape,
            or its length disagrees with its partner's.
    """
    names = {**DEFAULT_ARRAY_NAMES, **(array_names or {})}
    check = _check_table_pair if table else _check_pair
    x_train, y_train = check(train, names["x_train"], names["y_train"], context)
    label_arrays = {names["y_train"]: y_train}
    if val is not None:
        x_val, y_val = check(val, names["x_val"], names["y_val"], context)
        if not table:
            _check_same_example_shape(x_train, x_val, names, context)
        label_arrays[names["y_val"]] = y_val
    check_enough_examples(len(y_train), context)
    if not table:
        _check_finite(x_train, names["x_train"], context)
        if val is not None:
            _check_finite(x_val, names["x_val"], context)
    decided = tasks.decide(label_arrays, task, context, what=names["y_train"], chosen_by_loss=chosen_by_loss,
                           columns=names.get("y_columns"))
    encoded = decided.encoded
    train = (x_train, encoded[names["y_train"]])
    val = None if val is None else (x_val, encoded[names["y_val"]])
    if val is not None and decided.label_kind == "int":
        _check_classes_trained(train[1], val[1], names, decided.class_names, context)
    if validation_split > 0:
        train, val = split.hold_out(*train, validation_split, seed)
    if table:
        features, (val_features,) = tabular.fill_missing(train[0], [None if val is None else val[0]], table, context)
        train, val = (features, train[1]), (None if val is None else (val_features, val[1]))
    return Data(
        train=train,
        val=val,
        input_shape=(len(table),) if table else tuple(x_train.shape[1:]),
        table=table,
        num_classes=decided.head.units,
        label_kind=decided.label_kind,
        class_names=decided.class_names,
        head=decided.head,
        task_reason=decided.reason,
        target_stats=target_statistics(train[1]) if decided.head.task == "regression" else None,
    )


def check_enough_examples(count, context):
    """Refuses fewer than two training examples: training on one "succeeds" with a loss of 0."""
    if count < 2:
        raise UsageError(f"{context}: holds {count} training example(s); training needs at least two")


def target_statistics(targets):
    """Returns (mean, variance) of each target column of the training split, as float32 arrays."""
    targets = np.asarray(targets, dtype=np.float64)
    return targets.mean(axis=0).astype(np.float32), targets.var(axis=0).astype(np.float32)


def _check_finite(x, name, context):
    """Refuses NaN or infinite inputs, naming the array and the first row: ReLU would hide them from the loss."""
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        value = x.reshape(len(x), -1)[row][~np.isfinite(x.reshape(len(x), -1)[row])][0]
        raise UsageError(f"{context}: {name} holds {value.item()!r} in row {row}; inputs must be finite numbers")


def _check_classes_trained(y_train, y_val, names, class_names, context):
    """Refuses validation class ids beyond the training labels' range: classes the model never learns.

    (A class inside the range that training happens to lack is left alone: a
    small training set may miss a rare class.)
    """
    beyond = y_val[y_val > y_train.max()]
    if len(beyond):
        named = _class_name(beyond[0], class_names)
        raise UsageError(f"{context}: {names['y_val']} holds the class {named!r}, out of the range of "
                         f"{names['y_train']} (classes up to {_class_name(y_train.max(), class_names)!r}), "
                         "so the model would never learn it")


def _class_name(class_id, class_names):
    return class_names[class_id] if class_names else int(class_id)


def _check_table_pair(pair, x_name, y_name, context):
    features, y = pair
    y = _as_array(y, y_name, context)
    if len(y) != len(next(iter(features.values()))):
        raise UsageError(f"{context}: {x_name} has {len(next(iter(features.values())))} examples but {y_name} "
                         f"has {len(y)}")
    return features, y


def _check_pair(pair, x_name, y_name, context):
    x = _as_array(pair[0], x_name, context)
    y = _as_array(pair[1], y_name, context)
    if x.dtype.kind not in "biuf":
        raise UsageError(f"{context}: {x_name} holds {x.dtype} values; expected numbers")
    if x.ndim < 2:
        raise UsageError(
            f"{context}: {x_name} has shape {x.shape}; expected one row per example "
            "with at least one feature axis, e.g. (n, features) or (n, height, width)"
        )
    if len(x) == 0:
        raise UsageError(f"{context}: {x_name} has no examples")
    if len(x) != len(y):
        raise UsageError(f"{context}: {x_name} has {len(x)} examples but {y_name} has {len(y)}")
    return x.astype(np.float32, copy=False), y


def _as_array(value, name, context):
    try:
        array = np.asarray(value)
    except ValueError as error:  # Ragged nested lists, for example.
        raise UsageError(f"{context}: {name} is not a rectangular array: {error}") from None
    if array.ndim == 0:
        raise UsageError(
            f"{context}: {name} is a single value; expected an array with one row per example"
        )
    return array


def _check_same_example_shape(x_train, x_val, names, context):
    if x_train.shape[1:] != x_val.shape[1:]:
        raise UsageError(
            f"{context}: {names['x_train']} examples have shape {x_train.shape[1:]} "
            f"but {names['x_val']} examples have shape {x_val.shape[1:]}"
        )
