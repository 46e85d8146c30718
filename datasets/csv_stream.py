"""A CSV file too large for memory: surveyed once in Python, then read by tf.data from disk every epoch.

The survey reads the file row by row, keeping only the labels and each row's
line number: it checks every row as the in-memory reader does and finds each
column's kind (`tabular.Survey`). The training and validation parts are then
sets of line numbers; each epoch, `tf.data.TextLineDataset` reads the lines,
keeps its part's, shuffles each block of SHUFFLE_ROWS rows in an order drawn
from (seed, epoch, block) (so a resumed run sees the same order; a file read
in order cannot be shuffled as a whole), and parses a batch of lines at a
time with `tf.io.decode_csv`. Memory holds the labels, a byte per line and a
block, whatever the file's size.
"""

import dataclasses

import numpy as np

from kerasrun.core.errors import UsageError
from kerasrun.datasets import arrays, csv_source, split, tabular, tasks
from kerasrun.datasets.data import Data

SHUFFLE_ROWS = 10_000
# Bytes of memory the in-memory reader takes per byte of file (the cells as Python strings, then arrays).
MEMORY_PER_FILE_BYTE = 12
_TRAIN, _VALIDATION, _OTHER_FILE = 1, 2, 3


@dataclasses.dataclass(frozen=True, eq=False)
class CsvRows:
    """One part (training, validation or test) of a streamed CSV file.

    Args:
        path: The CSV file.
        header: All its columns, in the file's order.
        kinds: {feature column: kind}, sorted by name.
        part: Per physical line of the file, the part it belongs to (0 none,
            1 training, 2 validation, 3 every row of a file of its own: a
            --dataset_test or --dataset_validation file), as uint8.
        which: The part this object reads: 1, 2 or 3.
        labels: Per physical line, the encoded labels (zero on other lines).
        fill: {numeric column: the training split's mean}, for missing cells.
    """

    path: str
    header: tuple
    kinds: dict
    part: np.ndarray
    which: int
    labels: np.ndarray
    fill: dict

    def __len__(self):
        return int(np.count_nonzero(self.part == self.which))

    @property
    def part_labels(self):
        """The encoded labels of this part's rows, in file order."""
        return self.labels[self.part == self.which]

    def batches(self, batch_size, shuffle_seed=None, epoch=None):
        """Returns a dataset of (features, labels) batches; shuffled per (seed, epoch) when both are given."""
        import tensorflow as tf

        steps = -(-len(self) // batch_size)

        def one_pass(seed=None):
            lines = tf.data.TextLineDataset(self.path).enumerate()
            part, which = tf.constant(self.part), self.which
            rows = lines.filter(lambda number, line: tf.gather(part, number) == which)
            if seed is not None:  # Each block of rows in an order drawn from (seed, epoch, block).
                rows = rows.batch(SHUFFLE_ROWS).enumerate().map(
                    lambda block, pair: _shuffled(pair, tf.stack([seed, block]))).unbatch()
            return rows.batch(batch_size).map(self._parse, num_parallel_calls=tf.data.AUTOTUNE)

        if shuffle_seed is None or epoch is None:
            batches = one_pass().apply(tf.data.experimental.assert_cardinality(steps))
        else:
            from kerasrun.datasets.pipeline import per_epoch

            batches = per_epoch(lambda: one_pass(tf.constant(shuffle_seed, tf.int64) * 1_000_003
                                                 + epoch.variable), steps)
        return batches.prefetch(tf.data.AUTOTUNE)

    def feature_batches(self):
        """Returns a dataset of the part's feature batches, in file order (to adapt the FeatureSpace on)."""
        return self.batches(1024).map(lambda features, labels: features)

    def _parse(self, numbers, lines):
        import tensorflow as tf

        cells = tf.io.decode_csv(lines, record_defaults=[""] * len(self.header))
        features = {}
        for name, kind in self.kinds.items():
            cell = tf.strings.strip(cells[self.header.index(name)])
            missing = tf.reduce_any(tf.equal(tf.strings.lower(cell)[:, None], sorted(tabular.MISSING)), axis=1)
            if kind == tabular.TEXT:
                value = tf.where(missing, "", cell)
            else:
                number = tf.strings.to_number(tf.where(missing, "0", cell),
                                              tf.float32 if kind == tabular.NUMERIC else tf.int64)
                gap = self.fill.get(name, np.nan) if kind == tabular.NUMERIC else tabular.MISSING_CODE
                value = tf.where(missing, tf.cast(gap, number.dtype), number)
            features[name] = value[:, None]
        return features, tf.gather(tf.constant(self.labels), numbers)


def _shuffled(pair, seed):
    """Returns (numbers, lines), a block of rows, in the order of keys drawn from `seed`."""
    import tensorflow as tf

    numbers, lines = pair
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(numbers), seed=seed), stable=True)
    return tf.gather(numbers, order), tf.gather(lines, order)


