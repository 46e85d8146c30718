"""--optimizer_* options and --class_weight: the tables match Keras, and the options act on training."""

import inspect
import json

import numpy as np
import pytest

from kerasrun.cli.class_weight_option import ClassWeights, parse_class_weight
from kerasrun.cli.config import resolve
from kerasrun.cli.optimizer_options import OPTIMIZER, TAKEN_BY, optimizer_kwargs
from kerasrun.core import keras_names
from kerasrun.core.errors import UsageError
from kerasrun.runner.class_weights import balanced, class_weights

# A --callbacks class that writes what training ended with: the optimizer's config and the weights' size.
RECORDER = """import json

import keras
import numpy as np


def _norm(model):
    return sum(float(np.sum(np.square(np.asarray(w)))) for w in model.trainable_weights)


class Record(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start = _norm(self.model)

    def on_train_end(self, logs=None):
        config = self.model.optimizer.get_config()
        with open("record.json", "w") as stream:
            json.dump({"optimizer": {key: value for key, value in config.items()
                                     if isinstance(value, (int, float, bool, str, type(None)))},
                       "start": self.start, "norm": _norm(self.model)}, stream)
"""


def _keras_arguments(class_name):
    import keras

    return set(inspect.signature(getattr(keras.optimizers, class_name).__init__).parameters)


@pytest.mark.parametrize("name, class_name", sorted(keras_names.OPTIMIZERS.items()))
def test_taken_by_is_what_each_keras_optimizer_takes(name, class_name):
    arguments = _keras_arguments(class_name)
    for option, takers in TAKEN_BY.items():
        assert (name in takers) == (option in arguments), (name, option)


def test_every_option_has_a_row_in_taken_by():
    assert [arg.name for arg in OPTIMIZER.args] == list(TAKEN_BY)


def test_kwargs_hold_only_what_is_set_and_build_the_optimizer():
    import keras

    config = resolve(["train.py", "--optimizer", "sgd", "--optimizer_momentum", "0.9", "--optimizer_nesterov",
                      "--optimizer_weight_decay", "0.01", "--optimizer_global_clipnorm", "1"])
    kwargs = optimizer_kwargs(config)
    assert kwargs == {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "global_clipnorm": 1.0}
    optimizer = keras.optimizers.SGD(**kwargs)
    assert (optimizer.momentum, optimizer.nesterov, optimizer.weight_decay, optimizer.global_clipnorm) == (
        0.9, True, 0.01, 1.0)
    assert optimizer_kwargs(resolve(["train.py"])) == {}  # Keras's defaults stay (adamw's weight decay too).
    # 1 is no accumulation: nothing passed on (Keras refuses 1), even under a strategy that refuses accumulation.
    assert optimizer_kwargs(resolve(["train.py", "--optimizer_gradient_accumulation_steps=1",
                                     "--distribution_strategy=mirrored"])) == {}


@pytest.mark.parametrize("text, expected", [
    ("balanced", "balanced"), ("none", None), ("0:1,1:5", {0: 1.0, 1: 5.0}), (" 2:0.5 , 0:2", {2: 0.5, 0: 2.0}),
])
def test_class_weight_texts(text, expected):
    assert parse_class_weight(text) == expected


def test_class_weight_in_yaml_takes_a_mapping_and_refuses_base_60():
    assert ClassWeights().from_yaml({0: 1, 1: 5}) == "0:1,1:5"
    with pytest.raises(ValueError, match="quote it"):
        ClassWeights().from_yaml(65)  # What YAML makes of an unquoted 1:5.


def test_balanced_is_scikit_learns_rule():
    labels = np.array([0] * 90 + [1] * 10 + [2] * 0)
    assert balanced(labels, 3) == pytest.approx({0: 100 / 180, 1: 100 / 20, 2: 1.0})


def _data(task, y, num_classes):
    from kerasrun.core.heads import Head
    from kerasrun.datasets.data import Data

    return Data(train=(np.zeros((len(y), 2)), y), val=None, input_shape=(2,), num_classes=num_classes,
                label_kind="int", head=Head(task, num_classes))


