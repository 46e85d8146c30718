"""ModelCheckpoint's files are whole after any kill, only the newest N are kept, and best.keras is the best epoch's."""

import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import TRAIN
from kerasrun.cli.config import resolve
from kerasrun.core.errors import UsageError

TINY = ["--dataset=npz:tiny.npz", "--batch_size=16", "--seed=3", "--deterministic=True", "--verbose=2"]
# On tiny.npz with this rate, val_loss is lowest at epoch 2 and worse at every later epoch.
FAST = "--learning_rate=0.05"
# With this rate, val_accuracy improves at epochs 1, 2 and 5 of 6.
SLOWER = "--learning_rate=0.02"


def write_tiny(directory):
    """Writes tiny.npz: 64 training and 32 validation rows of 6 features, two noisy classes."""
    generator = np.random.default_rng(0)
    parts = []
    for rows in (64, 32):
        x = generator.normal(size=(rows, 6)).astype("float32")
        parts += [x, (x[:, 0] + 0.8 * generator.normal(size=rows) > 0).astype("int64")]
    x, y, x_val, y_val = parts
    np.savez(directory / "tiny.npz", x_train=x, y_train=y, x_val=x_val, y_val=y_val)
    return x_val, y_val


def results(run_dir):
    with open(run_dir / "results.json") as stream:
        return json.load(stream)


def evaluated(path, x, y):
    """Returns the logs of the model saved at `path` evaluated on (x, y)."""
    import keras

    return keras.saving.load_model(str(path)).evaluate(x, y, verbose=0, return_dict=True)


def whole_model_file(path):
    """Asserts that `path` is a whole .keras file: an intact zip that Keras loads."""
    import keras

    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, path
    keras.saving.load_model(str(path))


def test_keep_matches_the_names_the_template_makes_and_no_others():
    from kerasrun.callbacks.model_checkpoint import template_pattern

    pattern = template_pattern("e{epoch:02d}-{val_loss:.3f}.keras")
    assert [name for name in ("e03-0.123.keras", "e10-nan.keras", "e01-1.5e-05.keras", "e03-0.123.keras.bak",
                              "best.keras", "e03-x.keras", ".tmp-0123-e03-0.123.keras") if pattern.fullmatch(name)] == [
        "e03-0.123.keras", "e10-nan.keras", "e01-1.5e-05.keras"]
    assert template_pattern("model.keras") is None  # one file, overwritten: nothing to keep


@pytest.mark.parametrize("args, expected", [
    (("--model_checkpoint_keep=0",), "--model_checkpoint_keep=0: must be at least 1"),
    (("--model_checkpoint_keep=2", "--model_checkpoint_filepath=e{epoch}/m.keras"),
     "--model_checkpoint_keep=2: needs the placeholders of --model_checkpoint_filepath in its file name, "
     "not in its directory"),
    (("--run_name=r", "--model_checkpoint_filepath=tensorboard_logs/r/best.keras"),
     "--model_checkpoint_filepath=tensorboard_logs/r/best.keras: is a run directory's best.keras"),
])
def test_a_checkpoint_setting_that_cannot_work_is_refused_naming_the_flag(args, expected):
    with pytest.raises(UsageError, match=re.escape(expected)):
        resolve(["train.py", "--model_checkpoint", *args])


def test_keep_of_a_single_overwritten_file_says_it_has_no_effect():
    config = resolve(["train.py", "--model_checkpoint", "--model_checkpoint_keep=2",
                      "--model_checkpoint_filepath=model.keras"])
    assert config.warnings == ("--model_checkpoint_keep has no effect: it applies to a --model_checkpoint_filepath "
                               "with placeholders such as {epoch:02d}; this one names one file, overwritten at "
                               "each save",)
    assert resolve(["train.py", "--model_checkpoint", "--model_checkpoint_keep=2"]).warnings == ()


