"""Tables from CSV files: columns of numbers, text categories and integer-coded categories, with missing cells.

A table's features are a dict {column: array of shape (n, 1)}, which the
model takes as it is: Keras's `FeatureSpace` (built and adapted on the
training split only, in `feature_space`) is the model's first layer, so a
saved model predicts on raw rows.

Missing cells (empty, NA, N/A, NaN, null or ?): in a numeric column they are
filled with the column's mean over the training split (after the validation
hold-out), which the normalisation then maps to 0; in a text column they are
the category "" of their own; in an integer-coded category column, -1.
"""

import math
import os
import tempfile

import numpy as np

from kerasrun.core.errors import UsageError

CATEGORICAL_FLAG = "--dataset_categorical_columns"
MISSING = frozenset(("", "na", "n/a", "nan", "null", "?"))
NUMERIC, TEXT, INTEGER_CODES = "numeric", "text", "integer-coded"
MISSING_CODE = -1
# A column whose cells are at least this fraction numbers is numbers with mistakes, not text.
_MOSTLY_NUMBERS = 0.9


class Survey:
    """Finds each feature column's kind from its cells, row by row, holding no cells (so it can stream).

    A column is numeric when every cell that is not missing is a number,
    integer-coded when also named in --dataset_categorical_columns (its
    numbers must then be whole), and text otherwise: a named column holding
    any cell that is not a number is text categories, whatever its numbers. A column of numbers with a few cells
    that are not (`12.5`, `-`, `12,5`) is refused, naming the first: read as
    text, its numbers would become categories. Naming it in
    --dataset_categorical_columns reads it as text on purpose (zip codes).

    Args:
        header: The feature columns' names.
        categorical: The --dataset_categorical_columns names.
        context: The flag and value the file came from, for messages.

    Raises:
        UsageError: for a categorical column that does not exist.
    """

    def __init__(self, header, categorical, context):
        for name in categorical:
            if name not in header:
                raise UsageError(f"{CATEGORICAL_FLAG}={','.join(categorical)}: {context} has no feature column "
                                 f"{name!r} (feature columns: {', '.join(header)})")
        self.header, self.categorical, self.context = header, categorical, context
        self.numeric = [True] * len(header)
        self.numbers = [0] * len(header)
        self.others = [0] * len(header)
        self.first_other = [None] * len(header)
        self.first_fraction = [None] * len(header)  # (cell, row) of the first number that is not whole.
        self.rows = 0

    def add(self, cells):
        """Takes one row's feature cells (strings, in `header`'s order).

        Raises:
            UsageError: for an infinite number.
        """
        self.rows += 1
        for index, cell in enumerate(cells):
            cell = cell.strip()
            if cell.lower() in MISSING:
                continue
            try:
                value = float(cell)
            except ValueError:
                self.numeric[index] = False
                self.others[index] += 1
                if self.first_other[index] is None:
                    self.first_other[index] = (cell, self.rows)
                continue
            self.numbers[index] += 1
            if not self.numeric[index]:
                continue
            name = self.header[index]
            if not math.isfinite(value):
                raise UsageError(f"{self.context}: column {name!r} holds {cell!r} in data row {self.rows}; "
                                 "numbers must be finite (leave a cell empty for a missing value)")
            if value != round(value) and self.first_fraction[index] is None:
                self.first_fraction[index] = (cell, self.rows)

    def kinds(self):
        """Returns {column: kind}, sorted by name (the order of the FeatureSpace's inputs).

        Raises:
            UsageError: for a column of numbers with a few cells that are
                not, or a categorical column of numbers that are not whole.
        """
        for name, numbers, others, first in zip(self.header, self.numbers, self.others, self.first_other):
            if others and numbers >= _MOSTLY_NUMBERS * (numbers + others) and name not in self.categorical:
                cell, row = first
                raise UsageError(
                    f"{self.context}: column {name!r} holds numbers but {cell!r} in data row {row} ({others} of "
                    f"{numbers + others} cells are not numbers); leave a missing cell empty or write NA, or name "
                    f"the column in {CATEGORICAL_FLAG} to read it as text categories")
        for name, numeric, fraction in zip(self.header, self.numeric, self.first_fraction):
            if numeric and fraction and name in self.categorical:  # Integer codes; with text it would be text.
                raise UsageError(f"{self.context}: column {name!r} holds numbers that are not whole ({fraction[0]!r} "
                                 f"in data row {fraction[1]}); {CATEGORICAL_FLAG} names columns of whole numbers "
                                 "that code categories, or of text")
        kinds = {name: TEXT if not numeric else INTEGER_CODES if name in self.categorical else NUMERIC
                 for name, numeric in zip(self.header, self.numeric)}
        return {name: kinds[name] for name in sorted(kinds)}


def columns(header, rows, categorical, context):
    """Returns ({column: array (n, 1)}, {column: kind}) of the feature cells, by column (see `Survey`).

    Missing numbers are NaN here, filled by `fill_missing` once the training
    split is known.

    Args:
        header: The feature columns' names.
        rows: Lists of cells (strings), one per example, in `header`'s order.
        categorical: The --dataset_categorical_columns names.
        context: The flag and value the file came from, for messages.

    Raises:
        UsageError: as `Survey` does.
    """
    survey = Survey(header, categorical, context)
    for row in rows:
        survey.add(row)
    kinds = survey.kinds()
    return convert(header, rows, kinds, context), kinds


