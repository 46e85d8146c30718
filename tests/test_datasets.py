"""Tests of the datasets package: sources, refusals, hold-out and pipelines.

No test touches the network: the Keras datasets are loaded through a patched
`get_file` that either fails as an offline download does or returns tiny
files in the real layout, so Keras' own `load_data` code still runs.
"""

import gzip
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasrun import datasets
from kerasrun.datasets import image_source, memory
from conftest import IMPORT_KERASRUN, write_images
from kerasrun.core.errors import RunError, UsageError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Helpers ---------------------------------------------------------------------


def write_npz(directory, name="data.npz", **arrays):
    path = os.path.join(directory, name)
    np.savez(path, **arrays)
    return path


def class_sorted_arrays(num_examples=40, num_classes=4):
    """Returns examples sorted by class, as files often are."""
    y = np.repeat(np.arange(num_classes), num_examples // num_classes)
    x = np.arange(len(y) * 3, dtype=np.float64).reshape(len(y), 3)
    return x, y


def write_text(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as file:
        file.write(textwrap.dedent(text).lstrip())
    return path


def load(value, **options):
    options.setdefault("seed", 0)
    options.setdefault("validation_split", 0.0)
    return datasets.load(value, **options)


def collect(dataset):
    """Returns all (x, y) of a batched dataset as two numpy arrays."""
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


# Built-in digits -------------------------------------------------------------


def test_digits_is_the_default_and_listed():
    assert datasets.DEFAULT == "digits"
    assert datasets.names() == ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist"]


def test_digits_loads_scaled_with_channel_axis():
    data = load("digits")
    x_train, y_train = data.train
    x_val, y_val = data.val
    assert x_train.shape == (1437, 8, 8, 1) and y_train.shape == (1437,)
    assert x_val.shape == (360, 8, 8, 1) and y_val.shape == (360,)
    assert x_train.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert data.input_shape == (8, 8, 1)
    assert data.num_classes == 10
    assert data.label_kind == "int"
    assert set(np.unique(y_train)) == set(range(10))


# Validation hold-out ---------------------------------------------------------


def test_validation_split_replaces_bundled_val_and_is_reproducible():
    first = load("digits", validation_split=0.25, seed=3)
    again = load("digits", validation_split=0.25, seed=3)
    other = load("digits", validation_split=0.25, seed=4)
    assert len(first.val[0]) == int(1437 * 0.25)
    assert len(first.train[0]) == 1437 - int(1437 * 0.25)
    np.testing.assert_array_equal(first.val[0], again.val[0])
    np.testing.assert_array_equal(first.val[1], again.val[1])
    assert not np.array_equal(first.val[0], other.val[0])


def test_validation_split_mixes_classes_of_sorted_file(tmp_path):
    x, y = class_sorted_arrays()
    path = write_npz(tmp_path, x_train=x, y_train=y)
    data = load(f"npz:{path}", validation_split=0.25, seed=1)
    assert len(np.unique(data.val[1])) > 1
    # Every row lands in exactly one part.
    all_rows = np.concatenate([data.train[0], data.val[0]])
    assert sorted(map(tuple, all_rows)) == sorted(map(tuple, x.astype(np.float32)))


def test_validation_split_replaces_the_files_own_val(tmp_path):
    x, y = class_sorted_arrays()
    path = write_npz(tmp_path, x_train=x, y_train=y, x_val=-np.ones((5, 3)), y_val=np.zeros(5, int))
    data = load(f"npz:{path}", validation_split=0.5)
    assert len(data.val[0]) == 20
    assert (data.val[0] >= 0).all()


@pytest.mark.parametrize("fraction", [1.0, 1.5])  # flags out of [0, 1) are refused with the config
def test_validation_split_that_leaves_no_training_data_is_refused(fraction):
    with pytest.raises(UsageError, match="--validation_split"):
        load("digits", validation_split=fraction)


def test_validation_split_that_holds_out_nothing_is_refused(tmp_path):
    x, y = class_sorted_arrays(num_examples=8)
    path = write_npz(tmp_path, x_train=x, y_train=y)
    with pytest.raises(UsageError, match=r"--validation_split=0.1: holds out 0 of 8"):
        load(f"npz:{path}", validation_split=0.1)


# npz files -------------------------------------------------------------------


def test_npz_without_val(tmp_path):
    x, y = class_sorted_arrays()
    data = load(f"npz:{write_npz(tmp_path, x_train=x.astype(np.uint8), y_train=y)}")
    assert data.val is None
    assert data.train[0].dtype == np.float32
    assert data.input_shape == (3,)
    assert data.num_classes == 4


def test_npz_val_class_out_of_the_training_range_is_refused(tmp_path):
    x, y = class_sorted_arrays()
    path = write_npz(tmp_path, x_train=x, y_train=y, x_val=x[:2], y_val=np.array([0, 6]))
    with pytest.raises(UsageError, match=r"y_val holds the class 6, out of the range of y_train \(classes up to 3\)"):
        load(f"npz:{path}", task="classification")
    inside = write_npz(tmp_path, x_train=x[y != 2], y_train=y[y != 2], x_val=x[:2], y_val=np.array([0, 2]))
    assert load(f"npz:{inside}").num_classes == 4  # A class training lacks, inside its range, is kept.


def test_npz_one_hot_labels(tmp_path):
    x, y = class_sorted_arrays()
    one_hot = np.eye(5)[y]
    data = load(f"npz:{write_npz(tmp_path, x_train=x, y_train=one_hot)}")
    assert data.label_kind == "one_hot"
    assert data.num_classes == 5
    assert data.train[1].dtype == np.float32


def test_npz_column_of_labels_and_string_labels(tmp_path):
    x = np.zeros((3, 2))
    path = write_npz(tmp_path, x_train=x, y_train=np.array([["b"], ["a"], ["c"]]))
    data = load(f"npz:{path}")
    np.testing.assert_array_equal(data.train[1], [1, 0, 2])
    assert data.class_names == ("a", "b", "c")
    assert data.label_kind == "int"


X4 = np.zeros((4, 3))
Y4 = np.array([0, 1, 0, 1])

NPZ_REFUSALS = {
    "missing x_train": (dict(y_train=Y4), "x_train"),
    "missing y_train": (dict(x_train=X4), "y_train"),
    "x_val without y_val": (dict(x_train=X4, y_train=Y4, x_val=X4), "y_val"),
    "y_val without x_val": (dict(x_train=X4, y_train=Y4, y_val=Y4), "x_val"),
    "unexpected array": (dict(x_train=X4, y_train=Y4, x_test=X4), "x_test"),
    "train lengths differ": (dict(x_train=X4, y_train=Y4[:3]), "x_train has 4 examples but y_train has 3"),
    "val lengths differ": (dict(x_train=X4, y_train=Y4, x_val=X4, y_val=Y4[:2]), "x_val has 4 examples but y_val has 2"),
    "val shape differs": (dict(x_train=X4, y_train=Y4, x_val=np.zeros((4, 5)), y_val=Y4), "x_val examples have shape"),
    "x is 1-D": (dict(x_train=np.zeros(4), y_train=Y4), "x_train has shape"),
    "x is empty": (dict(x_train=np.zeros((0, 3)), y_train=np.zeros(0, int)), "x_train has no examples"),
    "x is text": (dict(x_train=np.array([["a"]] * 4), y_train=Y4), "x_train holds"),
    "fractional labels": (dict(x_train=X4, y_train=np.array([0, 0.5, 1, 1])), "y_train holds 0.5"),
    "negative labels": (dict(x_train=X4, y_train=np.array([0, -1, 1, 1])), "y_train holds the negative class id -1"),
    "3-D labels": (dict(x_train=X4, y_train=np.zeros((4, 2, 2))), "y_train has shape"),
    # Cast to int32, 2**32 + 1 would silently become class 1.
    "huge class id": (dict(x_train=X4, y_train=np.array([0, 2**32 + 1, 1, 1])),
                      "y_train holds the class id 4294967297; class ids number the classes 0, 1, 2, ..."),
    "huge float class id": (dict(x_train=X4, y_train=np.array([0, 1e10, 1, 1])), "y_train holds the class id 10000000000.0;"),
    "train and val label kinds differ": (dict(x_train=X4, y_train=Y4, x_val=X4, y_val=np.eye(2)[Y4]), "label arrays disagree"),
}


def test_class_ids_used_as_codes_are_noted_once(tmp_path, capsys):
    data = load(f"npz:{write_npz(tmp_path, x_train=X4, y_train=np.array([2020, 2021, 2020, 2021]))}",
                task="classification")
    assert data.num_classes == 2022
    assert ("the class ids go up to 2021, so the model predicts 2022 classes, though only 2 of them occur"
            in capsys.readouterr().out)


@pytest.mark.parametrize("arrays, expected", NPZ_REFUSALS.values(), ids=NPZ_REFUSALS.keys())
def test_npz_refusals_name_file_and_array(tmp_path, arrays, expected):
    path = write_npz(tmp_path, **arrays)
    with pytest.raises(UsageError) as raised:
        load(f"npz:{path}", task="classification")
    assert expected in str(raised.value)
    assert str(raised.value).startswith(f"--dataset='npz:{path}'")


def test_npz_refuses_pickled_arrays(tmp_path):
    path = write_npz(tmp_path, x_train=np.array([{"a": 1}] * 4, dtype=object), y_train=Y4)
    with pytest.raises(UsageError, match="'x_train' .* pickled"):
        load(f"npz:{path}")


def test_npz_refuses_file_that_is_not_an_archive(tmp_path):
    path = write_text(tmp_path, "data.npz", "hello\n")
    with pytest.raises(UsageError, match="is not an .npz archive; write one with numpy.savez"):
        load(f"npz:{path}")


def test_npz_refuses_single_npy_array(tmp_path):
    path = os.path.join(tmp_path, "data.npy")
    np.save(path, X4)
    with pytest.raises(UsageError, match="single array"):
        load(f"npz:{path}")


# CSV files -------------------------------------------------------------------


def test_csv_with_integer_labels(tmp_path):
    path = write_text(tmp_path, "data.csv", """
        height,label,width
        1.5,0,2
        2.5,2,3

        3.5,1,4
    """)
    data = load(f"csv:{path}")
    assert data.table == {"height": "numeric", "width": "numeric"}  # A table: one (n, 1) array per column.
    np.testing.assert_array_equal(data.train[0]["height"], [[1.5], [2.5], [3.5]])
    np.testing.assert_array_equal(data.train[0]["width"], [[2], [3], [4]])
    np.testing.assert_array_equal(data.train[1], [0, 2, 1])
    assert data.input_shape == (2,)
    assert data.num_classes == 3
    assert data.val is None and data.class_names is None
    # Written 1.0 a class id is still 1, not a class of its own named "1.0".
    path = write_text(tmp_path, "floats.csv", "a,label\n1,1\n2,1.0\n3,0\n")
    assert load(f"csv:{path}").train[1].tolist() == [1, 1, 0]


def test_csv_with_string_labels_in_custom_column(tmp_path):
    path = write_text(tmp_path, "data.csv", """
        a,b,species
        1,2,setosa
        3,4,virginica
        5,6,setosa
        7,8,versicolor
    """)
    data = load(f"csv:{path}", label_columns=("species",))
    assert data.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_array_equal(data.train[1], [0, 2, 0, 1])
    assert data.num_classes == 3


def test_csv_with_validation_split(tmp_path):
    rows = "\n".join(f"{i},{i % 2}" for i in range(20))
    path = write_text(tmp_path, "data.csv", "x,label\n" + rows)
    data = load(f"csv:{path}", validation_split=0.25)
    assert len(data.train[0]["x"]) == 15 and len(data.val[0]["x"]) == 5


CSV_REFUSALS = {
    "missing label column": ("a,b\n1,2\n", "no column 'label' (columns: a, b); name the label column with --dataset_label_column"),
    "no value in a column": ("a,b,label\n,1,0\nNA,2,1\n", "column 'a' has no value in the training split"),
    "not finite": ("a,label\ninf,0\n", "column 'a' holds 'inf' in data row 1; numbers must be finite"),
    "unknown categorical column": ("a,label\n1,0\n", "--dataset_categorical_columns=zip: "),
    "fractional category": ("a,label\n1.5,0\n", "column 'a' holds numbers that are not whole ('1.5' in data row 1); --dataset_categorical"),
    "too few cells": ("a,b,label\n1,2,0\n1,0\n", "line 3: has 2 cells but the header has 3 columns"),
    "empty label": ("a,label\n1, \n", "label column 'label' is empty"),
    "negative label": ("a,label\n1,-2\n2,0\n", "label column 'label' holds the negative class id -2"),
    "empty file": ("", "is empty"),
    "header only": ("a,label\n", "no data rows"),
    "label column only": ("label\n1\n", "only the label column"),
}


@pytest.mark.parametrize("text, expected", CSV_REFUSALS.values(), ids=CSV_REFUSALS.keys())
def test_csv_refusals_name_file_and_column(tmp_path, text, expected):
    path = write_text(tmp_path, "data.csv", text)
    with pytest.raises(UsageError) as raised:
        load(f"csv:{path}", task="classification", categorical=CATEGORICAL.get(expected, ()))
    assert expected in str(raised.value)
    assert path in str(raised.value) or expected.startswith("--dataset_categorical_columns")


HEADER_REFUSALS = {
    "repeated name": ("age,age,label\n1,2,0\n3,4,1\n",
                      "column 'age' appears 2 times in the header; columns must have distinct names"),
    "unnamed column": ("x,,label\n1,2,0\n3,4,1\n",
                       "line 2: column 2 of the header has no name, but this row holds '2' in it; give the column "
                       "a name in the header"),
    "semicolons": ("age;city;label\n1;paris;0\n2;rome;1\n",
                   "the header is one column, 'age;city;label': the file seems separated by ';', but the runner "
                   "reads comma-separated files; save it with commas between the cells"),
    "tabs": ("age\tcity\tlabel\n1\tparis\t0\n", "the file seems separated by tabs, but the runner reads comma"),
}


@pytest.mark.parametrize("cache", ["memory", "none"])
@pytest.mark.parametrize("text, expected", HEADER_REFUSALS.values(), ids=HEADER_REFUSALS.keys())
def test_csv_header_names_must_be_distinct_and_given_in_both_readers(tmp_path, text, expected, cache):
    path = write_text(tmp_path, "data.csv", text)
    with pytest.raises(UsageError) as raised:
        load(f"csv:{path}", cache=cache)
    assert str(raised.value).startswith(f"--dataset='csv:{path}'") and expected in str(raised.value)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_csv_an_unnamed_column_of_empty_cells_is_ignored(tmp_path, cache):
    """A spreadsheet export's trailing comma on every line: the unnamed last column is empty, and left out."""
    path = write_text(tmp_path, "data.csv", "x,y,label,\n" + "".join(f"{i},{i % 3},{i % 2},\n" for i in range(20)))
    data = load(f"csv:{path}", cache=cache)
    assert data.table == {"x": "numeric", "y": "numeric"}
    if cache == "none":  # The streamed rows parse to the named columns only.
        features, labels = next(iter(data.train.batches(32)))
        assert sorted(features) == ["x", "y"] and len(labels) == 20
    else:
        assert len(data.train[1]) == 20


CATEGORICAL = {"--dataset_categorical_columns=zip: ": ("zip",),
               "column 'a' holds numbers that are not whole ('1.5' in data row 1); --dataset_categorical": ("a",)}


# Image folders ---------------------------------------------------------------


def test_streamed_images_are_decoded_as_keras_decodes_them(tmp_path):
    import keras

    from kerasrun.datasets.image_source import ImageFiles

    root = write_images(tmp_path / "pictures", {"cat": 3, "dog": 4})
    data = load(f"images:{root}", image_size=(8, 6), cache="none")
    assert isinstance(data.train, ImageFiles) and len(data.train) == 7
    assert data.val is None
    assert data.input_shape == (8, 6, 3)
    assert data.num_classes == 2 and data.class_names == ("cat", "dog")
    x, y = collect(datasets.make_tf_datasets(data, batch_size=4, seed=None)[0])
    assert x.shape == (7, 8, 6, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    keras_images = keras.utils.image_dataset_from_directory(root, image_size=(8, 6), batch_size=None, shuffle=False)
    keras_x, keras_y = collect(keras_images.batch(7))
    np.testing.assert_allclose(x, keras_x / 255.0, rtol=1e-6)
    assert keras_y.tolist() == y.tolist()


def test_images_held_in_memory_train_exactly_as_streamed_ones(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 5, "dog": 6})

    def epoch_3(cache):
        data = load(f"images:{root}", image_size=(4, 4), validation_split=0.2, seed=7, cache=cache)
        counter = datasets.EpochCounter()
        train_ds, val_ds = datasets.make_tf_datasets(data, batch_size=3, seed=7, epoch=counter)
        counter.variable.assign(3)
        return data, collect(train_ds), collect(val_ds)

    held, held_train, held_val = epoch_3("memory")
    streamed, streamed_train, streamed_val = epoch_3("none")
    assert isinstance(held.train, tuple) and held.train[0].shape == (9, 4, 4, 3)
    assert held.input_shape == streamed.input_shape == (4, 4, 3)
    for held_part, streamed_part in zip(held_train + held_val, streamed_train + streamed_val):
        np.testing.assert_array_equal(held_part, streamed_part)
    assert sorted(held_train[1].tolist() + held_val[1].tolist()) == [0] * 5 + [1] * 6


def test_auto_holds_images_in_memory_when_they_take_at_most_a_quarter_of_the_free_memory(tmp_path, monkeypatch, capsys):
    root = write_images(tmp_path / "pictures", {"cat": 2, "dog": 2})
    decoded = 4 * 5 * 5 * 3 * 4
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 * decoded)
    assert isinstance(load(f"images:{root}", image_size=(5, 5)).train, tuple)
    assert "decoding 4 images into memory" in capsys.readouterr().out
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 * decoded - 1)
    assert isinstance(load(f"images:{root}", image_size=(5, 5)).train, image_source.ImageFiles)


