"""Tests of the test split (and separate validation data) of every dataset kind.

Each kind is loaded through `datasets.load` as a run loads it; refusals are
checked through train.py for a few (they exit before TensorFlow is
imported, so they are fast), and one tiny run shows the splits line.
"""

import importlib
import json
import os
import textwrap

import numpy as np
import pytest

from kerasrun import datasets
from kerasrun.core.errors import UsageError
from kerasrun.runner.data_check import splits_line
from conftest import write_images


def load(value, **options):
    options.setdefault("seed", 0)
    options.setdefault("validation_split", 0.0)
    return datasets.load(value, **options)


def write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


def labels_of(dataset):
    """Returns the labels of a batched dataset's batches, in order, as one array."""
    return np.concatenate([y for _, y in dataset.as_numpy_iterator()])


# npz ---------------------------------------------------------------------------


def test_npz_test_arrays_become_the_test_split_untouched_by_the_hold_out(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.random((20, 3)), y_train=np.arange(20) % 2,
             x_test=np.arange(15.0).reshape(5, 3), y_test=np.array([1, 0, 1, 1, 0]))
    data = load(f"npz:{path}", validation_split=0.25)
    assert (len(data.train[1]), len(data.val[1]), len(data.test[1])) == (15, 5, 5)
    np.testing.assert_array_equal(data.test[0], np.arange(15.0).reshape(5, 3))
    assert data.test[0].dtype == np.float32
    assert splits_line(data) == ("splits: 15 training, 5 validation (25% of the training data held out), "
                                 "5 test (x_test, y_test)")
    np.testing.assert_array_equal(labels_of(datasets.make_test_dataset(data, batch_size=2)), [1, 0, 1, 1, 0])


@pytest.mark.parametrize("test_arrays, message", [
    ({"x_test": np.zeros((2, 3))}, "has array 'x_test' but no 'y_test'; give both or neither"),
    ({"x_test": np.array([[0, 1, 2], [0, np.nan, 1]]), "y_test": [0, 1]}, "x_test holds nan in row 1"),
    ({"x_test": np.zeros((2, 4)), "y_test": [0, 1]}, "x_test examples have shape (4,)"),
    ({"x_test": np.zeros((2, 3)), "y_test": [0, 2]}, "y_test holds the class 2, out of the range of y_train"),
])
def test_npz_test_arrays_get_the_validation_checks(tmp_path, test_arrays, message):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.zeros((4, 3)), y_train=[0, 1, 0, 1], **test_arrays)
    with pytest.raises(UsageError) as raised:
        datasets.check_source(f"npz:{path}")
        load(f"npz:{path}")
    assert message in str(raised.value)


def test_npz_test_targets_of_a_regression_keep_their_columns(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.arange(8.0).reshape(4, 2), y_train=np.array([[0.5, 1], [1.5, 2], [2.5, 3], [3.5, 5]]),
             x_test=np.zeros((2, 2)), y_test=np.array([[9.5, 1], [0.25, 2]]))
    data = load(f"npz:{path}")
    assert data.head.task == "regression" and data.test[1].shape == (2, 2) and data.test[1].dtype == np.float32
    with pytest.raises(UsageError, match="label arrays disagree"):
        np.savez(path, x_train=np.zeros((4, 2)), y_train=np.arange(8.0).reshape(4, 2) / 3,
                 x_test=np.zeros((2, 2)), y_test=np.array([0.5, 1.5]))
        load(f"npz:{path}")


# csv ---------------------------------------------------------------------------