def convert(header, rows, kinds, context):
    """Returns {column: array (n, 1)} of the feature cells read as `kinds` says (missing numbers NaN).

    For the training file `kinds` comes from its own survey; another file of
    the same columns (a test file) is read with the training file's kinds.

    Args:
        header: The feature columns' names, in the rows' order.
        rows: Lists of cells (strings), one per example.
        kinds: {column: kind}.
        context: The flag and value the file came from, for messages.

    Raises:
        UsageError: for a cell of a numeric or integer-coded column that is
            not a (finite, whole for codes) number, naming column and row.
    """
    features = {}
    for name, kind in kinds.items():
        index = header.index(name)
        cells = [row[index].strip() for row in rows]
        missing = np.array([cell.lower() in MISSING for cell in cells], dtype=bool)
        if kind == TEXT:
            features[name] = np.array(["" if gone else cell for cell, gone in zip(cells, missing)], dtype=object)
            continue
        numbers = np.array([np.nan if gone else checked_number(cell, name, kind, row, context)
                            for row, (cell, gone) in enumerate(zip(cells, missing), start=1)])
        if kind == INTEGER_CODES:
            features[name] = np.where(missing, MISSING_CODE, np.nan_to_num(numbers)).astype(np.int64)
        else:
            features[name] = numbers.astype(np.float32)
    return {name: column.reshape(-1, 1) for name, column in features.items()}


def checked_number(cell, name, kind, row, context):
    """Returns a numeric or integer-coded column's cell as a float, refusing what its kind cannot hold.

    Args:
        cell: The cell, stripped, not missing.
        name: Its column.
        kind: NUMERIC or INTEGER_CODES.
        row: Its data row (from 1), for messages.
        context: The flag and value the file came from, for messages.

    Raises:
        UsageError: for text, an infinite number, or a fraction in a column of codes.
    """
    try:
        value = float(cell)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (kind == INTEGER_CODES and value != round(value)):
        wanted = "whole numbers (category codes)" if kind == INTEGER_CODES else "finite numbers"
        raise UsageError(f"{context}: column {name!r} holds {cell!r} in data row {row}; in the training file "
                         f"it holds {wanted} (leave a cell empty for a missing value)")
    return value


def take_rows(features, rows):
    """Returns the table's rows `rows` (an index array), every column alike."""
    return {name: column[rows] for name, column in features.items()}


def fill_missing(train, others, kinds, context):
    """Fills missing numbers with the training split's column means; returns (train, others) filled.

    Raises:
        UsageError: for a numeric column with no number in the training split.
    """
    means = {}
    for name, kind in kinds.items():
        if kind == NUMERIC:
            known = train[name][~np.isnan(train[name])]
            if not len(known):
                raise UsageError(f"{context}: column {name!r} has no value in the training split; "
                                 "leave it out of the file")
            means[name] = np.float32(known.mean())

    def filled(table):
        return {name: np.where(np.isnan(column), means[name], column) if name in means else column
                for name, column in table.items()}

    return filled(train), [None if table is None else filled(table) for table in others]


def describe(kinds):
    """Returns the table's columns in words, for the line the run prints."""
    counts = {kind: sum(1 for value in kinds.values() if value == kind) for kind in (NUMERIC, TEXT, INTEGER_CODES)}
    return ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)


def feature_space(kinds, train):
    """Returns Keras's FeatureSpace for the table, adapted on the training split: numbers normalised, categories one-hot.

    Categories met only later (in validation data, or by a saved model) go to
    one out-of-vocabulary slot. Imports Keras and TensorFlow.

    Args:
        kinds: {column: kind}.
        train: The training split's features: {column: array (n, 1)}, or a
            streamed file's `CsvRows`.
    """
    import keras
    import tensorflow as tf

    space = keras.utils.FeatureSpace
    specs = {NUMERIC: space.float_normalized, TEXT: lambda: space.string_categorical(num_oov_indices=1),
             INTEGER_CODES: lambda: space.integer_categorical(num_oov_indices=1)}
    encoder = space(features={name: specs[kind]() for name, kind in kinds.items()}, output_mode="concat")
    if isinstance(train, dict):
        batches = tf.data.Dataset.from_tensor_slices({name: column[:, 0] for name, column in train.items()}).batch(1024)
        encoder.adapt(batches)
        return encoder
    # FeatureSpace adapts one column per pass over the data: a streamed file is parsed once, into a
    # scratch file the passes read back (about as large as the file), not once per column.
    with tempfile.TemporaryDirectory(prefix="kerasrun-adapt-") as scratch:
        batches = train.feature_batches().map(
            lambda features: {name: column[:, 0] for name, column in features.items()}
        ).cache(os.path.join(scratch, "features"))
        for _ in batches:  # Written whole before FeatureSpace's own passes, which stop after one batch at times.
            pass
        encoder.adapt(batches)
    return encoder


def wrap(body_builder, kinds, train):
    """Returns a model that takes the raw columns: the FeatureSpace, then the model `body_builder(width)` builds.

    Args:
        body_builder: Called with the encoded input shape, `(width,)`; returns a `keras.Model`.
        kinds: {column: kind}.
        train: The training split's features, to adapt the FeatureSpace on (see `feature_space`).
    """
    import keras

    encoder = feature_space(kinds, train)
    encoded = encoder.get_encoded_features()
    body = body_builder((int(encoded.shape[-1]),))
    # A plain dict: Keras warns on every call when the inputs are its own tracked dict.
    return keras.Model(dict(encoder.get_inputs()), body(encoded), name=body.name)
