"""--loss, --metrics and --label_smoothing: the catalogue is Keras's, and what it builds acts."""

import json
import math
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasrun.core import losses_metrics
from kerasrun.core.errors import UsageError
from kerasrun.core.heads import Head
from kerasrun.runner.compiling import make_loss, make_metrics

from test_train import own_lines

# Keras names the catalogue leaves out: metric-learning and sequence losses, which need labels of their
# own kind, IoU of chosen classes (a list argument), and the base classes.
NOT_OFFERED = {"circle", "ctc", "io_u", "one_hot_io_u", "mean", "sum", "metric", "mean_metric_wrapper"}


def keras_names(module):
    from keras.src.losses import ALL_OBJECTS_DICT as losses
    from keras.src.metrics import ALL_OBJECTS_DICT as metrics

    return {name for name in (losses if module == "losses" else metrics) if name[0].islower()}


@pytest.mark.parametrize("catalogue", ["losses", "metrics"])
def test_the_catalogue_holds_every_name_keras_accepts_and_nothing_else(catalogue):
    entries, aliases = ((losses_metrics.LOSSES, losses_metrics.LOSS_ALIASES) if catalogue == "losses"
                        else (losses_metrics.METRICS, losses_metrics.METRIC_ALIASES))
    module = getattr(keras, catalogue)
    for name, entry in entries.items():
        assert hasattr(module, entry.keras), (name, entry.keras)
        if entry.sparse:
            assert hasattr(module, entry.sparse), entry.sparse
    keras_own = keras_names(catalogue)
    assert keras_own - set(entries) - set(aliases) <= NOT_OFFERED
    ours = {"logcosh", "rmse", "top_k", "sparse_top_k", "log_cosh", "kld"}
    # Functions compile takes, if not by name, and "acc", which compile reads as "accuracy".
    public = {name for name in dir(module) if name[0].islower()} | {"acc"}
    assert set(entries) | set(aliases) - ours <= keras_own | public


@pytest.mark.parametrize("name", sorted(set(losses_metrics.LOSSES) | set(losses_metrics.LOSS_ALIASES)))
def test_every_loss_name_builds_and_keras_resolves_it(name):
    assert callable(make_loss(name, Head("classification", 3), "one_hot", 3))
    if name not in ("logcosh", "categorical_generalized_cross_entropy"):  # Ours, and one Keras has no name for.
        assert callable(keras.losses.get(name))


@pytest.mark.parametrize("name", sorted(losses_metrics.METRICS))
def test_every_metric_builds_logged_under_its_name_with_kerass_direction(name):
    text = {"precision_at_recall": "precision_at_recall:0.5", "recall_at_precision": "recall_at_precision:0.5",
            "sensitivity_at_specificity": "sensitivity_at_specificity:0.5",
            "specificity_at_sensitivity": "specificity_at_sensitivity:0.5"}.get(name, name)
    (metric,) = make_metrics([text], Head("classification", 3), "one_hot", 3)
    spec = losses_metrics.parse("--metrics", text)
    assert metric.name == spec.logs
    metric.update_state(np.eye(3, dtype="float32")[[0, 1, 2, 1]], np.eye(3, dtype="float32")[[0, 1, 1, 1]] * 0.8 + 0.05)
    assert np.ndim(metric.result()) == 0  # One number per epoch, as logs and results.json need.
    expected = losses_metrics.METRICS[name].direction
    if getattr(metric, "_direction", None) is not None or expected is not None:
        assert losses_metrics.direction(spec.logs) == {"up": "max", "down": "min"}[metric._direction]


def test_arguments_are_read_in_either_syntax_and_logged_under_the_metrics_own_name():
    top = losses_metrics.parse("--metrics", "top_k:5")
    assert (top.name, top.arguments, top.logs) == ("top_k_categorical_accuracy", {"k": 5}, "top_k_categorical_accuracy")
    assert losses_metrics.parse("--metrics", "auc:curve=PR:num_thresholds=50").arguments == {
        "curve": "PR", "num_thresholds": 50}
    assert losses_metrics.parse("--metrics", "auc:PR").arguments == {"curve": "PR"}
    assert losses_metrics.parse("--metrics", "f1_score:threshold=0.5").arguments == {"threshold": 0.5}
    assert losses_metrics.parse("--loss", "huber:delta=2", "losses").arguments == {"delta": 2.0}
    assert losses_metrics.parse("--metrics", "mse").logs == "mse"  # Keras logs an alias as typed.
    assert losses_metrics.parse("--metrics", "rmse").logs == "root_mean_squared_error"
    plugin = losses_metrics.parse("--metrics", "json:dumps")
    assert (plugin.plugin, plugin.logs) == ("json:dumps", "dumps")


@pytest.mark.parametrize("text, message", [
    ("top_k:k=two", "k must be an integer, not 'two'"),
    ("auc:curve=PR:curve=ROC", "gives curve twice"),
    ("recall:1.5", "thresholds must be between 0 and 1"),
    ("f1_score:average=none", "average must be one of micro, macro, weighted"),
    ("acuracy", "unknown metric 'acuracy' (did you mean accuracy?)"),
])
def test_bad_arguments_are_refused_naming_the_flag(text, message):
    with pytest.raises(UsageError, match="^" + re.escape(f"--metrics={text}: {message}")):
        losses_metrics.parse(f"--metrics={text}", text)