TRAINING_CSV = """\
    size,color,label
    1,red,cat
    ,blue,dog
    3,red,cat
    5,blue,bird
    7,red,dog
    """


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_csv_test_and_validation_files_use_the_training_classes_and_means(tmp_path, cache):
    train = write(tmp_path / "train.csv", TRAINING_CSV)
    test = write(tmp_path / "test.csv", """\
        label,color,size
        dog,green,
        bird,red,2
        """)
    val = write(tmp_path / "val.csv", """\
        color,size,label
        blue,NA,cat
        """)
    data = load(f"csv:{train}", cache=cache, test=test, validation=val)
    assert data.class_names == ("bird", "cat", "dog")
    assert splits_line(data) == (f"splits: 5 training, 1 validation (--dataset_validation {val}), "
                                 f"2 test (--dataset_test {test})")
    batches = list(datasets.make_test_dataset(data, batch_size=8).as_numpy_iterator())
    features, labels = batches[0]
    np.testing.assert_array_equal(labels, [2, 0])  # dog, bird: the training file's ids.
    # The missing size takes the training mean (1+3+5+7)/4, not the test file's.
    np.testing.assert_allclose(features["size"].ravel(), [4.0, 2.0])
    assert [bytes(c).decode() if isinstance(c, bytes) else c for c in features["color"].ravel()] == ["green", "red"]
    _, val_ds = datasets.make_tf_datasets(data, batch_size=8, seed=0)
    val_features, val_labels = next(iter(val_ds.as_numpy_iterator()))
    np.testing.assert_array_equal(val_labels, [1])
    np.testing.assert_allclose(val_features["size"].ravel(), [4.0])


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_csv_test_file_of_a_class_training_lacks_is_refused_with_its_row(tmp_path, cache):
    train = write(tmp_path / "train.csv", TRAINING_CSV)
    test = write(tmp_path / "test.csv", "size,color,label\n1,red,cat\n2,red,fish\n")
    with pytest.raises(UsageError) as raised:
        load(f"csv:{train}", cache=cache, test=test)
    message = str(raised.value)
    assert "--dataset_test" in message and "'fish'" in message and "row 1" in message


def test_csv_test_file_with_text_in_a_numeric_column_is_refused(tmp_path):
    train = write(tmp_path / "train.csv", TRAINING_CSV)
    test = write(tmp_path / "test.csv", "size,color,label\nbig,red,cat\n")
    with pytest.raises(UsageError, match=r"--dataset_test=.*column 'size' holds 'big' in data row 1"):
        load(f"csv:{train}", test=test)


# images ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_images(root / "train", {"cat": 3, "dog": 3})
    write_images(root / "validation", {"cat": 1, "dog": 1})
    write_images(root / "test", {"dog": 2})  # No cat: a class missing from test is fine.
    write_images(root.parent / "cows", {"cow": 1})
    return root


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_image_split_folders_are_the_splits(split_folder, cache, capsys):
    data = load(f"images:{split_folder}", cache=cache, image_size=(8, 8))
    assert "found the split folders train/, validation/, test/" in capsys.readouterr().out
    assert data.class_names == ("cat", "dog")
    assert splits_line(data) == "splits: 6 training, 2 validation (validation/), 2 test (test/)"
    np.testing.assert_array_equal(labels_of(datasets.make_test_dataset(data, batch_size=4)), [1, 1])
    x, _ = next(iter(datasets.make_test_dataset(data, batch_size=4).as_numpy_iterator()))
    assert x.shape == (2, 8, 8, 3)


def test_a_folder_of_splits_beside_other_folders_is_refused_not_read_as_classes(tmp_path):
    write_images(tmp_path / "train", {"cat": 2, "dog": 2})
    write_images(tmp_path / "test", {"cat": 1})
    write_images(tmp_path / "old_test", {"cat": 1})
    with pytest.raises(UsageError, match=r"holds the split folders test, train/ and also old_test/"):
        load(f"images:{tmp_path}", image_size=(8, 8))


def test_image_test_folder_named_by_flag_and_its_unknown_class(split_folder):
    data = load(f"images:{split_folder / 'train'}", test=str(split_folder / "test"), image_size=(8, 8),
                cache="none", validation_split=0.34)
    assert (len(data.train), len(data.val), len(data.test)) == (4, 2, 2)
    with pytest.raises(UsageError, match=r"--dataset_test=.*class folder\(s\) cow .* not classes of the training"):
        load(f"images:{split_folder / 'train'}", test=str(split_folder.parent / "cows"), image_size=(8, 8))


# plug-ins ----------------------------------------------------------------------


def test_plugin_returning_three_pairs(tmp_path):
    loader = write(tmp_path / "loader.py", """\
        import numpy as np

        def three():
            x = np.arange(12.0).reshape(6, 2)
            return (x, np.arange(6) % 2), None, (x[:3] + 100, np.array([1, 1, 0]))

        def two():
            x = np.arange(12.0).reshape(6, 2)
            return (x, np.arange(6) % 2), (x[:2], np.array([0, 1]))
        """)
    data = load(f"{loader}:three")
    assert data.val is None and data.test[0][0, 0] == 100 and splits_line(data).endswith("3 test (the loader's)")
    data = load(f"{loader}:two")
    assert data.test is None and len(data.val[1]) == 2