def test_the_free_memory_is_known_here():
    from kerasrun.datasets.memory import available_memory_bytes

    assert available_memory_bytes() > 2**30


def test_images_with_validation_split_and_grayscale(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 5, "dog": 5})
    for cache in ("memory", "none"):
        data = load(f"images:{root}", image_size=(4, 4), color_mode="grayscale", validation_split=0.2, cache=cache)
        assert data.input_shape == (4, 4, 1)
        train_ds, val_ds = datasets.make_tf_datasets(data, batch_size=16, seed=0)
        (train_x, _), (val_x, _) = collect(train_ds), collect(val_ds)
        assert (train_x.shape, val_x.shape) == ((8, 4, 4, 1), (2, 4, 4, 1))


def test_images_folder_without_images_is_refused(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(UsageError, match=r"no images \(.bmp, .gif, .jpeg, .jpg, .png\) in the sub-folders of .*empty "
                                         r"\(expected one sub-folder of images per class\)"):
        load(f"images:{tmp_path / 'empty'}")


def test_hidden_folders_and_files_are_skipped_and_an_empty_class_is_refused(tmp_path, capsys):
    root = write_images(tmp_path / "pictures", {"cat": 2, "dog": 2, ".ipynb_checkpoints": 1})
    (tmp_path / "pictures" / "cat" / "._0.png").write_bytes(b"macOS metadata, not an image")
    data = load(f"images:{root}", image_size=(4, 4))
    assert data.class_names == ("cat", "dog") and data.train[0].shape[0] == 4
    assert "skipping hidden folder(s) .ipynb_checkpoints: not classes" in capsys.readouterr().out
    (tmp_path / "pictures" / "bird").mkdir()
    with pytest.raises(UsageError, match=r"class folder\(s\) bird in .*pictures hold no images"):
        load(f"images:{root}", image_size=(4, 4))


def test_an_image_that_does_not_decode_is_named(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 3, "dog": 3})
    broken = os.path.join(root, "dog", "1.png")
    with open(broken, "wb") as file:
        file.write(b"not a png")
    with pytest.raises(UsageError, match=f"cannot decode {broken}: "):
        load(f"images:{root}", image_size=(4, 4), cache="memory")


