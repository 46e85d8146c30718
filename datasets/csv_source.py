"""Reads `csv:PATH`: a header row, label columns and feature columns (a table, `datasets.tabular`)."""

import csv
import math

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import tabular

LABEL_COLUMN_FLAG = "--dataset_label_column"
# Separators of other "CSV" files (spreadsheets in some locales, tab-separated exports), in words.
_OTHER_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def read(path, label_columns, context, categorical=()):
    """Returns `((x, y), None)` from a CSV file.

    One label column gives labels that are all integers, all numbers, or
    else strings (which `datasets.tasks` reads as class names); several give
    one row of numbers per example (several targets, or 0/1 per label).

    Args:
        path: The CSV file; its first row names the columns.
        label_columns: The names of the columns that hold the labels.
        categorical: The --dataset_categorical_columns: feature columns of
            whole numbers that code categories. Defaults to none.

    Returns:
        `((features, y), None)` and {column: kind}: the features as a table
        (`datasets.tabular`), one array of shape (n, 1) per column.
        context: The flag and value, as a message prefix.

    Raises:
        UsageError: if the label column is missing, a row has the wrong
            number of cells, a feature cell is not a finite number, a label
            is empty, or the file has no data rows.
    """
    header, rows, raw_labels = with_reader(path, context, lambda reader: _read_rows(reader, label_columns, context))
    features, kinds = tabular.columns(header, rows, categorical, context)
    return ((features, labels_array(raw_labels)), None), kinds


def check_header(path, label_columns, context):
    """Checks, reading only the header row, that the file names the label columns and a feature column.

    Raises:
        UsageError: as `read` does, about the header.
    """
    with_reader(path, context, lambda reader: label_indices_of(header_of(reader), label_columns, context))


def check_same_columns(path, train_path, label_columns, context):
    """Checks, reading only the headers, that another file (a test file) has the training file's columns.

    The columns are compared by name; their order may differ.

    Args:
        path: The other CSV file.
        train_path: The training CSV file (already checked).
        label_columns: The --dataset_label_column names.
        context: The other file's flag and value, as a message prefix.

    Raises:
        UsageError: naming the columns missing from the other file, or those
            the training file lacks.
    """
    header = with_reader(path, context, header_of)
    label_indices_of(header, label_columns, context)
    train_header = with_reader(train_path, context, header_of)
    missing = [name for name in train_header if name and name not in header]
    extra = [name for name in header if name and name not in train_header]
    if missing or extra:
        differences = ([f"lacks column(s) {', '.join(missing)}"] if missing else []) + (
            [f"has column(s) {', '.join(extra)} the training file lacks"] if extra else [])
        raise UsageError(f"{context}: needs the training file's columns (in any order) but "
                         f"{' and '.join(differences)}")


def read_other(path, context, kinds, label_columns):
    """Returns `(features, labels)` of another file of the training file's columns, read with its kinds.

    Args:
        path: The CSV file (a test or validation file).
        context: The file's flag and value, as a message prefix.
        kinds: The training file's {feature column: kind}.
        label_columns: The --dataset_label_column names.

    Raises:
        UsageError: as `read` does for its rows, and for a cell its
            column's kind cannot hold.
    """
    header, rows, raw_labels = with_reader(path, context, lambda reader: _read_rows(reader, label_columns, context))
    return tabular.convert(header, rows, kinds, context), labels_array(raw_labels)


