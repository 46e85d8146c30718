"""Turns `(x, y)` numpy arrays from any source into a checked `Data`."""

import contextlib
import io

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import split, tabular, tasks
from kerasrun.datasets.data import Data

DEFAULT_ARRAY_NAMES = {name: name for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}


def build_data(train, val, *, context, validation_split, seed, array_names=None, task="auto", chosen_by_loss=None,
               table=None, test=None, origins=None, separate_val=False):
    """Checks arrays, encodes labels and holds out validation data if asked.

    Args:
        train: `(x_train, y_train)`, array-likes with one example per row.
        val: `(x_val, y_val)` or None.
        context: What the arrays came from, as a message prefix
            ("--dataset='npz:data.npz'").
        validation_split: Fraction of the training examples to hold out for
            validation, in [0, 1); when above 0 it replaces `val`.
        seed: Seed of the hold-out shuffle.
        array_names: Maps "x_train", "y_train", "x_val", "y_val", "x_test",
            "y_test" to the names used in messages, for sources whose arrays
            are called otherwise, and "y_columns" to the label columns' names
            when it has several. Defaults to None (the names themselves).
        task: The --task: auto, or the task the labels must suit. Defaults
            to auto.
        chosen_by_loss: The --loss, when it compares values (see
            `tasks.decide`). Defaults to None.
        table: For features given as a table ({column: array (n, 1)}, from
            `datasets.tabular`), {column: kind}; None for arrays.
        test: `(x_test, y_test)` or None: checked as `val` is, encoded with
            the training labels' classes, never held out from.
        origins: {"validation": words, "test": words}: where the source's own
            splits came from, for the splits line. Defaults to none.
        separate_val: Whether `val` is a file of its own (--dataset_validation):
            its labels are then encoded as the test split's, with the training
            labels' classes, rather than decided on with them. Defaults to False.

    Returns:
        A `Data` whose `x` arrays are float32.

    Raises:
        UsageError: if an array is empty, not numeric, has the wrong shape,
            or its length disagrees with its partner's, or a validation or
            test label is a class training lacks.
    """
    names = {**DEFAULT_ARRAY_NAMES, **(array_names or {})}
    check = _check_table_pair if table else _check_pair
    x_train, y_train = check(train, names["x_train"], names["y_train"], context)
    others = _checked_others({"val": val, "test": test}, (x_train, y_train), check, names, table, context)
    # A validation file of its own is encoded as the test split is; the source's own validation data
    # takes part in deciding the task, as it always has.
    label_arrays = {names["y_train"]: y_train}
    if "val" in others and not separate_val:
        label_arrays[names["y_val"]] = others["val"][1]
    check_enough_examples(len(y_train), context)
    decided = tasks.decide(label_arrays, task, context, what=names["y_train"], chosen_by_loss=chosen_by_loss,
                           columns=names.get("y_columns"))
    encoded = decided.encoded
    train = (x_train, encoded[names["y_train"]])
    if val is not None and not separate_val:
        val = (others["val"][0], encoded[names["y_val"]])
        if decided.label_kind == "int":
            _check_classes_trained(train[1], val[1], names, "y_val", decided.class_names, context)
    rest = {part: pair for part, pair in others.items() if part == "test" or separate_val}
    if rest:
        encoded = encode_others(decided, label_arrays, {names[f"y_{part}"]: pair[1] for part, pair in rest.items()},
                                context, what=names["y_train"], chosen_by_loss=chosen_by_loss, names=names)
        val = (others["val"][0], encoded[names["y_val"]]) if "val" in rest else val
        test = (others["test"][0], encoded[names["y_test"]]) if "test" in rest else None
    origins = dict(origins or {})
    if validation_split > 0:  # From the training split only: the test split stays as it is.
        train, val = split.hold_out(*train, validation_split, seed)
        origins["validation"] = held_out_words(validation_split)
    if table:
        train, val, test = _filled(train, val, test, table, context)
    return Data(
        train=train,
        val=val,
        test=test,
        origins=origins,
        input_shape=(len(table),) if table else tuple(x_train.shape[1:]),
        table=table,
        num_classes=decided.head.units,
        label_kind=decided.label_kind,
        class_names=decided.class_names,
        head=decided.head,
        task_reason=decided.reason,
        target_stats=target_statistics(train[1]) if decided.head.task == "regression" else None,
    )


def _checked_others(pairs, train, check, names, table, context):
    """Returns {"val"/"test": (x, y)} of the splits given, checked as the training pair is, and against it.

    Raises:
        UsageError: for a malformed pair, examples of another shape, inputs
            that are not finite, or a class name training lacks.
    """
    x_train, y_train = train
    if not table:
        check_finite(x_train, names["x_train"], context)
    others = {}
    for part, pair in pairs.items():
        if pair is None:
            continue
        x, y = others[part] = check(pair, names[f"x_{part}"], names[f"y_{part}"], context)
        if not table:
            _check_same_example_shape(x_train, x, names, f"x_{part}", context)
            check_finite(x, names[f"x_{part}"], context)
        _check_named_classes(y_train, y, names[f"y_{part}"], context)
    return others


