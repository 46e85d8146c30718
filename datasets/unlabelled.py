"""Inputs without labels, for --mode predict: a CSV file's feature columns streamed in batches, an .npz's x arrays.

A CSV file is read twice, row by row, holding one batch at a time: once
before TensorFlow is imported, to refuse a bad cell naming its line and
column (and to count the rows), then once to predict. Its label columns may
be there or not; they are not read. Each column is read as the model's input
of that name takes it: text (a missing cell is the category ""), whole numbers
coding categories (missing: -1, as in training), or numbers. A saved model
holds no means to fill a missing number with, so such a cell is refused.
"""

import csv

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import arrays, csv_source, npz_source, tabular

# The x arrays an .npz file may hold, in the order "every example" reads them.
X_ARRAYS = ("x_train", "x_val", "x_test")


def kind_of_dtype(dtype):
    """Returns the table column kind (`datasets.tabular`) a model input of `dtype` takes."""
    if dtype == "string":
        return tabular.TEXT
    return tabular.INTEGER_CODES if dtype.startswith(("int", "uint")) else tabular.NUMERIC


class CsvFeatures:
    """A CSV file's feature columns, read in batches of {column: array (n, 1)} for a model's named inputs.

    Args:
        path: The CSV file; its first row names the columns.
        kinds: {column: kind} of the columns the model takes.
        context: The flag and value, as a message prefix.
    """

    def __init__(self, path, kinds, context):
        self.path, self.kinds, self.context = path, dict(kinds), context

    def count(self):
        """Reads the file once, checking every cell the model takes; returns the number of data rows.

        Raises:
            UsageError: naming the line and column of a missing number, a
                cell that is not a number (or not a whole one) where the model
                takes one, or a row of the wrong length; or a file without rows.
        """
        return sum(len(batch[next(iter(self.kinds))]) for batch in self.batches(4096))

    def batches(self, batch_size):
        """Yields {column: array (n, 1)} of up to `batch_size` rows, in the file's order (checked as `count`)."""
        with open(self.path, newline="", encoding="utf-8-sig") as file:
            try:
                yield from self._batches(csv.reader(file), batch_size)
            except UnicodeDecodeError as error:
                raise UsageError(f"{self.context}: the file is not UTF-8 text ({error})") from None
            except csv.Error as error:
                raise UsageError(f"{self.context}: the file is not valid CSV ({error})") from None

    def _batches(self, reader, batch_size):
        header = csv_source.header_of(reader)
        if not header:
            raise UsageError(f"{self.context}: the file is empty; expected a header row naming the columns")
        csv_source.label_indices_of(header, [], self.context)  # A column named twice is refused, as training does.
        named = csv_source.feature_columns(header, [])
        where = {name: named.index(name) for name in self.kinds}
        rows = []
        for line, _, _, cells in csv_source.data_rows(reader, header, [], self.context):
            rows.append([self._value(cells[where[name]], name, kind, line) for name, kind in self.kinds.items()])
            if len(rows) == batch_size:
                yield self._columns(rows)
                rows = []
        if rows:
            yield self._columns(rows)

    def _value(self, cell, name, kind, line):
        cell = cell.strip()
        missing = cell.lower() in tabular.MISSING
        if kind == tabular.TEXT:
            return "" if missing else cell
        if missing and kind == tabular.INTEGER_CODES:
            return tabular.MISSING_CODE
        where = f"{self.context}: line {line}, column {name!r}"
        if missing:
            raise UsageError(f"{where}: is missing ({cell!r}); the saved model holds no value to fill it with "
                             "(training filled it with the training split's mean): give a number")
        try:
            value = float(cell)
        except ValueError:
            raise UsageError(f"{where}: holds {cell!r}; the model takes numbers in this column") from None
        if not np.isfinite(value):
            raise UsageError(f"{where}: holds {cell!r}; numbers must be finite")
        if kind == tabular.INTEGER_CODES and value != round(value):
            raise UsageError(f"{where}: holds {cell!r}; the model takes whole numbers (category codes) here")
        return value

    def _columns(self, rows):
        dtypes = {tabular.TEXT: object, tabular.INTEGER_CODES: np.int64, tabular.NUMERIC: np.float32}
        return {name: np.array([row[index] for row in rows], dtype=dtypes[kind]).reshape(-1, 1)
                for index, (name, kind) in enumerate(self.kinds.items())}


def npz_inputs(path, context):
    """Returns (the x examples of an .npz file to predict, which arrays they are): x_test if it has one, else all.

    y arrays may be there or not; they are not read.

    Raises:
        UsageError: as `npz_source` does for an unreadable archive or a
            pickled array, and for a file without x arrays.
    """
    with npz_source._open(path, context) as archive:
        names = [name for name in X_ARRAYS if name in archive.files]
        if "x_test" in names:
            names = ["x_test"]
        if not names:
            raise UsageError(f"{context}: holds no x array ({', '.join(X_ARRAYS)}) to predict")
        parts = [npz_source._read_member(archive, name, context) for name in names]
    if len({array.shape[1:] for array in parts}) > 1:
        raise UsageError(f"{context}: {' and '.join(names)} hold examples of different shapes")
    for name, array in zip(names, parts):
        if not len(array):
            raise UsageError(f"{context}: {name} holds no example to predict")
        if array.dtype.kind not in "biuf":
            raise UsageError(f"{context}: {name} holds {array.dtype} values; the model takes numbers")
        arrays.check_finite(array, name, context)
    return np.concatenate(parts) if len(parts) > 1 else parts[0], names