def test_auto_metrics_follow_the_task_and_give_way_to_the_users_own():
    names = {task: [m.name for m in make_metrics(["auto"], Head(task, units), kind, units)]
             for task, units, kind in [("classification", 10, "int"), ("binary", 1, "binary"),
                                       ("multilabel", 3, "multi_hot"), ("regression", 1, "values")]}
    assert names == {"classification": ["accuracy"], "binary": ["accuracy", "auc"],
                     "multilabel": ["binary_accuracy", "auc"],
                     "regression": ["mean_absolute_error", "root_mean_squared_error"]}
    auc = make_metrics(["auto"], Head("multilabel", 3), "multi_hot", 3)[1]
    assert auc.multi_label and auc.num_labels == 3
    pr = make_metrics(["auto", "auc:curve=PR"], Head("binary", 1), "binary", 1)
    assert [m.name for m in pr] == ["accuracy", "auc"] and pr[1].curve.name == "PR"
    assert losses_metrics.logged_metric_names(["auto"]) is None  # Known once the labels decide the task.


def test_metrics_of_one_hot_labels_fit_integer_class_ids():
    head = Head("classification", 4)
    top, auc = make_metrics(["top_k:2", "auc"], head, "int", 4)
    assert isinstance(top, keras.metrics.SparseTopKCategoricalAccuracy) and top.k == 2
    labels, scores = np.array([0, 1, 2, 3]), np.eye(4, dtype="float32")[[0, 1, 3, 2]] * 0.7 + 0.075
    top.update_state(labels, scores)
    auc.update_state(labels, scores)
    reference = keras.metrics.AUC()
    reference.update_state(np.eye(4)[labels], scores)
    assert float(top.result()) == 1.0
    assert float(auc.result()) == pytest.approx(float(reference.result()))


def test_label_smoothing_of_integer_labels_is_categorical_cross_entropy_of_one_hot_labels():
    labels, confident = np.array([0, 1, 2]), np.eye(3, dtype="float32") * 0.98 + 0.0066
    plain = make_loss("sparse_categorical_crossentropy", Head("classification", 3), "int", 3)
    smoothed = make_loss("sparse_categorical_crossentropy", Head("classification", 3), "int", 3, smoothing=0.2)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(3)[labels], confident)
    assert float(smoothed(labels, confident)) == pytest.approx(float(reference), rel=1e-5)
    assert float(smoothed(labels, confident)) > 5 * float(plain(labels, confident))
    assert make_loss("binary_crossentropy", Head("binary", 1), "binary", 1, smoothing=0.2).label_smoothing == 0.2


def test_direction_decides_as_kerass_monitoring_callbacks_do():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    compiled = ["accuracy", "mse", "auc", "categorical_crossentropy", "r2_score"]
    model.compile(loss="categorical_crossentropy", metrics=compiled)
    model.fit(np.zeros((4, 3)), np.eye(2)[[0, 1, 0, 1]], verbose=0)
    for monitor in ["loss", "val_loss", "accuracy", "val_mse", "auc", "val_categorical_crossentropy", "r2_score"]:
        stopping = keras.callbacks.EarlyStopping(monitor=monitor)
        stopping.set_model(model)
        stopping._set_monitor_op()
        keras_choice = "min" if stopping.monitor_op(0.0, 1.0) else "max"
        assert losses_metrics.direction(monitor, compiled) == keras_choice, monitor
    assert losses_metrics.direction("learning_rate", compiled) is None  # Keras refuses mode auto for it
    assert losses_metrics.direction("val_auc", ["accuracy"]) is None  # Not compiled


def results(tmp_path):
    (path,) = tmp_path.glob("tensorboard_logs/*/results.json")
    return json.loads(path.read_text())


def write_regression(path, rows=120):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=rows)).astype("float32")
    split = rows * 4 // 5
    np.savez(path, x_train=x[:split], y_train=y[:split], x_val=x[split:], y_val=y[split:])


def test_regression_metrics_a_plug_in_metric_and_a_plug_in_loss_act(train, tmp_path):
    write_regression(tmp_path / "values.npz")
    (tmp_path / "my_metrics.py").write_text(
        "from keras import ops\n\n"
        "def twice_mae(y_true, y_pred):\n"
        "    return 2.0 * ops.mean(ops.abs(ops.reshape(y_true, (-1, 1)) - y_pred), axis=-1)\n\n"
        "def half_squared_error(y_true, y_pred):\n"
        "    return 0.5 * ops.mean(ops.square(ops.reshape(y_true, (-1, 1)) - y_pred), axis=-1)\n")
    result = train("--dataset=npz:values.npz", "--epochs=2", "--batch_size=16", "--loss=my_metrics:half_squared_error",
                   "--metrics=mae,r2_score,root_mean_squared_error,my_metrics.py:twice_mae",
                   "--early_stopping", "--early_stopping_monitor=val_r2_score", "--early_stopping_patience=5")
    assert result.returncode == 0, result.stderr
    final = results(tmp_path)["final"]
    assert {"loss", "mae", "r2_score", "root_mean_squared_error", "twice_mae", "val_loss", "val_mae", "val_r2_score",
            "val_root_mean_squared_error", "val_twice_mae"} == set(final)
    for prefix in ("", "val_"):
        assert final[f"{prefix}twice_mae"] == pytest.approx(2 * final[f"{prefix}mae"], rel=1e-4)
        assert final[f"{prefix}root_mean_squared_error"] >= final[f"{prefix}mae"]
        # The plug-in loss acts: half the mean squared error.
        assert final[f"{prefix}root_mean_squared_error"] ** 2 == pytest.approx(2 * final[f"{prefix}loss"], rel=1e-3)
    assert final["val_r2_score"] < 1
    assert results(tmp_path)["best"]["monitor"] == "val_r2_score" and results(tmp_path)["best"]["mode"] == "max"


