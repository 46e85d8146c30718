"""Turns `(x, y)` numpy arrays from any source into a checked `Data`."""

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import labels, split
from kerasrun.datasets.data import Data

DEFAULT_ARRAY_NAMES = {name: name for name in ("x_train", "y_train", "x_val", "y_val")}


def build_data(train, val, *, context, validation_split, seed, array_names=None):
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
            used in messages, for sources whose arrays are called otherwise.
            Defaults to None (the names themselves).

    Returns:
        A `Data` whose `x` arrays are float32.

    Raises:
        UsageError: if an array is empty, not numeric, has the wrong shape,
            or its length disagrees with its partner's.
    """
    names = {**DEFAULT_ARRAY_NAMES, **(array_names or {})}
    x_train, y_train = _check_pair(train, names["x_train"], names["y_train"], context)
    label_arrays = {names["y_train"]: y_train}
    if val is not None:
        x_val, y_val = _check_pair(val, names["x_val"], names["y_val"], context)
        _check_same_example_shape(x_train, x_val, names, context)
        label_arrays[names["y_val"]] = y_val
    encoded, label_kind, class_names = labels.encode(label_arrays, context)
    train = (x_train, encoded[names["y_train"]])
    val = None if val is None else (x_val, encoded[names["y_val"]])
    if validation_split > 0:
        train, val = split.hold_out(*train, validation_split, seed)
    used_labels = [train[1]] + ([] if val is None else [val[1]])
    return Data(
        train=train,
        val=val,
        input_shape=tuple(x_train.shape[1:]),
        num_classes=labels.count_classes(used_labels, label_kind, class_names),
        label_kind=label_kind,
        class_names=class_names,
    )


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