def test_class_weights_fill_every_class_and_read_one_hot_labels():
    config = resolve(["train.py", "--class_weight", "1:3"])
    assert class_weights(config, _data("classification", np.array([0, 1, 2]), 3)) == {0: 1.0, 1: 3.0, 2: 1.0}
    one_hot = np.eye(2)[[0, 0, 0, 1]]
    assert class_weights(resolve(["train.py", "--class_weight", "balanced"]),
                         _data("classification", one_hot, 2)) == pytest.approx({0: 4 / 6, 1: 2.0})


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_class_weights_are_refused_for_a_task_without_classes(task):
    with pytest.raises(UsageError, match=f"--class_weight=balanced: the task is {task}"):
        class_weights(resolve(["train.py", "--class_weight", "balanced"]), _data(task, np.zeros(3), 1))


@pytest.mark.parametrize("args, expected", [
    (["--optimizer=adam", "--optimizer_momentum=0.9"],
     "--optimizer_momentum=0.9: adam does not take momentum; optimizers that do: muon, rmsprop, sgd"),
    (["--optimizer=sgd", "--optimizer_beta_1=0.8"], "--optimizer_beta_1=0.8: sgd does not take beta_1"),
    (["--optimizer=lion", "--optimizer_epsilon=1e-6"], "--optimizer_epsilon=1e-06: lion does not take epsilon"),
    (["--optimizer=nadam", "--optimizer_amsgrad"], "--optimizer_amsgrad=True: nadam does not take amsgrad"),
    (["--optimizer_clipnorm=1", "--optimizer_global_clipnorm=2"],
     "--optimizer_global_clipnorm=2.0: Keras clips gradients one way at a time"),
    (["--optimizer_weight_decay=-1"], "--optimizer_weight_decay=-1.0: must be at least 0"),
    (["--optimizer_gradient_accumulation_steps=0"], "--optimizer_gradient_accumulation_steps=0: must be at least 1"),
    (["--optimizer_gradient_accumulation_steps=4", "--distribution_strategy=mirrored"],
     "--optimizer_gradient_accumulation_steps=4: Keras's gradient accumulation fails under "
     "--distribution_strategy mirrored"),
    (["--class_weight=heavy"], "--class_weight=heavy: must be balanced, none, or class ids"),
    (["--class_weight=balanced", "--task=multilabel"], "--class_weight=balanced: the task is multilabel"),
])
def test_mistakes_are_refused_before_tensorflow(args, expected):
    with pytest.raises(UsageError) as caught:
        resolve(["train.py", *args])
    assert str(caught.value).startswith(expected)