def with_reader(path, context, use):
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            return use(csv.reader(file))
    except UnicodeDecodeError as error:
        raise UsageError(f"{context}: the file is not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise UsageError(f"{context}: the file is not valid CSV ({error})") from None


def array_names(label_columns, flags=()):
    """Returns names for `datasets.arrays.build_data` messages about a CSV's arrays (and "y_columns", the label columns).

    Args:
        label_columns: The --dataset_label_column names.
        flags: {"val" or "test": the flag naming the file that split comes
            from}, so that messages about its arrays name the flag.
    """
    labels = (f"label column {label_columns[0]!r}" if len(label_columns) == 1
              else f"label columns {', '.join(label_columns)}")
    names = {"x_train": "the feature columns", "y_train": labels}
    for part, flag in dict(flags).items():
        names.update({f"x_{part}": f"the feature columns of {flag}", f"y_{part}": f"{labels} of {flag}"})
    if len(label_columns) > 1:
        names["y_columns"] = tuple(label_columns)
    return names


def header_of(reader):
    return [name.strip() for name in next(reader, [])]


def _read_rows(reader, label_columns, context):
    header = header_of(reader)
    label_indices = label_indices_of(header, label_columns, context)
    features, raw_labels = [], []
    for _, _, labels, cells in data_rows(reader, header, label_indices, context):
        raw_labels.append(labels)
        features.append(cells)
    return feature_columns(header, label_indices), features, raw_labels


def feature_columns(header, label_indices):
    """Returns the names of the columns that are not labels, in the file's order (unnamed ones left out)."""
    return [name for index, name in enumerate(header) if index not in label_indices and name]


def data_rows(reader, header, label_indices, context):
    """Yields (line number, spans, label cells, feature cells) of every data row, checked; skips blank lines.

    The line number is the row's last line; `spans` says whether the row
    took several lines (a quoted cell holding a line break).

    Raises:
        UsageError: for a row with the wrong number of cells or an empty
            label, or a file without data rows.
    """
    count, previous = 0, reader.line_num
    for row in reader:
        spans, previous = reader.line_num - previous > 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # Blank lines, often one at the end of the file.
        where = f"{context}: line {reader.line_num}"
        if len(row) != len(header):
            raise UsageError(
                f"{where}: has {len(row)} cells but the header has {len(header)} columns"
            )
        for index, name in enumerate(header):
            if not name and row[index].strip():  # An unnamed column is ignored only while its cells are empty.
                raise UsageError(f"{where}: column {index + 1} of the header has no name, but this row holds "
                                 f"{row[index].strip()!r} in it; give the column a name in the header")
        count += 1
        yield (reader.line_num, spans,
               [_label_cell(row[index], header[index], where, len(label_indices) > 1) for index in label_indices],
               [cell for index, cell in enumerate(row) if index not in label_indices and header[index]])
    if not count:
        raise UsageError(f"{context}: the file has a header but no data rows")


def labels_array(raw_labels):
    """Returns the label cells as an array: `label_array` of one column, or float64 rows of several."""
    if len(raw_labels[0]) == 1:
        return _label_array([row[0] for row in raw_labels])
    return np.array(raw_labels, dtype=np.float64)


def label_indices_of(header, label_columns, context):
    if not header:
        raise UsageError(
            f"{context}: the file is empty; expected a header row naming the columns"
        )
    named = [name for name in header if name]
    for name in named:
        if named.count(name) > 1:
            raise UsageError(f"{context}: column {name!r} appears {named.count(name)} times in the header; "
                             "columns must have distinct names")
    for label_column in label_columns:
        if label_column not in header:
            separator = next((words for mark, words in _OTHER_SEPARATORS.items()
                              if len(header) == 1 and mark in header[0]), None)
            if separator:  # A file of one column, whose name holds the real separator.
                raise UsageError(
                    f"{context}: the header is one column, {header[0]!r}: the file seems separated by {separator}, "
                    "but the runner reads comma-separated files; save it with commas between the cells"
                )
            raise UsageError(
                f"{context}: no column {label_column!r} (columns: {', '.join(header)}); "
                f"name the label column{'s' if len(label_columns) > 1 else ''} with {LABEL_COLUMN_FLAG}"
            )
    if len(named) <= len(label_columns):
        only = "the label column" if len(label_columns) == 1 else "label columns"
        raise UsageError(f"{context}: the file has only {only}; expected feature columns too")
    return [header.index(label_column) for label_column in label_columns]


def _label_cell(cell, column, where, several):
    label = cell.strip()
    if not label:
        raise UsageError(f"{where}: label column {column!r} is empty")
    if several:  # One number per column: targets, or 0/1 per label.
        return _feature_value(label, column, where, "label columns must hold numbers when there are several")
    return label


def _feature_value(cell, column, where, rule="feature columns must be numbers"):
    try:
        value = float(cell)
    except ValueError:
        raise UsageError(
            f"{where}: column {column!r} holds {cell!r}; {rule}"
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