def fits_in_memory(path):
    """Whether --dataset_cache auto holds the file in memory: its cells take at most a quarter of the memory free."""
    import os

    from kerasrun.datasets import memory

    return memory.fits_in_free_memory(os.path.getsize(path) * MEMORY_PER_FILE_BYTE)


def read(path, label_columns, context, *, categorical, validation_split, seed, task, chosen_by_loss, others=None):
    """Surveys a CSV file and returns a `Data` whose parts are `CsvRows`, read from disk every epoch.

    Checks and decides as the in-memory reader and `arrays.build_data` do.
    A test or validation file (`others`) is streamed too: checked row by row
    against the training file's column kinds, its labels encoded with the
    training labels' classes, its missing numbers filled with the training
    means.

    Args:
        others: {"val" or "test": (path, context)}: files of the training
            file's columns holding those splits. Defaults to none.

    Raises:
        UsageError: as `csv_source.read` and `arrays.build_data` do, and for
            a row spread over several lines (a quoted line break), which
            tf.data cannot read line by line.
    """
    print(f"{context}: streaming the file from disk (--dataset_cache none, or too large for memory); "
          "surveying it", flush=True)
    header, lines, line_count, raw_labels, kinds = csv_source.with_reader(
        path, context, lambda reader: _survey(reader, label_columns, categorical, context))
    names = csv_source.array_names(label_columns)
    arrays.check_enough_examples(len(lines), context)
    decided = tasks.decide({names["y_train"]: csv_source.labels_array(raw_labels)}, task, context,
                           what=names["y_train"], chosen_by_loss=chosen_by_loss, columns=names.get("y_columns"))
    labels = decided.encoded[names["y_train"]]
    lines = np.asarray(lines, dtype=np.int64)
    part = np.zeros(line_count + 1, dtype=np.uint8)  # Every line TextLineDataset may read, blank ones too.
    if validation_split > 0:
        (train_lines, train_labels), (val_lines, _) = split.hold_out(lines, labels, validation_split, seed)
        part[val_lines] = _VALIDATION
    else:
        train_lines, train_labels = lines, labels
    part[train_lines] = _TRAIN
    by_line = np.zeros((len(part), *labels.shape[1:]), dtype=labels.dtype)
    by_line[lines] = labels
    train = CsvRows(path, tuple(header), kinds, part, _TRAIN, by_line, {})
    train = dataclasses.replace(train, fill=_training_means(train, context))
    val = dataclasses.replace(train, which=_VALIDATION) if validation_split > 0 else None
    origins = {"validation": arrays.held_out_words(validation_split)} if val else {}
    parts = {}
    for name, (other_path, other_context) in (others or {}).items():
        parts[name] = _other_file(other_path, other_context, train, label_columns, decided,
                                  {names["y_train"]: csv_source.labels_array(raw_labels)}, chosen_by_loss, names)
        origins[{"val": "validation"}.get(name, name)] = f"{other_context.partition('=')[0]} {other_path}"
    val = parts.get("val", val)
    print(f"{context}: {len(train)} training rows" + (f", {len(val)} validation rows" if val else "")
          + (f", {len(parts['test'])} test rows" if "test" in parts else ""), flush=True)
    return Data(train=train, val=val, test=parts.get("test"), origins=origins, input_shape=(len(kinds),),
                num_classes=decided.head.units,
                label_kind=decided.label_kind, class_names=decided.class_names, head=decided.head,
                task_reason=decided.reason, table=kinds,
                target_stats=arrays.target_statistics(train_labels) if decided.head.task == "regression" else None)


