"""A CSV file streamed from disk (--dataset_cache none) holds the same rows, split and filled as in memory."""

import json

import numpy as np
import pytest

from kerasrun import datasets
from kerasrun.core.errors import UsageError
from kerasrun.datasets import csv_stream

ROWS = 300


def write_table(path, rows=ROWS):
    """A table with a unique id, a number with gaps, a text column with gaps, an integer code and a 0/1 label."""
    rng = np.random.default_rng(3)
    lines = ["id,size,colour,code,label"]
    for row in range(rows):
        size = "" if row % 7 == 0 else f"{rng.normal(10, 3):.4f}"
        colour = "NA" if row % 11 == 0 else ["red", "green", "blue"][row % 3]
        code = row % 4
        label = int((row % 3 == 0) ^ (row % 5 == 0))
        lines.append(f"{row},{size},{colour},{code},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path, cache, validation_split=0.25, categorical=("code",)):
    return datasets.load(f"csv:{path}", seed=5, validation_split=validation_split, cache=cache,
                         categorical=categorical)


def stream_rows(rows, **batching):
    """All (features, labels) of a CsvRows part, as a table of numpy columns and a label array."""
    table, labels = {}, []
    for features, y in rows.batches(64, **batching).as_numpy_iterator():
        for name, column in features.items():
            table.setdefault(name, []).append(column)
        labels.append(y)
    return {name: np.concatenate(parts) for name, parts in table.items()}, np.concatenate(labels)


def by_id(table, labels):
    order = np.argsort(table["id"][:, 0])
    return {name: column[order] for name, column in table.items()}, labels[order]


def test_a_streamed_file_holds_the_same_split_filled_rows_as_in_memory(tmp_path):
    path = write_table(tmp_path / "table.csv")
    memory, streamed = load(path, "memory"), load(path, "none")
    assert isinstance(streamed.train, csv_stream.CsvRows) and isinstance(memory.train[0], dict)
    assert streamed.table == memory.table == {"code": "integer-coded", "colour": "text", "id": "numeric",
                                              "size": "numeric"}
    assert (streamed.head, streamed.label_kind) == (memory.head, memory.label_kind)
    for part in ("train", "val"):
        expected = by_id(*getattr(memory, part))
        got = by_id(*stream_rows(getattr(streamed, part)))
        assert len(got[1]) == len(expected[1]) == {"train": 225, "val": 75}[part]
        np.testing.assert_array_equal(got[1], expected[1])
        for name in ("id", "code"):
            np.testing.assert_array_equal(got[0][name].astype(np.int64), expected[0][name].astype(np.int64))
        np.testing.assert_allclose(got[0]["size"], expected[0]["size"], rtol=1e-6)  # Gaps: the training mean.
        assert [value.decode() for value in got[0]["colour"][:, 0]] == list(expected[0]["colour"][:, 0])


def test_the_order_of_a_streamed_epoch_depends_only_on_the_seed_and_the_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_stream, "SHUFFLE_ROWS", 100)  # Three blocks of the 300 rows.
    rows = load(write_table(tmp_path / "table.csv"), "none", validation_split=0.0).train
    epoch = datasets.EpochCounter()

    def order(seed, at):
        epoch.variable.assign(at)
        return stream_rows(rows, shuffle_seed=seed, epoch=epoch)[0]["id"][:, 0]

    first = order(1, 0)
    assert sorted(first) == list(range(ROWS))  # Every row once.
    np.testing.assert_array_equal(order(1, 0), first)  # A resumed epoch reads the same order.
    assert not np.array_equal(order(1, 1), first) and not np.array_equal(order(2, 0), first)
    assert sorted(first[:100]) == list(range(100))  # Shuffled within a block of SHUFFLE_ROWS, blocks in file order.


def test_a_quoted_line_break_cannot_be_streamed(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('note,label\n"two\nlines",1\nplain,0\n' + "x,1\n" * 20)
    with pytest.raises(UsageError, match="the row ending on line 3 has a quoted cell holding a line break.*--dataset_cache memory"):
        load(path, "none", validation_split=0.0, categorical=())
    assert len(load(path, "memory", validation_split=0.0, categorical=()).train[1]) == 22


def test_a_streamed_file_trains_and_its_saved_model_predicts_raw_rows(train, tmp_path):
    write_table(tmp_path / "table.csv")
    result = train("--dataset=csv:table.csv", "--dataset_cache=none", "--dataset_categorical_columns=code",
                   "--epochs=2", "--run_name=streamed", "--model_checkpoint=True", "--verbose=2",
                   "--validation_split=0.25")
    assert result.returncode == 0, result.stderr
    assert "streaming the file from disk" in result.stdout and "225 training rows, 75 validation rows" in result.stdout
    assert "Epoch 2/2" in result.stdout
    run = tmp_path / "tensorboard_logs" / "streamed"
    record = json.loads((run / "results.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 2
    checkpoint = sorted(run.rglob("*.keras"))[-1]

    import keras
    import tensorflow as tf

    model = keras.models.load_model(checkpoint)
    raw = {"id": tf.constant([[3.0], [4.0]]), "size": tf.constant([[7.0], [12.5]]),
           "colour": tf.constant([["purple"], ["red"]]), "code": tf.constant([[1], [9]], tf.int64)}  # Unseen values.
    predictions = model.predict(raw, verbose=0)
    assert predictions.shape[0] == 2 and np.all(np.isfinite(predictions))
