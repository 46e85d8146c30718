"""Reads `csv:PATH`: a header row, one label column and numeric feature columns."""

import csv
import math

import numpy as np

from kerasrun.core.errors import UsageError

LABEL_COLUMN_FLAG = "--dataset_label_column"


def read(path, label_column, context):
    """Returns `((x, y), None)` from a CSV file.

    Labels that are all integers are kept as class ids; otherwise they are
    strings, which `datasets.labels` maps to class ids in sorted order.

    Args:
        path: The CSV file; its first row names the columns.
        label_column: The name of the column that holds the labels.
        context: The flag and value, as a message prefix.

    Raises:
        UsageError: if the label column is missing, a row has the wrong
            number of cells, a feature cell is not a finite number, a label
            is empty, or the file has no data rows.
    """
    features, raw_labels = _with_reader(path, context, lambda reader: _read_rows(reader, label_column, context))
    return (np.array(features, dtype=np.float32), _label_array(raw_labels)), None


def check_header(path, label_column, context):
    """Checks, reading only the header row, that the file names the label column and a feature column.

    Raises:
        UsageError: as `read` does, about the header.
    """
    _with_reader(path, context, lambda reader: _label_index(_header(reader), label_column, context))


def _with_reader(path, context, use):
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            return use(csv.reader(file))
    except UnicodeDecodeError as error:
        raise UsageError(f"{context}: the file is not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise UsageError(f"{context}: the file is not valid CSV ({error})") from None


def array_names(label_column):
    """Returns names for `datasets.arrays.build_data` messages about a CSV's arrays."""
    return {"x_train": "the feature columns", "y_train": f"label column {label_column!r}"}


def _header(reader):
    return [name.strip() for name in next(reader, [])]


def _read_rows(reader, label_column, context):
    header = _header(reader)
    label_index = _label_index(header, label_column, context)
    features, raw_labels = [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # Blank lines, often one at the end of the file.
        where = f"{context}: line {reader.line_num}"
        if len(row) != len(header):
            raise UsageError(
                f"{where}: has {len(row)} cells but the header has {len(header)} columns"
            )
        label = row[label_index].strip()
        if not label:
            raise UsageError(f"{where}: label column {label_column!r} is empty")
        raw_labels.append(label)
        features.append([
            _feature_value(cell, header[index], where)
            for index, cell in enumerate(row)
            if index != label_index
        ])
    if not raw_labels:
        raise UsageError(f"{context}: the file has a header but no data rows")
    return features, raw_labels


def _label_index(header, label_column, context):
    if not header:
        raise UsageError(
            f"{context}: the file is empty; expected a header row naming the columns"
        )
    if label_column not in header:
        raise UsageError(
            f"{context}: no column {label_column!r} (columns: {', '.join(header)}); "
            f"name the label column with {LABEL_COLUMN_FLAG}"
        )
    if header.count(label_column) > 1:
        raise UsageError(
            f"{context}: more than one column is named {label_column!r}"
        )
    if len(header) < 2:
        raise UsageError(
            f"{context}: the file has only the label column; expected feature columns too"
        )
    return header.index(label_column)


def _feature_value(cell, column, where):
    try:
        value = float(cell)
    except ValueError:
        raise UsageError(
            f"{where}: column {column!r} holds {cell!r}; feature columns must be numbers"
        ) from None
    # NaN or infinity would only show up later as a loss of NaN.
    if not math.isfinite(value):
        raise UsageError(
            f"{where}: column {column!r} holds {cell!r}; feature values must be finite"
        )
    return value


def _label_array(raw_labels):
    """Returns the labels as numbers when every one is a number (1 and 1.0 are one class), else as text."""
    for number in (int, float):
        try:
            return np.array([number(label) for label in raw_labels])
        except ValueError:
            pass
    return np.array(raw_labels)