# Plug-ins --------------------------------------------------------------------


PLUGIN_SOURCE = """
import numpy as np

def with_val():
    x = np.ones((6, 2)); y = np.array([0, 1, 2, 0, 1, 2])
    return (x, y), (x[:2], y[:2])

def without_val():
    return (np.ones((4, 2)).tolist(), [0, 1, 0, 1]), None

def single_pair():
    return np.ones((4, 2)), np.zeros(4)

def four_items():
    return (np.ones((4, 2)), np.zeros(4)), None, None, None

def nothing():
    return None

def needs_argument(path):
    return None

NOT_A_FUNCTION = 3
"""


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A module `user_datasets` importable from tmp_path."""
    write_text(tmp_path, "user_datasets.py", PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_datasets", raising=False)
    yield "user_datasets"
    sys.modules.pop("user_datasets", None)


def test_plugin_module_function(plugin_module):
    data = load(f"{plugin_module}:with_val")
    assert data.train[0].shape == (6, 2) and data.val[0].shape == (2, 2)
    assert data.num_classes == 3


def test_plugin_file_function_without_val(tmp_path):
    path = write_text(tmp_path, "my_data.py", PLUGIN_SOURCE)
    data = load(f"{path}:without_val")
    assert data.val is None
    assert data.train[0].dtype == np.float32
    assert data.num_classes == 2


PLUGIN_REFUSALS = {
    "single pair": ("single_pair", "returned tuple of 2 (ndarray, ndarray); expected ((x_train, y_train), (x_val, y_val) or None)"),
    "four items": ("four_items", "returned tuple of 4 (tuple of 2 (ndarray, ndarray), None, None, ...)"),
    "None": ("nothing", "returned None; expected"),
    "needs an argument": ("needs_argument", "needs arguments"),
    "not a function": ("NOT_A_FUNCTION", "names a value of type int, not a function"),
    "missing attribute": ("missing", "has no attribute 'missing'"),
}


@pytest.mark.parametrize("function, expected", PLUGIN_REFUSALS.values(), ids=PLUGIN_REFUSALS.keys())
def test_plugin_refusals(plugin_module, function, expected):
    with pytest.raises(UsageError) as raised:
        load(f"{plugin_module}:{function}")
    assert expected in str(raised.value)
    assert f"--dataset='{plugin_module}:{function}'" in str(raised.value)


# check_source ----------------------------------------------------------------


def test_check_source_accepts_every_form(tmp_path, plugin_module):
    datasets.check_source("digits")
    datasets.check_source(f"npz:{write_npz(tmp_path, x_train=X4, y_train=Y4)}")
    datasets.check_source(f"csv:{write_text(tmp_path, 'a.csv', 'a,label')}")
    datasets.check_source(f"images:{tmp_path}")
    datasets.check_source(f"{plugin_module}:with_val")
    datasets.check_source(f"{write_text(tmp_path, 'p.py', PLUGIN_SOURCE)}:with_val")


CHECK_REFUSALS = {
    "unknown name": ("imagenet", "--dataset='imagenet': unknown dataset; known: cifar10, cifar100, digits, fashion_mnist, mnist; or npz:PATH"),
    "missing npz": ("npz:nowhere.npz", "file 'nowhere.npz' does not exist"),
    "missing csv": ("csv:nowhere.csv", "file 'nowhere.csv' does not exist"),
    "missing folder": ("images:nowhere", "directory 'nowhere' does not exist"),
    "no path": ("csv:", "expected a file path after 'csv:'"),
    "missing module": ("no_such_module_xyz:load", "no module named 'no_such_module_xyz'"),
    "missing plug-in file": ("nowhere/data.py:load", "file 'nowhere/data.py' does not exist"),
    "malformed spec": ("a:b:c", "unknown dataset"),
}


@pytest.mark.parametrize("value, expected", CHECK_REFUSALS.values(), ids=CHECK_REFUSALS.keys())
def test_check_source_refusals(value, expected):
    with pytest.raises(UsageError) as raised:
        datasets.check_source(value, flag="--dataset")
    assert expected in str(raised.value)


def test_check_source_names_the_flag_it_is_given():
    with pytest.raises(UsageError, match="^--eval_dataset='nope'"):
        datasets.check_source("nope", flag="--eval_dataset")


def test_check_source_and_names_do_not_import_tensorflow():
    program = (
        f"{IMPORT_KERASRUN}; import sys; from kerasrun import datasets; datasets.names(); datasets.check_source('digits'); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, check=True, timeout=60)


# Keras datasets, without the network -----------------------------------------


KERAS_DATASETS = ["mnist", "fashion_mnist", "cifar10", "cifar100"]


def patch_get_file(monkeypatch, name, fake):
    # The loaders import `get_file` into their own module, so patching
    # `keras.utils.get_file` would not reach them.
    import importlib

    module = importlib.import_module(f"keras.src.datasets.{name}")
    monkeypatch.setattr(module, "get_file", fake)


@pytest.mark.parametrize("name", KERAS_DATASETS)
def test_keras_download_failure_is_a_run_error_mentioning_the_network(monkeypatch, name):
    def offline(*args, **kwargs):
        # What keras.utils.get_file raises when the URL cannot be fetched.
        raise Exception(f"URL fetch failure on https://example.invalid/{name}: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    patch_get_file(monkeypatch, name, offline)
    with pytest.raises(RunError) as raised:
        load(name)
    message = str(raised.value)
    assert "network" in message and name in message
    assert os.path.join(".keras", "datasets") in message or "KERAS_HOME" in os.environ
    assert "\n" not in message


def test_mnist_from_a_tiny_archive(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = write_npz(
        tmp_path,
        "mnist.npz",
        x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        y_train=np.array([0, 1, 2, 3, 9, 5], np.uint8),
        x_test=np.full((2, 28, 28), 255, np.uint8),
        y_test=np.array([7, 8], np.uint8),
    )
    patch_get_file(monkeypatch, "mnist", lambda *args, **kwargs: path)
    data = load("mnist")
    # The test split is mnist's own; validation is one of the six training examples, held out.
    assert data.train[0].shape == (5, 28, 28, 1) and data.train[0].dtype == np.float32
    assert data.val[0].shape == (1, 28, 28, 1) and data.test[0].shape == (2, 28, 28, 1)
    assert data.test[0].max() == 1.0 and data.train[0].min() >= 0.0
    np.testing.assert_array_equal(data.test[1], [7, 8])
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10


def test_fashion_mnist_from_tiny_idx_files(tmp_path, monkeypatch):
    def write_idx(name, header_size, payload):
        with gzip.open(tmp_path / name, "wb") as file:
            file.write(bytes(header_size) + payload.tobytes())

    write_idx("train-labels-idx1-ubyte.gz", 8, np.array([1, 4, 2], np.uint8))
    write_idx("train-images-idx3-ubyte.gz", 16, np.full((3, 28, 28), 51, np.uint8))
    write_idx("t10k-labels-idx1-ubyte.gz", 8, np.array([3], np.uint8))
    write_idx("t10k-images-idx3-ubyte.gz", 16, np.zeros((1, 28, 28), np.uint8))
    patch_get_file(monkeypatch, "fashion_mnist", lambda fname, **kwargs: str(tmp_path / fname))
    data = load("fashion_mnist")
    assert data.train[0].shape == (2, 28, 28, 1) and data.val[0].shape == (1, 28, 28, 1)
    np.testing.assert_allclose(data.train[0], 0.2)
    assert data.test[0].shape == (1, 28, 28, 1)
    assert data.num_classes == 5


def write_cifar_batch(path, num_examples, label_keys):
    # Keras reads these with a restricted unpickler that allows numpy arrays
    # only; protocol 4 stores bytes natively (protocol 2 would need _codecs).
    batch = {b"data": np.full((num_examples, 3 * 32 * 32), 255, np.uint8)}
    for key in label_keys:
        batch[key.encode()] = [1] * num_examples
    with open(path, "wb") as file:
        pickle.dump(batch, file, protocol=4)


def test_cifar100_from_tiny_pickled_batches(tmp_path, monkeypatch):
    inner = tmp_path / "cifar-100-python"
    inner.mkdir()
    write_cifar_batch(inner / "train", 3, ["fine_labels", "coarse_labels"])
    write_cifar_batch(inner / "test", 2, ["fine_labels", "coarse_labels"])
    patch_get_file(monkeypatch, "cifar100", lambda *args, **kwargs: str(tmp_path))
    data = load("cifar100")
    assert data.train[0].shape == (2, 32, 32, 3) and data.test[0].shape == (2, 32, 32, 3)
    assert data.train[1].shape == (2,) and data.val[1].shape == (1,)
    assert data.train[0].max() == 1.0
    assert data.input_shape == (32, 32, 3)


def test_cifar10_from_pickled_batches(tmp_path, monkeypatch):
    # cifar10's loader fills fixed 50000-row arrays, 10000 rows per batch
    # file; a one-row batch broadcasts over its 10000 rows, which keeps the
    # files tiny (the arrays in memory are still full size, about 0.8 GB).
    inner = tmp_path / "cifar-10-batches-py"
    inner.mkdir()
    for index in range(1, 6):
        write_cifar_batch(inner / f"data_batch_{index}", 1, ["labels"])
    write_cifar_batch(inner / "test_batch", 4, ["labels"])
    patch_get_file(monkeypatch, "cifar10", lambda *args, **kwargs: str(tmp_path))
    data = load("cifar10")
    assert data.train[0].shape == (45000, 32, 32, 3) and data.train[1].shape == (45000,)
    assert data.val[0].shape == (5000, 32, 32, 3) and data.test[0].shape == (4, 32, 32, 3)
    assert data.test[0].max() == 1.0 and data.test[0].dtype == np.float32
    assert data.input_shape == (32, 32, 3)


# make_tf_datasets ------------------------------------------------------------


@pytest.fixture(scope="module")
def numbered_data():
    """Twenty examples whose x is their row number, with a validation part."""
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    return datasets.Data(
        train=(x, np.arange(20) % 3),
        val=(x[:7] + 100, np.arange(7) % 3),
        input_shape=(1,),
        num_classes=3,
        label_kind="int",
    )


def train_order(data, seed, epochs=1):
    train_ds, _ = datasets.make_tf_datasets(data, batch_size=8, seed=seed)
    return [collect(train_ds)[0].ravel().tolist() for _ in range(epochs)]


def test_batches_have_the_batch_size(numbered_data):
    train_ds, val_ds = datasets.make_tf_datasets(numbered_data, batch_size=8, seed=0)
    assert [len(x) for x, _ in train_ds] == [8, 8, 4]
    assert [len(x) for x, _ in val_ds] == [7]


def test_training_order_is_seeded_and_changes_every_epoch(numbered_data):
    first_epoch, second_epoch = train_order(numbered_data, seed=5, epochs=2)
    assert sorted(first_epoch) == list(range(20))
    assert first_epoch != list(range(20))
    assert first_epoch != second_epoch
    assert train_order(numbered_data, seed=5, epochs=2) == [first_epoch, second_epoch]
    assert train_order(numbered_data, seed=6) != [first_epoch]


def test_labels_stay_with_their_examples(numbered_data):
    train_ds, _ = datasets.make_tf_datasets(numbered_data, batch_size=8, seed=1)
    x, y = collect(train_ds)
    np.testing.assert_array_equal(y, x.ravel().astype(int) % 3)


def test_validation_is_not_shuffled(numbered_data):
    _, val_ds = datasets.make_tf_datasets(numbered_data, batch_size=3, seed=1)
    x, y = collect(val_ds)
    np.testing.assert_array_equal(x.ravel(), np.arange(7) + 100)
    np.testing.assert_array_equal(y, np.arange(7) % 3)


def test_no_validation_gives_none(numbered_data):
    import dataclasses

    data = dataclasses.replace(numbered_data, val=None)
    assert datasets.make_tf_datasets(data, batch_size=4, seed=0)[1] is None


def test_pipelines_for_streamed_image_folders(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 5, "dog": 5})

    def two_epochs_of_fresh_pipelines():
        data = load(f"images:{root}", image_size=(4, 4), validation_split=0.2, seed=2, cache="none")
        train_ds, val_ds = datasets.make_tf_datasets(data, batch_size=3, seed=2)
        assert [tuple(x.shape) for x, _ in val_ds] == [(2, 4, 4, 3)]
        assert len(train_ds) == 3  # Keras counts the steps
        epochs = [list(train_ds.as_numpy_iterator()) for _ in range(2)]
        assert [x.shape for x, _ in epochs[0]] == [(3, 4, 4, 3), (3, 4, 4, 3), (2, 4, 4, 3)]
        return [np.concatenate([x for x, _ in batches]) for batches in epochs]

    first_epoch, second_epoch = two_epochs_of_fresh_pipelines()
    assert not np.array_equal(first_epoch, second_epoch)
    # Same images, other order.
    assert sorted(first_epoch.sum(axis=(1, 2, 3))) == pytest.approx(sorted(second_epoch.sum(axis=(1, 2, 3))))
    # Loading again with the same seed gives the same sequence of orders.
    again = two_epochs_of_fresh_pipelines()
    np.testing.assert_array_equal(again[0], first_epoch)
    np.testing.assert_array_equal(again[1], second_epoch)


def test_streamed_images_are_ordered_by_seed_and_epoch_only(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 4, "dog": 4})
    data = load(f"images:{root}", image_size=(3, 3), cache="none")

    def order_of(epochs_before, epoch, seed=4):
        counter = datasets.EpochCounter()
        train_ds, _ = datasets.make_tf_datasets(data, batch_size=3, seed=seed, epoch=counter)
        assert len(train_ds) == 3
        for earlier in epochs_before:
            counter.variable.assign(earlier)
            collect(train_ds)
        counter.variable.assign(epoch)
        return collect(train_ds)[0].sum(axis=(1, 2, 3)).tolist()

    resumed = order_of([], 3)
    assert order_of([0, 1, 2], 3) == resumed
    assert order_of([], 2) != resumed
    assert order_of([], 3, seed=5) != resumed


def test_streamed_images_of_batches_a_resumed_epoch_drops_are_not_read(tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 4, "dog": 4})
    data = load(f"images:{root}", image_size=(3, 3), cache="none")
    counter = datasets.EpochCounter()
    train_ds, _ = datasets.make_tf_datasets(data, batch_size=3, seed=4, epoch=counter)
    counter.set(2)
    whole = collect(train_ds)[0]
    counter.skip(2)  # a run resumed after two of the epoch's three batches: they are drawn and dropped
    resumed = collect(train_ds)[0]
    assert not resumed[:6].any() and whole[:6].any()  # blank, not decoded
    np.testing.assert_array_equal(resumed[6:], whole[6:])
    counter.set(3)  # the next epoch: every batch read again
    assert collect(train_ds)[0][:6].any()


def test_with_an_epoch_counter_each_epoch_order_depends_on_seed_and_epoch_only(numbered_data):
    def order_of(epochs_before, epoch, seed=4):
        counter = datasets.EpochCounter()
        train_ds, _ = datasets.make_tf_datasets(numbered_data, batch_size=8, seed=seed, epoch=counter)
        for earlier in epochs_before:  # passes a longer-lived process would have made
            counter.variable.assign(earlier)
            collect(train_ds)
        counter.variable.assign(epoch)
        return collect(train_ds)[0].ravel().tolist()

    resumed = order_of([], 3)
    assert sorted(resumed) == list(range(20))
    counted, _ = datasets.make_tf_datasets(numbered_data, batch_size=8, seed=4, epoch=datasets.EpochCounter())
    assert [len(x) for x, _ in counted] == [8, 8, 4]
    small, _ = datasets.make_tf_datasets(numbered_data, batch_size=32, seed=4, epoch=datasets.EpochCounter())
    assert [len(x) for x, _ in small] == [20]
    assert order_of([0, 1, 2], 3) == resumed
    assert order_of([], 2) != resumed
    assert order_of([], 3, seed=5) != resumed


def stages(dataset):
    """The kinds of tf.data stages of a pipeline, last first (`_PrefetchDataset`, `_BatchDataset`, ...)."""
    kinds = []
    while dataset is not None:
        kinds.append(type(dataset).__name__)
        dataset = getattr(dataset, "_input_dataset", None)
    return kinds


def test_every_pipeline_prefetches_and_streamed_images_are_decoded_in_parallel(numbered_data, tmp_path):
    root = write_images(tmp_path / "pictures", {"cat": 3, "dog": 3})
    streamed = load(f"images:{root}", image_size=(4, 4), validation_split=0.5, cache="none")
    for data in (numbered_data, streamed):
        for pipeline in datasets.make_tf_datasets(data, batch_size=2, seed=1, epoch=datasets.EpochCounter()):
            assert stages(pipeline)[0] == "_PrefetchDataset", stages(pipeline)
    for pipeline in datasets.make_tf_datasets(streamed, batch_size=2, seed=1, epoch=datasets.EpochCounter()):
        assert "_ParallelMapDataset" in stages(pipeline)  # reading and decoding files


def epochs_of_batches(data, epochs=3, batch_size=8, seed=4):
    """Every batch of `epochs` training epochs, as numpy arrays, with the epoch counter set as fit sets it."""
    counter = datasets.EpochCounter()
    train_ds, _ = datasets.make_tf_datasets(data, batch_size=batch_size, seed=seed, epoch=counter)
    batches = []
    for epoch in range(epochs):
        counter.variable.assign(epoch)
        batches.append([(x.copy(), y.copy()) for x, y in train_ds.as_numpy_iterator()])
    return batches, stages(train_ds)


@pytest.mark.parametrize("batch_size", [8, 5, 32])
def test_training_arrays_copied_per_epoch_give_the_batches_gathered_one_by_one(numbered_data, monkeypatch,
                                                                             batch_size):
    copied, copied_stages = epochs_of_batches(numbered_data, batch_size=batch_size)
    assert "_ParallelMapDataset" not in copied_stages  # each step reads a slice of the epoch's copy
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1)  # almost nothing free
    gathered, gathered_stages = epochs_of_batches(numbered_data, batch_size=batch_size)
    assert "_ParallelMapDataset" in gathered_stages  # each batch gathered as it is needed
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)  # unknown: no copy
    assert "_ParallelMapDataset" in epochs_of_batches(numbered_data, batch_size=batch_size)[1]
    assert len(copied) == len(gathered) == 3
    for copied_epoch, gathered_epoch in zip(copied, gathered):
        assert [len(x) for x, _ in copied_epoch] == [len(x) for x, _ in gathered_epoch]
        for (x1, y1), (x2, y2) in zip(copied_epoch, gathered_epoch):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    assert sorted(np.concatenate([x for x, _ in copied[0]]).ravel()) == list(range(20))


def test_training_arrays_are_copied_when_the_copy_takes_at_most_a_quarter_of_the_free_memory(numbered_data,
                                                                                            monkeypatch):
    train_bytes = numbered_data.train[0].nbytes + numbered_data.train[1].nbytes
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 * train_bytes)
    assert "_ParallelMapDataset" not in epochs_of_batches(numbered_data, epochs=1)[1]
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 * train_bytes - 1)
    assert "_ParallelMapDataset" in epochs_of_batches(numbered_data, epochs=1)[1]
