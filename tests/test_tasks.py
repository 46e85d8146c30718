"""--task: what auto decides from the labels and why, explicit tasks checked, and each task trained end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from kerasrun import datasets
from kerasrun.core.errors import UsageError
from kerasrun.datasets import tasks

X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)


def decide(y, task="auto", **options):
    return tasks.decide({"y_train": np.asarray(y)}, task, "--dataset='npz:d.npz'", what="y_train", **options)


@pytest.mark.parametrize("y, task, units, reason", [
    (np.arange(40) % 10, "classification", 10, "y_train holds 10 integer class ids"),
    (np.arange(40) % 2, "classification", 2, "y_train holds 2 integer class ids"),  # Two classes: softmax.
    (np.eye(4)[np.arange(40) % 4], "classification", 4, "y_train holds one-hot rows of 4 classes"),
    (np.tile([[1, 0, 1], [0, 1, 1], [1, 1, 0]], (20, 1)), "multilabel", 3,
     "y_train holds rows of 0 and 1 with up to 2 ones"),
    (np.linspace(0, 1, 40), "regression", 1, "y_train holds 40 distinct non-integer values"),
    (np.arange(150) * 1000, "regression", 1, "y_train holds 150 distinct whole numbers from 0 to 149000"),
    (np.random.default_rng(0).normal(size=(40, 2)), "regression", 2, "y_train holds rows of 2 values"),
    (np.array(["cat", "dog"] * 20), "classification", 2, "y_train holds text: 2 class names"),
])
def test_auto_decides_from_the_labels_and_says_why(y, task, units, reason):
    decided = decide(y)
    assert (decided.head.task, decided.head.units, decided.reason) == (task, units, reason)


def test_the_reason_names_every_array_it_counts(tmp_path):
    """300 training and 50 validation targets: the 350 distinct values counted are y_train's and y_val's."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(300, 3)), y_train=rng.normal(size=300),
             x_val=rng.normal(size=(50, 3)), y_val=rng.normal(size=50))
    data = datasets.load(f"npz:{tmp_path / 'd.npz'}", seed=0, validation_split=0.0)
    assert (data.head.task, data.task_reason) == ("regression", "y_train and y_val hold 350 distinct non-integer values")
    alone = decide(np.arange(40) % 10)  # One array: named alone, as before.
    assert alone.reason == "y_train holds 10 integer class ids"


def test_each_task_gets_labels_in_the_form_its_loss_takes():
    binary = decide(np.array(["no", "yes", "yes", "no"]), "binary")
    assert binary.label_kind == "binary" and binary.encoded["y_train"].tolist() == [[0], [1], [1], [0]]
    assert binary.reason == "--task binary: 'yes' is the positive class (1), 'no' the negative (0)"
    regression = decide(np.array([1.5, 2.5, 3.5]), "regression")
    assert regression.encoded["y_train"].shape == (3, 1) and regression.encoded["y_train"].dtype == np.float32
    assert decide(np.arange(40) % 3).encoded["y_train"].dtype == np.int32
    # A value-comparing loss makes auto a regression, even of a constant target (Keras's EarlyStopping example).
    constant = decide(np.zeros(5), chosen_by_loss="mse")
    assert (constant.head.task, constant.reason) == ("regression", "--loss mse compares values")


@pytest.mark.parametrize("y, task, expected", [
    (np.array([0, 5, 10, 50] * 10), "auto", "y_train holds 4 distinct whole numbers from 0 to 50: class ids or "
                                            "values? Say --task classification or --task regression"),
    (np.array([-1, 1] * 20), "auto", "y_train holds two whole numbers, -1 and 1: two classes or values? Say "
                                     "--task binary (1 is then the positive class) or --task regression"),
    (np.array([0, 1000] * 20), "auto", "Say --task binary (1000 is then the positive class)"),
    (np.array([-1, 1] * 20), "classification", "--dataset='npz:d.npz': y_train holds the negative class id -1; class "
                                               "ids start at 0; for two values such as -1 and 1 say --task binary"),
    (np.zeros(40), "auto", "every label is 0, so a model has nothing to learn"),
    (np.array([0.0, np.nan, 1.0]), "auto", "y_train holds nan in row 1; labels must be finite numbers"),
    (np.array(["a", "b"]), "regression", "--task=regression: y_train holds text (class names); regression needs numbers"),
    (np.array([0, 1, 2]), "binary", "--task=binary: y_train holds 3 distinct values; binary needs exactly two"),
    (np.array([0, 1, 1]), "multilabel", "--task=multilabel: y_train is one column; multilabel needs one 0/1 column"),
    (np.array([[1, 1], [0, 1]]), "classification", "y_train holds rows that are not one-hot (nor class probabilities); "
                                                   "for several labels per example say --task multilabel"),
    (np.zeros((4, 2, 2)), "auto", "y_train has shape (4, 2, 2)"),
    (np.arange(300) * 1000 + 70000, "classification", "--task=classification: y_train holds 300 distinct whole numbers "
                                                     "up to 369000, which as class ids make a softmax over 369,001"),
    (np.full(5, 3.5), "regression", "every target in y_train is 3.5, so a model has nothing to learn"),
    (np.stack([np.arange(5.0), np.ones(5)], 1), "auto", "every target in column 2 of y_train is 1, so a model"),
    (np.array([[1, 0], [0, 0], [1, 0]]), "auto", "column 2 of y_train is 0 in every training example, so a model "
                                                 "cannot learn it; leave the column out (or give examples where it is 1)"),
    (np.array([[1, 1], [0, 1], [1, 1]]), "multilabel", "column 2 of y_train is 1 in every training example"),
])
def test_labels_the_task_cannot_take_are_refused_naming_task_or_the_array(y, task, expected):
    with pytest.raises(UsageError, match=None) as raised:
        decide(y, task)
    assert expected in str(raised.value)


