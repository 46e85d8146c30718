"""End-to-end runs of train.py, as a user types them, on the bundled or tiny data.

Each training run checks several things, to keep the number of TensorFlow
start-ups (about 3 s each) small.
"""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, tensorboard_server


# TensorFlow's C++ logging (TF 2.21): train.py keeps its start-up notices back (core/startup_logs.py).
TF_NOISE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def own_lines(stderr):
    """Returns the lines of stderr: since train.py keeps TensorFlow's start-up notices back, all of them."""
    return stderr.strip().splitlines()


def final_metric(output, name):
    match = re.search(rf"Final .*\b{name}: ([0-9.]+)", output)
    assert match, output
    return float(match.group(1))


def run_dir(tmp_path):
    (directory,) = glob.glob(str(tmp_path / "tensorboard_logs" / "*"))
    return directory


def epoch_scalars(event_dir, tag):
    """Reads one scalar per epoch from TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(event_dir, size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    if tag in tags["scalars"]:
        return [event.value for event in accumulator.Scalars(tag)]
    from tensorboard.util import tensor_util

    return [float(tensor_util.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)]


def test_default_run_trains_on_bundled_digits(train, tmp_path):
    # --early_stopping False must not switch early stopping on: with these
    # settings it would stop after two epochs.
    result = train("--early_stopping", "False", "--early_stopping_monitor=loss",
                   "--early_stopping_min_delta=100", "--verbose", "2")
    assert result.returncode == 0, result.stderr
    assert "Epoch 10/10" in result.stdout
    assert final_metric(result.stdout, "val_accuracy") >= 0.9
    assert os.path.isdir(run_dir(tmp_path))
    # TensorFlow's start-up notices (absl's preamble, oneDNN, no CUDA driver, cuInit) are kept back.
    assert not [line for line in result.stderr.splitlines() if TF_NOISE.match(line)], result.stderr
    assert "cuInit" not in result.stderr and "cuda drivers" not in result.stderr


# A --callbacks class that writes the sizes of TensorFlow's thread pools as training begins.
THREAD_POOLS = """
import json
import keras
import tensorflow as tf