def _other_file(path, context, train, label_columns, decided, decided_on, chosen_by_loss, names):
    """Returns the `CsvRows` of every row of another file of the training file's columns (a test file)."""
    def index(reader):
        header = csv_source.header_of(reader)
        label_indices = csv_source.label_indices_of(header, label_columns, context)
        columns = csv_source.feature_columns(header, label_indices)
        numeric = [(columns.index(name), name, kind) for name, kind in train.kinds.items() if kind != tabular.TEXT]
        lines, raw_labels = [], []
        for line, spans, labels, cells in csv_source.data_rows(reader, header, label_indices, context):
            if spans:
                raise UsageError(f"{context}: the row ending on line {line} has a quoted cell holding a line "
                                 "break, which a file streamed line by line cannot have; use --dataset_cache memory")
            for position, name, kind in numeric:  # What tf.strings.to_number would fail on mid-training.
                cell = cells[position].strip()
                if cell.lower() not in tabular.MISSING:
                    tabular.checked_number(cell, name, kind, len(lines) + 1, context)
            lines.append(line - 1)
            raw_labels.append(labels)
        return header, lines, reader.line_num, raw_labels

    header, lines, line_count, raw_labels = csv_source.with_reader(path, context, index)
    what = names["y_train"]
    other_name = f"{what} of {context.partition('=')[0]}"
    labels = arrays.encode_others(decided, decided_on, {other_name: csv_source.labels_array(raw_labels)}, context,
                                  what=what, chosen_by_loss=chosen_by_loss, names=names)[other_name]
    part = np.zeros(line_count + 1, dtype=np.uint8)
    part[lines] = _OTHER_FILE
    by_line = np.zeros((len(part), *labels.shape[1:]), dtype=labels.dtype)
    by_line[lines] = labels
    return dataclasses.replace(train, path=path, header=tuple(header), part=part, which=_OTHER_FILE, labels=by_line)


def _survey(reader, label_columns, categorical, context):
    header = csv_source.header_of(reader)
    label_indices = csv_source.label_indices_of(header, label_columns, context)
    survey = tabular.Survey(csv_source.feature_columns(header, label_indices), categorical, context)
    lines, raw_labels = [], []
    for line, spans, labels, cells in csv_source.data_rows(reader, header, label_indices, context):
        if spans:
            raise UsageError(f"{context}: the row ending on line {line} has a quoted cell holding a line break, "
                             "which a file streamed line by line cannot have; use --dataset_cache memory")
        survey.add(cells)
        lines.append(line - 1)  # TextLineDataset numbers lines from 0.
        raw_labels.append(labels)
    return header, lines, reader.line_num, raw_labels, survey.kinds()


def _training_means(train, context):
    """Returns {numeric column: its mean over the training rows, missing cells left out}, in one pass."""
    import tensorflow as tf

    numeric = [name for name, kind in train.kinds.items() if kind == tabular.NUMERIC]
    if not numeric:
        return {}
    sums, counts = np.zeros(len(numeric)), np.zeros(len(numeric))
    for features, _ in train.batches(4096):
        values = tf.concat([features[name] for name in numeric], axis=1).numpy().astype(np.float64)
        known = ~np.isnan(values)
        sums += np.where(known, values, 0).sum(axis=0)
        counts += known.sum(axis=0)
    for name, count in zip(numeric, counts):
        if not count:
            raise UsageError(f"{context}: column {name!r} has no value in the training split; leave it out of the file")
    return {name: float(total / count) for name, total, count in zip(numeric, sums, counts)}