@pytest.mark.parametrize("cache", ["memory", "none"])
@pytest.mark.parametrize("values, positive", [((-1, 1), "1"), ((1, 2), "2")])
def test_two_whole_numbers_train_as_binary_when_asked(tmp_path, values, positive, cache):
    """The advice for -1/1 (--task binary) works, as it does for 1/2: the higher value is the positive class."""
    rows = "".join(f"{index},{values[index % 2]}\n" for index in range(40))
    (tmp_path / "two.csv").write_text("x,label\n" + rows)
    data = datasets.load(f"csv:{tmp_path / 'two.csv'}", seed=0, validation_split=0.0, cache=cache, task="binary")
    assert data.head.task == "binary" and data.class_names == (str(values[0]), positive)
    assert f"{positive!r} is the positive class (1)" in data.task_reason


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_a_multilabel_column_never_positive_is_refused_naming_it(tmp_path, cache):
    rows = "".join(f"{index},{index % 2},{index // 2 % 2},0\n" for index in range(40))
    (tmp_path / "tags.csv").write_text("x,a,b,never\n" + rows)
    with pytest.raises(UsageError, match=r"tags.csv': label column 'never' is 0 in every training example, so a "
                                         r"model cannot learn it; leave the column out"):
        datasets.load(f"csv:{tmp_path / 'tags.csv'}", seed=0, validation_split=0.0, cache=cache,
                      label_columns=("a", "b", "never"))
    data = datasets.load(f"csv:{tmp_path / 'tags.csv'}", seed=0, validation_split=0.0, cache=cache,
                         label_columns=("a", "b"))  # The advice: without it, the others train.
    assert data.head.task == "multilabel" and data.head.units == 2


def test_inputs_that_are_not_finite_are_refused_naming_the_array_and_row(tmp_path):
    x = X.copy()
    x[7, 1] = np.inf
    path = tmp_path / "d.npz"
    np.savez(path, x_train=X, y_train=np.arange(40) % 2, x_val=x, y_val=np.arange(40) % 2)
    with pytest.raises(UsageError, match=r"x_val holds inf in row 7; inputs must be finite numbers"):
        datasets.load(f"npz:{path}", seed=0, validation_split=0)


def test_image_folders_are_classification_or_binary(tmp_path):
    from conftest import write_images

    write_images(tmp_path / "imgs", {"cat": 3, "dog": 3})
    data = datasets.load(f"images:{tmp_path / 'imgs'}", seed=0, validation_split=0, task="binary")
    assert (data.head.task, data.label_kind) == ("binary", "binary")
    assert data.task_reason == "--task binary: 'dog' is the positive class"
    with pytest.raises(UsageError, match="--task=regression: .* holds one folder per class"):
        datasets.load(f"images:{tmp_path / 'imgs'}", seed=0, validation_split=0, task="regression")


def results_of(directory):
    (run,) = os.listdir(directory / "tensorboard_logs")
    with open(directory / "tensorboard_logs" / run / "results.json") as stream:
        return json.load(stream)