def _filled(train, val, test, table, context):
    """Returns the (x, y) splits of a table with missing numbers filled with the training split's means."""
    features, others = tabular.fill_missing(train[0], [None if part is None else part[0] for part in (val, test)],
                                            table, context)
    return (features, train[1]), *(None if part is None else (filled, part[1])
                                   for part, filled in zip((val, test), others))


def held_out_words(validation_split):
    """Returns where a held-out validation split comes from, in words ("10% of the training data held out")."""
    return f"{validation_split:.0%} of the training data held out"


def encode_others(decided, decided_on, others, context, *, what, chosen_by_loss, names):
    """Encodes the labels of splits the task was not decided on (a test split) as the training labels are.

    Named classes keep the training labels' ids; a class training lacks is
    refused (by name, or an id beyond the training ids' range).

    Args:
        decided: The `tasks.Decided` of the labels in `decided_on`.
        decided_on: {name: raw labels} the task was decided on, training first.
        others: {name: raw labels} to encode.
        context: The flag and value, as a message prefix.
        what: The training labels in words, as `tasks.decide` takes them.
        chosen_by_loss: The --loss, when it compares values.
        names: The array names for messages (see `build_data`).

    Returns:
        {name: encoded labels} for the names of `others`.

    Raises:
        UsageError: for labels of a class training lacks, or of another kind.
    """
    y_train = next(iter(decided_on.values()))
    for name, y in others.items():
        _check_named_classes(y_train, y, name, context, binary=decided.head.task == "binary")
    # Encoding them together keeps the ids the training labels got; the task is the one decided,
    # and what deciding prints (a note on sparse ids) was printed already.
    with contextlib.redirect_stdout(io.StringIO()):
        again = tasks.decide({**decided_on, **others}, decided.head.task, context, what=what,
                             chosen_by_loss=chosen_by_loss, columns=names.get("y_columns"))
    y_trained = again.encoded[next(iter(decided_on))]
    if again.label_kind == "int":
        for name in others:
            _check_classes_trained(y_trained, again.encoded[name], {**names, "y_other": name}, "y_other",
                                   decided.class_names, context)
    return {name: again.encoded[name] for name in others}


def part_size(part):
    """Returns the number of examples of a split: an (x, y) pair, `ImageFiles` or `CsvRows`."""
    return len(part[1]) if isinstance(part, tuple) else len(part)


def check_enough_examples(count, context):
    """Refuses fewer than two training examples: training on one "succeeds" with a loss of 0."""
    if count < 2:
        raise UsageError(f"{context}: holds {count} training example(s); training needs at least two")


def target_statistics(targets):
    """Returns (mean, variance) of each target column of the training split, as float32 arrays."""
    targets = np.asarray(targets, dtype=np.float64)
    return targets.mean(axis=0).astype(np.float32), targets.var(axis=0).astype(np.float32)


def check_finite(x, name, context):
    """Refuses NaN or infinite inputs, naming the array and the first row: ReLU would hide them from the loss."""
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        value = x.reshape(len(x), -1)[row][~np.isfinite(x.reshape(len(x), -1)[row])][0]
        raise UsageError(f"{context}: {name} holds {value.item()!r} in row {row}; inputs must be finite numbers")


def _check_classes_trained(y_train, y_other, names, which, class_names, context):
    """Refuses validation (or test) class ids beyond the training labels' range: classes the model never learns.

    (A class inside the range that training happens to lack is left alone: a
    small training set may miss a rare class.)
    """
    beyond = y_other > y_train.max()
    if beyond.any():
        row = int(np.argmax(beyond))
        named = _class_name(y_other[row], class_names)
        raise UsageError(f"{context}: {names[which]} holds the class {named!r}, out of the range of "
                         f"{names['y_train']} (classes up to {_class_name(y_train.max(), class_names)!r}), "
                         f"in row {row}, so the model would never learn it")


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


def _check_same_example_shape(x_train, x_other, names, which, context):
    if x_train.shape[1:] != x_other.shape[1:]:
        raise UsageError(
            f"{context}: {names['x_train']} examples have shape {x_train.shape[1:]} "
            f"but {names[which]} examples have shape {x_other.shape[1:]}"
        )


def _check_named_classes(y_train, y_other, name, context, binary=False):
    """Refuses a class name (or, for a binary task, a value) the training labels lack, naming it and its row.

    Class ids are checked once encoded (`_check_classes_trained`); names have
    no range, so each must occur in training.
    """
    y_train, y_other = np.asarray(y_train), np.asarray(y_other)
    y_train = y_train.reshape(-1) if y_train.ndim == 2 and y_train.shape[1] == 1 else y_train
    y_other = y_other.reshape(-1) if y_other.ndim == 2 and y_other.shape[1] == 1 else y_other
    named = y_train.dtype.kind in "US" and y_other.dtype.kind in "US"
    numbers = binary and y_train.dtype.kind in "biuf" and y_other.dtype.kind in "biuf"
    if y_train.ndim != 1 or y_other.ndim != 1 or not (named or numbers):
        return
    unknown = ~np.isin(y_other, np.unique(y_train))
    if unknown.any():
        row = int(np.argmax(unknown))
        raise UsageError(f"{context}: {name} holds the class {y_other[row].item()!r} in row {row}, which the "
                         "training labels lack, so the model would never learn it")