class ThreadPools(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        with open("thread_pools.json", "w") as stream:
            json.dump([tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()], stream)
"""


def test_performance_flags_train_end_to_end(train, tmp_path):
    (tmp_path / "pools.py").write_text(THREAD_POOLS)
    result = train("--epochs", "2", "--verbose", "2", "--steps_per_execution", "4", "--jit_compile", "true",
                   "--mixed_precision", "mixed_bfloat16", "--model_checkpoint", "--intra_op_threads", "1",
                   "--inter_op_threads", "3", "--callbacks", "pools.py:ThreadPools")
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2" in result.stdout and final_metric(result.stdout, "val_accuracy") > 0.5
    directory = run_dir(tmp_path)
    with open(os.path.join(directory, "results.json")) as stream:
        results = json.load(stream)
    assert results["status"] == "completed" and results["epochs_completed"] == 2
    keys = ("steps_per_execution", "jit_compile", "mixed_precision", "intra_op_threads", "inter_op_threads")
    assert {key: results["hparams"][key] for key in keys} == {
        "steps_per_execution": 4, "jit_compile": "true", "mixed_precision": "mixed_bfloat16",
        "intra_op_threads": 1, "inter_op_threads": 3}
    # TensorFlow trained with the thread pools asked for.
    assert json.loads((tmp_path / "thread_pools.json").read_text()) == [1, 3]
    # The model trained, and was saved, computing in bfloat16 with float32 weights.
    import keras

    model = keras.saving.load_model(os.path.join(directory, "checkpoints", "epoch02.keras"))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][0]
    assert dense.dtype_policy.name == "mixed_bfloat16"  # the layers keep it (the model's own is not saved)
    assert dense.compute_dtype == "bfloat16" and dense.kernel.dtype == "float32"


def test_the_four_callbacks_act(train, tmp_path):
    result = train(
        "--epochs", "10", "--verbose", "2",
        "--early_stopping", "True", "--early_stopping_monitor", "loss",
        "--early_stopping_min_delta", "100", "--early_stopping_patience", "2",
        "--reduce_lr", "true", "--reduce_lr_monitor=loss", "--reduce_lr_min_delta=100",
        "--reduce_lr_patience=0", "--reduce_lr_factor=0.5",
        "--model_checkpoint",
        "--tensorboard=True",
    )
    assert result.returncode == 0, result.stderr
    directory = run_dir(tmp_path)

    # EarlyStopping: no epoch improves the loss by 100, so training stops after 1 + patience epochs.
    assert "Epoch 3/10" in result.stdout and "Epoch 4/10" not in result.stdout

    # ReduceLROnPlateau halves the rate after every epoch without improvement;
    # the rate each epoch trained with is in TensorBoard.
    rates = epoch_scalars(os.path.join(directory, "train"), "epoch_learning_rate")
    assert rates == pytest.approx([0.001, 0.0005, 0.00025])

    # TensorBoard: one loss scalar per epoch, for training and validation.
    assert len(epoch_scalars(os.path.join(directory, "train"), "epoch_loss")) == 3
    assert len(epoch_scalars(os.path.join(directory, "validation"), "epoch_loss")) == 3

    # `tensorboard --logdir tensorboard_logs` shows the run and its loss curve.
    name = os.path.basename(directory)
    with tensorboard_server(tmp_path / "tensorboard_logs") as get:
        assert {f"{name}/train", f"{name}/validation"} <= set(get("/data/runs"))
        points = get(f"/data/plugin/scalars/scalars?run={name}/train&tag=epoch_loss")
        assert [step for _, step, _ in points] == [0, 1, 2]

    # ModelCheckpoint: one model per epoch in the run directory, and it loads.
    saved = sorted(os.listdir(os.path.join(directory, "checkpoints")))
    assert saved == ["epoch01.keras", "epoch02.keras", "epoch03.keras"]
    import keras

    model = keras.saving.load_model(os.path.join(directory, "checkpoints", "epoch03.keras"))
    with np.load(os.path.join(REPO, "datasets", "digits.npz")) as digits:
        images = digits["x_val"][:50, :, :, None] / 16.0
        labels = digits["y_val"][:50]
    assert (model.predict(images, verbose=0).argmax(axis=1) == labels).mean() > 0.5

    # The saved model continues training as --model.
    resumed = train("--model", os.path.join(directory, "checkpoints", "epoch03.keras"),
                    "--epochs=1", "--run_name=resumed", "--verbose=0")
    assert resumed.returncode == 0, resumed.stderr
    assert final_metric(resumed.stdout, "val_accuracy") > 0.5


def test_weights_only_checkpoint_with_log_keys_in_the_name(train, tmp_path):
    result = train(
        "--epochs=2", "--verbose=0", "--model=cnn",
        "--model_checkpoint", "True",
        "--model_checkpoint_filepath", "ckpt/w.{epoch:02d}-{val_loss:.2f}.weights.h5",
        "--model_checkpoint_save_weights_only", "True",
        "--model_checkpoint_save_best_only", "--model_checkpoint_monitor=val_accuracy",
        env={"KERASRUN_TF_LOGS": "1"},
    )
    assert result.returncode == 0, result.stderr
    # KERASRUN_TF_LOGS=1 shows TensorFlow's start-up logs as TensorFlow writes them (TF 2.21: twice).
    assert result.stderr.count("WARNING: All log messages before absl::InitializeLog() is called") == 2, result.stderr
    saved = sorted(os.listdir(tmp_path / "ckpt"))
    assert saved and all(re.fullmatch(r"w\.0[12]-\d\.\d\d\.weights\.h5", name) for name in saved)
    import keras

    from kerasrun.models import Head, build

    model = build("cnn", input_shape=(8, 8, 1), head=Head("classification", 10))
    model.load_weights(str(tmp_path / "ckpt" / saved[-1]))


USAGE_ERRORS = [
    (["--epochs", "0"], "--epochs=0"),
    (["--early_stopping", "Flase"], "--early_stopping=Flase: must be true or false"),
    (["--reduce_lr", "--reduce_lr_factor=1.5"], "--reduce_lr_factor=1.5"),
    (["--model_checkpoint", "--model_checkpoint_filepath=weights.{epoch:02d}-{val_loss:.2f}.hdf5"],
     ".weights.h5"),
    (["--dataset=csv:missing.csv"], "missing.csv"),
    (["--model=ResNet51"], "--model='ResNet51'"),
    # Found only once the data is loaded, still before anything is written.
    (["--loss=categorical_crossentropy"], "needs one-hot labels"),
    (["--metrics=mse"], "--metrics=mse: compares each of the model's 10 outputs with the example's one label"),
]


@pytest.mark.parametrize("args, expected", USAGE_ERRORS)
def test_usage_errors_exit_2_with_one_line_and_write_nothing(train, tmp_path, args, expected):
    result = train(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(own_lines(result.stderr)) == 1
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_failure_inside_training_is_one_line_and_exit_1(train, tmp_path):
    (tmp_path / "broken.py").write_text(
        "import keras\n\n"
        "class Broken(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n"
        "        raise ValueError('disk full')\n"
    )
    result = train("--callbacks=broken:Broken", "--epochs=2", "--run_name=broken")
    line = "error: training failed: ValueError: disk full (at broken.py:5)"  # The user's line, not Keras's.
    assert result.returncode == 1
    assert own_lines(result.stderr) == [f"train.py: {line}"]
    record = json.loads((tmp_path / "tensorboard_logs" / "broken" / "results.json").read_text())
    assert (record["status"], record["message"]) == ("failed", line)


def test_validation_and_help_do_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "import train\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert train.main(['train.py', '--help']) == 0\n"
        "    assert train.main(['train.py', '--epochs=0']) == 2\n"
        "    from kerasrun.cli.config import resolve\n"
        "    resolve(['train.py', '--early_stopping', '--model_checkpoint', '--tensorboard', '--reduce_lr'])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_help_lists_every_flag(train):
    from kerasrun.cli.config import all_options

    result = train("--help")
    assert result.returncode == 0
    for name in all_options():
        assert f"--{name} " in result.stdout