def test_without_the_monitored_quantity_best_keras_is_not_kept_and_the_run_is_told_once(tmp_path, capsys):
    import keras

    from kerasrun.callbacks.subclasses.model_checkpoint import ModelCheckpoint

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    checkpoint = ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True, keep=1,
                                 best_model_path=str(tmp_path / "best.keras"))
    model.fit(np.ones((8, 3)), np.ones(8), epochs=3, verbose=0, callbacks=[checkpoint])  # no validation data
    assert sorted(os.listdir(tmp_path)) == ["w3.weights.h5"]
    warning = capsys.readouterr().err.splitlines()
    assert warning == ["train.py: warning: best.keras is not kept: 'val_loss' (--model_checkpoint_monitor) is not "
                       "logged at epoch ends as one number (there is no validation data); logged: loss"]


def run_two_at_once(tmp_path, *commands):
    """Runs two train.py command lines side by side in `tmp_path` (their start-up is most of their time)."""
    processes = [subprocess.Popen([sys.executable, TRAIN, *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for args in commands]
    for process in processes:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-2000:]


def test_keep_leaves_the_newest_files_or_the_best_and_best_keras_holds_the_best_epoch(tmp_path):
    x_val, y_val = write_tiny(tmp_path)
    # A file of another run, from the same template in the same folder: not this run's to delete.
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "e09.weights.h5").write_text("an earlier run's")
    os.utime(tmp_path / "ck" / "e09.weights.h5", (time.time() - 3600,) * 2)
    run_two_at_once(
        tmp_path,
        [*TINY, FAST, "--epochs=5", "--model_checkpoint=True", "--model_checkpoint_keep=2", "--run_name=every"],
        [*TINY, SLOWER, "--epochs=6", "--model_checkpoint=True", "--model_checkpoint_keep=2",
         "--model_checkpoint_save_best_only=True", "--model_checkpoint_save_weights_only=True",
         "--model_checkpoint_monitor=val_accuracy", "--model_checkpoint_filepath=ck/e{epoch:02d}.weights.h5",
         "--csv_logger=True", "--run_name=best_only"])

    # Every epoch's checkpoint: the last two remain; best.keras is epoch 2's model, not the last.
    run_dir = tmp_path / "tensorboard_logs" / "every"
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["epoch04.keras", "epoch05.keras"]
    record = results(run_dir)
    assert record["best"]["monitor"] == "val_loss" and record["best"]["epoch"] == 2
    logs = evaluated(run_dir / "best.keras", x_val, y_val)
    assert abs(logs["loss"] - record["best"]["value"]) < 1e-5
    assert abs(logs["loss"] - record["final"]["val_loss"]) > 1e-3

    # save_best_only: the files of the last two improvements remain, and the other run's file.
    run_dir = tmp_path / "tensorboard_logs" / "best_only"
    with open(run_dir / "training.csv") as stream:
        accuracies = [float(row["val_accuracy"]) for row in csv.DictReader(stream)]
    improved = [epoch for epoch, value in enumerate(accuracies, start=1) if value > max(accuracies[:epoch - 1], default=-1)]
    assert improved == [1, 2, 5], accuracies  # so that keep had a file to delete
    assert sorted(os.listdir(tmp_path / "ck")) == ["e02.weights.h5", "e05.weights.h5", "e09.weights.h5"]
    # best.keras is a whole model although the checkpoints hold weights only.
    record = results(run_dir)
    assert record["best"]["monitor"] == "val_accuracy" and record["best"]["epoch"] == 5
    assert abs(evaluated(run_dir / "best.keras", x_val, y_val)["accuracy"] - record["best"]["value"]) < 1e-5