def test_a_noisy_linear_target_in_a_csv_is_learnt_as_regression_in_the_users_units(tmp_path, train):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    # House prices: far from unit scale, so only standardised targets let Adam reach them in a few epochs.
    price = 250_000 + 60_000 * x[:, 0] - 40_000 * x[:, 1] + 20_000 * x[:, 2] + rng.normal(scale=8_000, size=400)
    rows = "\n".join(",".join(f"{v:.5f}" for v in row) + f",{p:.2f}" for row, p in zip(x, price))
    (tmp_path / "house.csv").write_text("a,b,c,d,price\n" + rows + "\n")
    result = train("--dataset", "csv:house.csv", "--dataset_label_column", "price", "--validation_split", "0.25",
                   "--epochs", "40", "--batch_size", "16", "--verbose", "0", "--metrics", "auto,r2_score")
    assert result.returncode == 0, result.stderr
    assert ("task: regression (label column 'price' holds 400 distinct non-integer values); targets standardised "
            "(mean 2.") in result.stdout
    final = results_of(tmp_path)["final"]
    assert final["val_r2_score"] >= 0.95, final  # Keras's R² of the held-out quarter, on prices.
    # In the user's units: an error of thousands, not of standardised values.
    assert 5_000 < final["val_mean_absolute_error"] < 20_000


def test_several_label_columns_train_several_targets_and_multilabel_npz_trains(tmp_path, train):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    labels = (x[:, :3] + 0.3 * rng.normal(size=(200, 3)) > 0).astype(np.float32)
    np.savez(tmp_path / "tags.npz", x_train=x, y_train=labels)
    result = train("--dataset", "npz:tags.npz", "--validation_split", "0.25", "--epochs", "8", "--verbose", "0",
                   "--learning_rate", "0.01", "--run_name", "tags")
    assert result.returncode == 0, result.stderr
    assert "task: multilabel (y_train holds rows of 0 and 1 with up to 3 ones)" in result.stdout
    with open(tmp_path / "tensorboard_logs" / "tags" / "results.json") as stream:
        final = json.load(stream)["final"]
    assert final["val_auc"] > 0.8 and "val_binary_accuracy" in final
    targets = np.stack([x[:, 0] * 3 + 1, x[:, 1] - 2 * x[:, 2]], axis=1)
    rows = "\n".join(",".join(f"{v:.5f}" for v in row) for row in np.concatenate([x, targets], axis=1))
    (tmp_path / "two.csv").write_text("a,b,c,d,e,y1,y2\n" + rows + "\n")
    result = train("--dataset", "csv:two.csv", "--dataset_label_column", "y1,y2", "--validation_split", "0.25",
                   "--epochs", "20", "--verbose", "0", "--learning_rate", "0.01", "--run_name", "two")
    assert result.returncode == 0, result.stderr
    assert "task: regression (label columns y1, y2 hold rows of 2 values)" in result.stdout
    with open(tmp_path / "tensorboard_logs" / "two" / "results.json") as stream:
        final = json.load(stream)["final"]
    assert final["val_root_mean_squared_error"] < 0.5 < float(np.std(targets))  # Learnt, not the mean.


def test_a_table_with_text_numbers_codes_and_missing_cells_trains_and_its_saved_model_takes_raw_rows(tmp_path, train):
    rng = np.random.default_rng(0)
    n = 400
    age = rng.integers(18, 80, n)
    city = rng.choice(["paris", "lyon", "nice"], n)
    shop = rng.choice([7, 12, 31], n)
    score = 0.08 * (age - 45) + 2.0 * (city == "paris") - 1.5 * (shop == 31) + rng.normal(0, 0.5, n)
    bought = np.where(score > 0, "yes", "no")
    lines = ["age,income,city,shop,bought"]
    for i in range(n):
        lines.append(f"{'' if i % 17 == 0 else age[i]},{rng.normal(5e4, 1.5e4):.1f},{'NA' if i % 23 == 0 else city[i]},"
                     f"{shop[i]},{bought[i]}")
    (tmp_path / "shop.csv").write_text("\n".join(lines) + "\n")
    result = train("--dataset", "csv:shop.csv", "--dataset_label_column", "bought", "--dataset_categorical_columns",
                   "shop", "--task", "binary", "--validation_split", "0.25", "--epochs", "12", "--verbose", "0",
                   "--model_checkpoint", "True", "--model_checkpoint_filepath", "model.keras")
    assert result.returncode == 0, result.stderr
    assert "columns: 2 numeric, 1 text, 1 integer-coded" in result.stdout
    assert "task: binary (--task binary: 'yes' is the positive class (1), 'no' the negative (0))" in result.stdout
    record = results_of(tmp_path)
    final = record["final"]
    assert final["val_auc"] > 0.9, final
    assert (record["task"], record["outputs"], record["class_names"]) == ("binary", 1, ["no", "yes"])
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(tmp_path / "model.keras")
    rows = {"age": np.array([[70.0], [20.0]], dtype=np.float32), "income": np.array([[5e4], [5e4]], dtype=np.float32),
            "city": tf.constant([["paris"], ["atlantis"]]),  # A city never seen in training.
            "shop": np.array([[7], [31]])}
    likely, unlikely = model.predict(rows, verbose=0)[:, 0]
    assert likely > 0.8 and unlikely < 0.2


