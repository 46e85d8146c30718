"""A run killed at any moment and started again ends exactly where an uninterrupted run ends."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import TRAIN, write_images

RUN = ["--epochs=6", "--batch_size=8", "--verbose=2", "--seed=7", "--deterministic=True",
       "--backup_and_restore=True", "--csv_logger=True",
       # Callbacks whose state (patience counters, best values) must survive the restart.
       "--reduce_lr=True", "--reduce_lr_monitor=loss", "--reduce_lr_patience=1", "--reduce_lr_factor=0.5",
       "--reduce_lr_min_delta=0.08",
       "--early_stopping=True", "--early_stopping_monitor=val_loss", "--early_stopping_patience=20",
       "--early_stopping_restore_best_weights=True"]


def results(tmp_path, name):
    with open(tmp_path / "tensorboard_logs" / name / "results.json") as stream:
        return json.load(stream)


def run(tmp_path, name, *extra):
    result = subprocess.run([sys.executable, TRAIN, *RUN, *extra, f"--run_name={name}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def interrupt(tmp_path, name, signum, epoch, *extra):
    process = subprocess.Popen([sys.executable, TRAIN, *RUN, *extra, f"--run_name={name}"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith(f"Epoch {epoch}/"):
            time.sleep(0.05)  # into the epoch, not at its edge
            process.send_signal(signum)
            break
    process.communicate(timeout=120)
    return process.returncode


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The results of the run every interrupted one is compared with, trained once for the module."""
    folder = tmp_path_factory.mktemp("whole")
    run(folder, "whole")
    return results(folder, "whole")


# SIGINT stops a run as SIGTERM does (runner/interrupts.py); tests/test_runs.py resumes after each.
@pytest.mark.parametrize("signum, exit_code", [(signal.SIGKILL, -9), (signal.SIGTERM, 143)], ids=["kill-9", "sigterm"])
def test_a_resumed_run_ends_on_the_uninterrupted_runs_metrics(tmp_path, uninterrupted, signum, exit_code):
    expected = uninterrupted
    assert expected["epochs_completed"] == 6

    assert interrupt(tmp_path, "cut", signum, epoch=4) == exit_code
    resumed = run(tmp_path, "cut")
    assert "Resuming the interrupted run" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 4/6" in resumed.stdout
    record = results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == expected["final"]
    assert record["best"] == expected["best"]
    log = (tmp_path / "tensorboard_logs" / "cut" / "training.csv").read_text().splitlines()
    # The epoch cut short is in no log: each epoch appears once.
    assert [row.split(",")[0] for row in log[1:]] == ["0", "1", "2", "3", "4", "5"]


# On JAX an epoch of batches of 8 takes about 40 ms, less than the kill's wait into the epoch: batches of 2.
ON_JAX = ("--backend=jax", "--batch_size=2")


@pytest.fixture(scope="module")
def uninterrupted_on_jax(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole-jax")
    run(folder, "whole", *ON_JAX)
    return results(folder, "whole")


def test_on_jax_a_run_killed_with_kill_9_resumes_to_the_uninterrupted_runs_metrics(tmp_path, uninterrupted_on_jax):
    # The same run on JAX (NumPy batches, JAX's Dropout generator): equally exact.
    expected = uninterrupted_on_jax
    assert expected["epochs_completed"] == 6 and expected["hparams"]["backend"] == "jax"
    assert interrupt(tmp_path, "cut", signal.SIGKILL, 4, *ON_JAX) == -9
    resumed = run(tmp_path, "cut", *ON_JAX)
    assert "Resuming the interrupted run" in resumed.stdout and "Epoch 4/6" in resumed.stdout
    record = results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == expected["final"] and record["best"] == expected["best"]


def test_a_resumed_run_on_a_streamed_image_folder_ends_on_the_uninterrupted_runs_metrics(tmp_path):
    write_images(tmp_path / "pictures", {"circle": 40, "square": 40, "star": 40}, size=(9, 9))
    images = ("--dataset=images:pictures", "--dataset_cache=none", "--dataset_image_size=8,8",
              "--validation_split=0.25", "--batch_size=4")
    run(tmp_path, "whole", *images)
    assert interrupt(tmp_path, "cut", signal.SIGKILL, 3, *images) == -9
    resumed = run(tmp_path, "cut", *images)
    assert "Resuming the interrupted run" in resumed.stdout and "Epoch 1/6" not in resumed.stdout
    expected, record = results(tmp_path, "whole"), results(tmp_path, "cut")
    assert record["epochs_completed"] == expected["epochs_completed"] == 6
    assert record["final"] == expected["final"] and record["best"] == expected["best"]


def test_a_backup_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import os
    import signal as signals

    import keras
    import numpy as np

    from kerasrun.callbacks.subclasses.backup_and_restore import BackupAndRestore
    from kerasrun.runner.interrupts import GracefulStop

    def model():
        built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        built.compile("adam", "sparse_categorical_crossentropy")
        return built

    x, y = np.random.default_rng(0).random((16, 4)), np.arange(16) % 2
    backup_dir = tmp_path / "backup"
    trained = model()
    trained.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(str(backup_dir), delete_checkpoint=False)])
    assert json.loads((backup_dir / "training_metadata.json").read_text())["epoch"] == 2

    # The next backup is cut short by a second Ctrl-C halfway through writing its weights.
    stop = GracefulStop()
    previous = signals.getsignal(signals.SIGINT)
    stop.install()
    try:
        stop.received = signals.SIGINT  # The first Ctrl-C came earlier.
        writing = BackupAndRestore(str(backup_dir), delete_checkpoint=False)
        writing.set_model(trained)
        writing._current_epoch = 3
        original = trained.save_weights

        def save_then_ctrl_c(filepath, overwrite=True):
            with open(filepath, "wb") as stream:
                stream.write(b"half a file")
            os.kill(os.getpid(), signals.SIGINT)  # The handler waits: the backup is being written.
            original(filepath, overwrite=overwrite)

        monkeypatch.setattr(trained, "save_weights", save_then_ctrl_c)
        writing._save_model()  # Ends the write; the first Ctrl-C's stop ends training after the next step.
        assert stop.forced and stop.received == signals.SIGINT
    finally:
        signals.signal(signals.SIGINT, previous)
    assert json.loads((backup_dir / "training_metadata.json").read_text())["epoch"] == 3
    assert sorted(os.listdir(backup_dir)) == ["latest.weights.h5", "training_metadata.json"]

    # A write that dies halfway (kill -9, a full disk) leaves the backup it was replacing untouched.
    def save_half(filepath, overwrite=True):
        with open(filepath, "wb") as stream:
            stream.write(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(trained, "save_weights", save_half)
    writing._current_epoch = 4
    with pytest.raises(OSError):
        writing._save_model()
    assert json.loads((backup_dir / "training_metadata.json").read_text())["epoch"] == 3
    restored = model()
    restored.fit(x, y, epochs=4, verbose=0, callbacks=[BackupAndRestore(str(backup_dir), delete_checkpoint=False)])