def _imbalanced(path):
    """Writes 450 examples of class 0 and 50 of class 1, apart by a shift; balanced validation data."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (450, 4)), rng.normal(0.7, 1, (50, 4))]).astype("float32")
    x_val = np.concatenate([rng.normal(0, 1, (200, 4)), rng.normal(0.7, 1, (200, 4))]).astype("float32")
    np.savez(path, x_train=x, y_train=np.repeat([0, 1], [450, 50]), x_val=x_val,
             y_val=np.repeat([0, 1], [200, 200]))


def test_balanced_class_weights_lift_the_minority_class(train, tmp_path):
    _imbalanced(tmp_path / "imbalanced.npz")
    common = ["--dataset", "npz:imbalanced.npz", "--epochs", "5", "--verbose", "0", "--results_file", "r.jsonl"]
    plain = train(*common)
    weighted = train(*common, "--class_weight", "balanced")
    assert plain.returncode == 0 and weighted.returncode == 0, plain.stderr[-2000:] + weighted.stderr[-2000:]
    assert "class weights: balanced from the training labels: 0: 0.5556, 1: 5" in weighted.stdout
    assert "class weights" not in plain.stdout
    runs = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    # Unweighted, the model predicts the majority class for all: half of the balanced validation data.
    assert runs[0]["final"]["val_accuracy"] <= 0.55
    assert runs[1]["final"]["val_accuracy"] >= runs[0]["final"]["val_accuracy"] + 0.1
    assert runs[1]["hparams"]["class_weight"] == "balanced"
    missing = train(*common, "--class_weight", "0:1,2:5")  # Refused once the labels are known: nothing written.
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == (
        "train.py: error: --class_weight=0:1,2:5: class 2 is not a class of the data, whose classes are 0 and 1")
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2


def test_weight_decay_shrinks_the_weights(train, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    common = ["--epochs", "2", "--verbose", "0", "--optimizer", "sgd", "--learning_rate", "0.05",
              "--optimizer_momentum", "0.5", "--callbacks", "recorder.py:Record"]
    norms = {}
    for decay in ("none", "0.5"):
        extra = [] if decay == "none" else ["--optimizer_weight_decay", decay, "--optimizer_clipvalue", "10"]
        result = train(*common, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        record = json.loads((tmp_path / "record.json").read_text())
        norms[decay] = record["norm"]
        assert record["optimizer"]["momentum"] == 0.5
        if decay != "none":
            assert record["optimizer"]["weight_decay"] == 0.5
            assert record["optimizer"]["clipvalue"] == 10
        else:
            assert record["optimizer"]["weight_decay"] is None
    # Each step shrinks every weight by learning_rate * weight_decay = 2.5 %: 90 steps leave about a tenth.
    assert norms["0.5"] < 0.2 * norms["none"]


def test_checking_the_options_does_not_import_tensorflow():
    import subprocess
    import sys

    from conftest import IMPORT_KERASRUN

    code = (
        f"{IMPORT_KERASRUN}\n"
        "import sys\n"
        "from kerasrun.cli.config import resolve\n"
        "from kerasrun.core.errors import UsageError\n"
        "resolve(['train.py', '--optimizer', 'sgd', '--optimizer_momentum', '0.9', '--optimizer_nesterov',\n"
        "         '--optimizer_weight_decay', '0.1', '--class_weight', 'balanced'])\n"
        "try:\n"
        "    resolve(['train.py', '--optimizer_momentum', '0.9'])\n"
        "except UsageError:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_schedule_free_adamw_trains_with_its_options(train, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    result = train("--epochs", "3", "--verbose", "0", "--optimizer", "schedule_free_adamw", "--learning_rate", "0.0025",
                   "--optimizer_beta_1", "0.8", "--optimizer_epsilon", "1e-6", "--callbacks", "recorder.py:Record",
                   "--results_file", "r.jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    optimizer = json.loads((tmp_path / "record.json").read_text())["optimizer"]
    assert (optimizer["name"], optimizer["beta_1"], optimizer["epsilon"]) == ("schedule_free_adam_w", 0.8, 1e-6)
    final = json.loads((tmp_path / "r.jsonl").read_text())["final"]
    assert final["val_accuracy"] > 0.6  # Ten digits: chance is 0.1 (it reaches 0.79).


def test_nesterov_false_for_muon_is_said_to_have_no_effect():
    warnings = resolve(["train.py", "--optimizer", "muon", "--optimizer_nesterov", "false"]).warnings
    assert warnings == ("--optimizer_nesterov has no effect: muon keeps its Nesterov momentum (Keras's default): "
                        "only True is passed on",)
    assert resolve(["train.py", "--optimizer", "sgd", "--optimizer_nesterov", "false"]).warnings == ()


def test_gradient_accumulation_updates_only_every_n_steps(train, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    common = ["--epochs", "1", "--verbose", "0", "--callbacks", "recorder.py:Record"]
    records = {}
    for steps in (2, 1000):  # One epoch of the digits is 45 steps: 1000 never updates.
        result = train(*common, "--optimizer_gradient_accumulation_steps", str(steps))
        assert result.returncode == 0, result.stderr[-2000:]
        records[steps] = json.loads((tmp_path / "record.json").read_text())
        assert records[steps]["optimizer"]["gradient_accumulation_steps"] == steps
    assert records[1000]["norm"] == pytest.approx(records[1000]["start"], rel=1e-6)
    assert abs(records[2]["norm"] - records[2]["start"]) > 1e-3 * records[2]["start"]