def test_classification_with_top_k_auc_and_label_smoothing(train, tmp_path):
    result = train("--epochs=2", "--metrics=auto,top_k:2,auc", "--label_smoothing=0.1",
                   "--early_stopping", "--early_stopping_monitor=val_auc")
    assert result.returncode == 0, result.stderr
    assert ("label smoothing 0.1: Keras's sparse_categorical_crossentropy has none, so the integer class labels "
            "are made one-hot for categorical_crossentropy") in result.stdout
    final = results(tmp_path)["final"]
    assert {"accuracy", "top_k_categorical_accuracy", "auc", "loss"} <= set(final)
    assert final["val_top_k_categorical_accuracy"] >= final["val_accuracy"] > 0.5
    assert results(tmp_path)["best"]["monitor"] == "val_auc" and results(tmp_path)["best"]["mode"] == "max"


def test_binary_auto_metrics_let_early_stopping_watch_val_auc(train, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    np.savez(tmp_path / "two.npz", x_train=x[:80], y_train=y[:80], x_val=x[80:], y_val=y[80:])
    result = train("--dataset=npz:two.npz", "--task=binary", "--epochs=2", "--early_stopping",
                   "--early_stopping_monitor=val_auc", "--run_name=binary")
    assert result.returncode == 0, result.stderr
    assert set(results(tmp_path)["final"]) == {"accuracy", "auc", "loss", "val_accuracy", "val_auc", "val_loss"}
    # The same monitor without AUC compiled is refused before training, naming what will be logged.
    refused = train("--dataset=npz:two.npz", "--task=binary", "--metrics=accuracy", "--early_stopping",
                    "--early_stopping_monitor=val_auc")
    assert refused.returncode == 2
    (line,) = own_lines(refused.stderr)
    assert line.endswith("--early_stopping_monitor=val_auc: 'val_auc' will never be logged; "
                         "logged: accuracy, loss, val_accuracy, val_loss (add it: --metrics accuracy,auc)")


def test_the_keras_early_stopping_docstring_example_stops_after_4_of_10_epochs(train, tmp_path):
    # keras.callbacks.EarlyStopping's example: Dense(10) on np.arange(100).reshape(5, 20), zeros as targets,
    # SGD(), loss="mse", monitor="loss", patience=3, batch_size=1, 10 epochs: len(history.history["loss"]) == 4.
    # The loss rises from the first epoch on (at SGD's default rate of 0.01 it overflows to inf in the third,
    # which the runner reports as a failure, exit 3); at the runner's default rate it stays finite.
    np.savez(tmp_path / "example.npz", x_train=np.arange(100).reshape(5, 20).astype("float32"), y_train=np.zeros(5))
    (tmp_path / "example.py").write_text(
        "import keras\n\n"
        "def dense(input_shape, num_classes):\n"
        "    return keras.Sequential([keras.layers.Dense(10)])\n")
    result = train("--dataset=npz:example.npz", "--model=example:dense", "--early_stopping=True",
                   "--early_stopping_monitor=loss", "--early_stopping_patience=3", "--optimizer=sgd",
                   "--loss=mse", "--batch_size=1", "--epochs=10")
    assert result.returncode == 0, result.stderr
    record = results(tmp_path)
    assert record["status"] == "early_stopped" and record["epochs_completed"] == 4
    assert "task: regression (--loss mse compares values)" in result.stdout
    assert not math.isnan(record["final"]["loss"])


def test_loss_and_metric_flags_are_checked_without_importing_tensorflow(tmp_path):
    from conftest import REPO

    (tmp_path / "mine.py").write_text("def score(y_true, y_pred):\n    return y_pred\n")
    code = (
        "import sys, contextlib, io\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "import train\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert train.main(['train.py', '--metrics=top_k:0']) == 2\n"
        "    assert train.main(['train.py', '--loss=mse', '--label_smoothing=0.1']) == 2\n"
        "    from kerasrun.cli.config import resolve\n"
        "    resolve(['train.py', '--metrics=auto,top_k:5,auc:curve=PR,mine:score', '--loss=huber:delta=2',\n"
        "             '--early_stopping', '--early_stopping_monitor=val_top_k_categorical_accuracy'])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