def start_saving_every_batch(tmp_path, folder, name, *extra):
    """Starts a run that saves a .keras file after every batch into `folder`, keeping the newest 3."""
    return subprocess.Popen(
        [sys.executable, TRAIN, "--model_checkpoint=True", "--model_checkpoint_save_freq=1",
         f"--model_checkpoint_filepath={folder}/e{{epoch}}b{{batch:03d}}.keras", "--model_checkpoint_keep=3",
         f"--run_name={name}", "--verbose=0", *extra],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_while_saving(process, folder, moment):
    """Kills `process` with SIGKILL `moment` seconds after its first checkpoint file was in place."""

    def in_place():
        return folder.is_dir() and any(not name.startswith(".tmp-") for name in os.listdir(folder))

    try:
        deadline = time.monotonic() + 60
        while not in_place() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within a minute"
            time.sleep(0.02)
        time.sleep(moment)
    finally:
        process.kill()
        process.wait()


def assert_whole_files_only(folder, moments):
    finals = [name for name in os.listdir(folder) if not name.startswith(".tmp-")]
    assert 1 <= len(finals) <= 4, (moments, finals)  # keep 3, and the one just renamed in, never none
    for name in finals:
        whole_model_file(folder / name)
    return set(finals)


def test_a_kill_at_any_moment_leaves_only_whole_checkpoint_files(tmp_path):
    write_tiny(tmp_path)
    # Random moments (printed on failure); two runs at a time, as their start-up is most of their time.
    moments = [random.uniform(0.0, 0.8) for _ in range(3)]
    # A model of about 0.5 MB saved after every batch: a kill often lands in the middle of a save.
    big = ("--epochs=3", "--mlp_units=512")
    folders = [tmp_path / f"ck{attempt}" for attempt in range(3)]
    first = [start_saving_every_batch(tmp_path, folders[attempt], f"k{attempt}", *big) for attempt in (0, 1)]
    for attempt, process in enumerate(first):
        kill_while_saving(process, folders[attempt], moments[attempt])
    before = assert_whole_files_only(folders[0], moments)
    assert_whole_files_only(folders[1], moments)

    # The next run of the same template removes what a killed one left half written, and leaves
    # the killed run's files alone: they are older than it, not among the ones it keeps or deletes.
    other = ".tmp-0123456789abcdef0123456789abcdef-notes.txt"
    (folders[0] / ".tmp-0123456789abcdef0123456789abcdef-e1b001.keras").write_bytes(b"half")
    (folders[0] / other).write_bytes(b"someone else's")
    following = start_saving_every_batch(tmp_path, folders[0], "next", *TINY, "--epochs=1")
    kill_while_saving(start_saving_every_batch(tmp_path, folders[2], "k2", *big), folders[2], moments[2])
    assert_whole_files_only(folders[2], moments)
    assert following.wait(timeout=120) == 0
    assert set(os.listdir(folders[0])) == before | {"e1b002.keras", "e1b003.keras", "e1b004.keras", other}


def test_a_resumed_run_keeps_the_best_epoch_of_both_parts_in_best_keras(tmp_path):
    x_val, y_val = write_tiny(tmp_path)
    command = [sys.executable, TRAIN, *TINY, FAST, "--epochs=4", "--backup_and_restore=True", "--model_checkpoint=True",
               "--model_checkpoint_keep=2", "--run_name=r"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("Epoch 3/"):
            process.send_signal(signal.SIGKILL)
            break
    process.communicate(timeout=120)
    assert process.returncode == -9
    run_dir = tmp_path / "tensorboard_logs" / "r"
    first_part = evaluated(run_dir / "best.keras", x_val, y_val)["loss"]
    # As a kill in the middle of writing best.keras would leave it; the resume removes it.
    (run_dir / ".tmp-0123456789abcdef0123456789abcdef-best.keras").write_bytes(b"half")

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming the interrupted run" in resumed.stdout
    record = results(run_dir)
    # Epochs 3 and 4 were worse than epoch 2: best.keras is still the first part's.
    assert record["best"]["epoch"] == 2 and record["epochs_completed"] == 4
    logs = evaluated(run_dir / "best.keras", x_val, y_val)
    assert abs(logs["loss"] - record["best"]["value"]) < 1e-5 and abs(logs["loss"] - first_part) < 1e-6
    # keep counts the first part's files too: epochs 1 and 2 went when 3 and 4 came.
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["epoch03.keras", "epoch04.keras"]
    assert not [name for name in os.listdir(run_dir) if name.startswith(".tmp-")]
