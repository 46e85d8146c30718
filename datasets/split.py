"""Holds out part of the training examples for validation."""

import numpy as np

from kerasrun.core.errors import UsageError


def hold_out(x, y, validation_split, seed):
    """Splits arrays into training and validation parts at random.

    The held-out rows are drawn with a seeded shuffle rather than taken from
    the end, because files are often sorted by class and the last rows would
    then all be one class. Both parts keep the original order of their rows.

    Args:
        x: Examples, one per row.
        y: Labels, one per row of `x`.
        validation_split: Fraction of rows to hold out, in (0, 1).
        seed: Seed of the shuffle; the same seed holds out the same rows.

    Returns:
        `((x_train, y_train), (x_val, y_val))`.

    Raises:
        UsageError: if the fraction leaves either part empty.
    """
    num_examples = len(y)
    num_held_out = int(num_examples * validation_split)
    if not 0 < num_held_out < num_examples:
        raise UsageError(
            f"--validation_split={validation_split}: holds out {num_held_out} of {num_examples} "
            "training examples; both training and validation need at least one"
        )
    return hold_out_rows(x, y, num_held_out, seed)


def hold_out_rows(x, y, num_held_out, seed):
    """Splits arrays as `hold_out` does, holding out `num_held_out` rows (between 1 and all but one).

    Returns:
        `((x_train, y_train), (x_val, y_val))`.
    """
    num_examples = len(y)
    order = np.random.default_rng(seed).permutation(num_examples)
    val_rows = np.sort(order[:num_held_out])
    train_rows = np.sort(order[num_held_out:])
    return (_rows(x, train_rows), y[train_rows]), (_rows(x, val_rows), y[val_rows])


def _rows(x, rows):
    """Returns the rows `rows` of an array, or of every column of a table ({column: array})."""
    return {name: column[rows] for name, column in x.items()} if isinstance(x, dict) else x[rows]