def test_a_table_of_one_column_counts_its_rows_not_its_columns(tmp_path):
    from kerasrun import datasets
    from kerasrun.runner.compiling import check_trainable

    (tmp_path / "three.csv").write_text("a,label\n1,0\n2,1\n3,0\n")
    data = datasets.load(f"csv:{tmp_path / 'three.csv'}", seed=0, validation_split=0.0, cache="memory")
    check_trainable(data, "csv:three.csv", "auto")  # Three examples of one column: enough.


def test_a_column_of_numbers_with_a_stray_cell_is_refused_unless_named_categorical(tmp_path):
    from kerasrun import datasets

    rows = [f"{70 + index % 9},{index % 2}" for index in range(40)]
    rows[25] = "-,1"
    (tmp_path / "typo.csv").write_text("weight,label\n" + "\n".join(rows) + "\n")
    for cache in ("memory", "none"):
        with pytest.raises(UsageError, match=r"column 'weight' holds numbers but '-' in data row 26 \(1 of 40 cells "
                                             r"are not numbers\); leave a missing cell empty or write NA, or name "
                                             r"the column in --dataset_categorical_columns"):
            datasets.load(f"csv:{tmp_path / 'typo.csv'}", seed=0, validation_split=0.0, cache=cache)
    data = datasets.load(f"csv:{tmp_path / 'typo.csv'}", seed=0, validation_split=0.0, cache="memory",
                         categorical=("weight",))
    assert data.table == {"weight": "text"}
    # The advice holds for numbers that are not whole too: with a cell that is not a number, the column is text.
    rows = [f"{index % 5 / 2},{index % 2}" for index in range(40)]
    rows[7] = "-,1"
    (tmp_path / "halves.csv").write_text("x,label\n" + "\n".join(rows) + "\n")
    for cache in ("memory", "none"):
        with pytest.raises(UsageError, match="column 'x' holds numbers but '-' in data row 8"):
            datasets.load(f"csv:{tmp_path / 'halves.csv'}", seed=0, validation_split=0.0, cache=cache)
        data = datasets.load(f"csv:{tmp_path / 'halves.csv'}", seed=0, validation_split=0.0, cache=cache,
                             categorical=("x",))
        assert data.table == {"x": "text"}
    # Without the stray cell the same named column is integer codes, and its halves are refused.
    (tmp_path / "halves.csv").write_text("x,label\n" + "\n".join(rows[:7] + rows[8:]) + "\n")
    for cache in ("memory", "none"):
        with pytest.raises(UsageError, match=r"column 'x' holds numbers that are not whole \('0.5' in data row 2\)"):
            datasets.load(f"csv:{tmp_path / 'halves.csv'}", seed=0, validation_split=0.0, cache=cache,
                          categorical=("x",))


def test_class_names_are_listed_with_their_ids():
    from kerasrun.runner.data_check import class_list

    assert class_list(("lyon", "nice", "paris")) == "0 lyon, 1 nice, 2 paris"
    assert class_list(tuple(f"c{i}" for i in range(30)), most=2) == "0 c0, 1 c1, ... (30 in all; results.json lists them)"


def test_dry_run_loads_a_csv_decides_its_task_and_refuses_what_the_run_would_without_tensorflow(tmp_path):
    rows = "\n".join(f"{i},{'ab'[i % 2]},{i * 1.5 + 0.25}" for i in range(40))
    (tmp_path / "t.csv").write_text("size,kind,price\n" + rows + "\n")
    code = ("import sys\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "import train\n"
            "status = train.main(['train.py', '--dry_run', '--dataset=csv:t.csv', '--dataset_label_column=price']"
            " + sys.argv[1:])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "sys.exit(status)\n")

    def dry_run(*flags):
        return subprocess.run([sys.executable, "-c", code, *flags], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert "#   columns: 1 numeric, 1 text\n#   task: regression (label column 'price' holds 40 distinct" in result.stdout
    result = dry_run("--metrics=accuracy")
    assert result.returncode == 2
    assert "train.py: error: --metrics=accuracy: accuracy reads classes, but the task is regression" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["t.csv"]