# Keras's datasets ----------------------------------------------------------------


def test_mnist_test_split_is_the_test_split_and_validation_is_held_out(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "mnist.npz"
    np.savez(archive, x_train=np.zeros((20, 28, 28), np.uint8), y_train=np.arange(20, dtype=np.uint8) % 10,
             x_test=np.full((3, 28, 28), 255, np.uint8), y_test=np.array([7, 8, 9], np.uint8))
    # The loader imports get_file into its own module: patch it there, so Keras's load_data still runs.
    monkeypatch.setattr(importlib.import_module("keras.src.datasets.mnist"), "get_file", lambda *a, **k: str(archive))
    data = load("mnist")
    printed = capsys.readouterr().out
    assert "holding out 2 of the 20 training examples (10%, seeded) for validation" in printed
    assert "mnist's test split is kept for the final evaluation" in printed
    assert splits_line(data) == ("splits: 18 training, 2 validation (10% of the training data held out), "
                                 "3 test (mnist's test split)")
    np.testing.assert_array_equal(data.test[1], [7, 8, 9])
    assert data.test[0].max() == 1.0
    again = load("mnist")  # The hold-out is seeded.
    np.testing.assert_array_equal(again.val[1], data.val[1])
    assert len(load("mnist", validation_split=0.5).val[1]) == 10


def test_digits_keeps_its_split_and_has_no_test():
    data = load("digits")
    assert data.test is None
    assert splits_line(data) == "splits: 1,437 training, 360 validation (the bundled validation split), no test"


# Refusals through train.py, before TensorFlow --------------------------------------


def test_refusals_name_the_flags(train, tmp_path):
    write(tmp_path / "train.csv", TRAINING_CSV)
    write(tmp_path / "other.csv", "size,shape,label\n1,round,cat\n")
    result = train("--dataset", "csv:train.csv", "--dataset_test", "other.csv", "--dry_run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("--dataset_test='other.csv': needs the training file's columns (in any order) but lacks column(s) "
            "color and has column(s) shape the training file lacks") in result.stderr
    result = train("--dataset", "csv:train.csv", "--dataset_validation", "train.csv")
    assert result.returncode == 2 and "--dataset_validation='train.csv': is the training file" in result.stderr
    result = train("--dataset", "csv:train.csv", "--dataset_validation", "other.csv", "--validation_split", "0.2")
    assert result.returncode == 2
    assert "--dataset_validation='other.csv': the file replaces --validation_split=0.2" in result.stderr
    assert not os.path.exists(tmp_path / "tensorboard_logs")


def test_a_run_prints_its_splits(train, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", x_train=rng.random((24, 3)), y_train=np.arange(24) % 2,
             x_test=rng.random((6, 3)), y_test=np.arange(6) % 2)
    result = train("--dataset", "npz:tiny.npz", "--epochs", "1", "--validation_split", "0.25", "--run_name", "r",
                   "--results_file", "results.jsonl")
    assert result.returncode == 0, result.stderr
    assert ("splits: 18 training, 6 validation (25% of the training data held out), 6 test (x_test, y_test)"
            in result.stdout)
    assert json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])


def test_a_validation_file_or_folder_is_validation_data_for_the_monitors(train, tmp_path, split_folder):
    write(tmp_path / "train.csv", TRAINING_CSV)
    write(tmp_path / "val.csv", "label,size,color\ncat,2,red\n")
    monitor = ["--early_stopping", "True", "--early_stopping_monitor", "val_loss", "--dry_run"]
    result = train("--dataset", "csv:train.csv", "--dataset_validation", "val.csv", *monitor)
    assert result.returncode == 0, result.stderr
    assert "splits: 5 training, 1 validation (--dataset_validation val.csv), no test" in result.stdout
    result = train("--dataset", f"images:{split_folder}", *monitor)
    assert result.returncode == 0, result.stderr
    result = train("--dataset", f"images:{split_folder}", "--validation_split", "0.5", "--dry_run")
    assert result.returncode == 2 and "has its own validation folder validation/" in result.stderr
