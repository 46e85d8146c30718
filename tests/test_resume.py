"""A run killed at any moment and started again ends exactly where an uninterrupted run ends."""

import json
import os
import random
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


def kill_inside(tmp_path, name, epoch, step, *extra):
    """Kills the run with kill -9 once its backup is at batch `step` or later of `epoch` (0-based).

    The run is stopped (SIGSTOP) first, so that the backup it is killed
    after can be read; returns its (epoch, batches done), where a resume
    must continue.
    """
    process = subprocess.Popen([sys.executable, TRAIN, *RUN, *extra, f"--run_name={name}"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metadata = tmp_path / "tensorboard_logs" / name / "backup" / "training_metadata.json"
    point = None
    while process.poll() is None:
        try:
            saved = json.loads(metadata.read_text())
        except (OSError, ValueError):
            saved = {}
        if (saved.get("epoch"), saved.get("step", 0) >= step) == (epoch, True) or saved.get("epoch", 0) > epoch:
            process.send_signal(signal.SIGSTOP)
            saved = json.loads(metadata.read_text())
            point = saved["epoch"], saved["step"]
            process.kill()
            break
        time.sleep(0.002)
    process.communicate(timeout=120)
    assert point is not None, "the run ended before it could be killed"
    return point


def tensorboard_epochs(run_dir, tag):
    """The steps (epochs) of the scalar `tag` in a run's TensorBoard logs (train/ or validation/)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    part, name = tag.split("/")
    events = EventAccumulator(str(run_dir / part), size_guidance={"tensors": 0})
    events.Reload()
    return [event.step for event in events.Tensors(name)]


def csv_rows(run_dir):
    lines = (run_dir / "training.csv").read_text().splitlines()
    return [[float(value) for value in line.split(",")] for line in lines[1:]]


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
    if signum == signal.SIGTERM:  # The run wrote a backup at the step it stopped at, and says where.
        stopped = results(tmp_path, "cut")
        assert stopped["status"] == "interrupted" and stopped["exit_code"] == 143
        [where] = stopped["interruptions"]
        # Inside epoch 4, or (on a slow machine, where its first step began after the signal) at its start.
        assert where["epoch"] == 4 and 0 <= where["batch"] < 180 and where["signal"] == "SIGTERM"
    resumed = run(tmp_path, "cut")
    assert "Resuming the interrupted run" in resumed.stdout
    if signum == signal.SIGTERM:  # With no save frequency asked for.
        inside = f", after batch {where['batch']} of 180" if where["batch"] else ""
        assert f"Resuming the interrupted run in tensorboard_logs/cut at epoch 4{inside}\n" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 4/6" in resumed.stdout
    record = results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == expected["final"]
    assert record["best"] == expected["best"]
    log = (tmp_path / "tensorboard_logs" / "cut" / "training.csv").read_text().splitlines()
    # The epoch cut short is in no log: each epoch appears once.
    assert [row.split(",")[0] for row in log[1:]] == ["0", "1", "2", "3", "4", "5"]
    assert record["interruptions"] == ([where] if signum == signal.SIGTERM else [
        {"epoch": 4, "batch": 0, "signal": None}])  # kill -9: from the backup of epoch 3's end


SIGTERM_AT = """
import os, signal
import keras

class SigtermAt(keras.callbacks.Callback):
    # SIGTERM_AT=epoch:batch (0-based): the process is sent SIGTERM after that batch, as a scheduler would.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if os.environ.get("SIGTERM_AT") == f"{self.epoch}:{batch}":
            os.kill(os.getpid(), signal.SIGTERM)
"""


def test_sigterm_inside_an_epoch_with_no_save_frequency_backs_up_there_and_the_rerun_continues_from_that_step(
        tmp_path):
    (tmp_path / "sigterm_at.py").write_text(SIGTERM_AT)
    plugin = ("--callbacks=sigterm_at.py:SigtermAt", "--epochs=4")  # one step per call: the plugin has a batch hook
    run(tmp_path, "whole", *plugin)
    stopped = subprocess.run([sys.executable, TRAIN, *RUN, *plugin, "--run_name=cut"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env={**os.environ, "SIGTERM_AT": "2:96"})
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert "stopped by SIGTERM" in stopped.stderr
    assert results(tmp_path, "cut")["interruptions"] == [{"epoch": 3, "batch": 97, "signal": "SIGTERM"}]
    resumed = run(tmp_path, "cut", *plugin)
    assert "Resuming the interrupted run in tensorboard_logs/cut at epoch 3, after batch 97 of 180" in resumed.stdout
    expected, record = results(tmp_path, "whole"), results(tmp_path, "cut")
    assert record["status"] == "completed" and record["final"] == pytest.approx(expected["final"], rel=1e-6)
    rows, expected_rows = (csv_rows(tmp_path / "tensorboard_logs" / name) for name in ("cut", "whole"))
    assert [row[0] for row in rows] == [0, 1, 2, 3]
    for row, expected_row in zip(rows, expected_rows):
        assert row == pytest.approx(expected_row, rel=1e-6)


# A backup every 10 of the epoch's 180 batches (batches of 8 of 1,437 digits), and TensorBoard's epoch scalars.
EVERY_10 = ("--backup_and_restore_save_freq=10", "--tensorboard=True")


@pytest.fixture(scope="module")
def uninterrupted_every_10(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole-every-10")
    run(folder, "whole", *EVERY_10)
    return folder / "tensorboard_logs" / "whole"


# Where in epoch 3 the run is killed: drawn from the seed, away from the epoch's edges.
POSITIONS = sorted(random.Random(7).sample(range(10, 130, 10), 2))


@pytest.mark.parametrize("position", POSITIONS)
def test_a_run_killed_inside_an_epoch_resumes_at_its_last_backup_and_ends_on_the_uninterrupted_runs_metrics(
        tmp_path, uninterrupted_every_10, position):
    whole = uninterrupted_every_10
    epoch, step = kill_inside(tmp_path, "cut", 2, position, *EVERY_10)
    assert epoch == 2 and position <= step < 180
    resumed = run(tmp_path, "cut", *EVERY_10)
    assert f"Resuming the interrupted run in tensorboard_logs/cut at epoch 3, after batch {step} of 180" in resumed.stdout
    assert "Epoch 2/6" not in resumed.stdout and "Epoch 3/6" in resumed.stdout
    cut = tmp_path / "tensorboard_logs" / "cut"
    expected, record = results(whole.parent.parent, "whole"), results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == pytest.approx(expected["final"], rel=1e-6)
    assert record["best"]["epoch"] == expected["best"]["epoch"]
    assert record["interruptions"] == [{"epoch": 3, "batch": step, "signal": None}]
    # Epoch 3's accuracy and loss are those of the whole epoch, not of its last part: Keras's means went on.
    rows, expected_rows = csv_rows(cut), csv_rows(whole)
    assert [row[0] for row in rows] == [0, 1, 2, 3, 4, 5]
    for row, expected_row in zip(rows, expected_rows):
        assert row == pytest.approx(expected_row, rel=1e-6)
    for tag in ("train/epoch_loss", "validation/epoch_accuracy"):
        assert tensorboard_epochs(cut, tag) == [0, 1, 2, 3, 4, 5]


# On JAX, with a backup every 20 of the epoch's 360 batches of 4.
ON_JAX = ("--backend=jax", "--batch_size=4", "--backup_and_restore_save_freq=20")


@pytest.fixture(scope="module")
def uninterrupted_on_jax(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole-jax")
    run(folder, "whole", *ON_JAX)
    return results(folder, "whole")


def test_on_jax_a_run_killed_inside_an_epoch_resumes_to_the_uninterrupted_runs_metrics(tmp_path, uninterrupted_on_jax):
    # The same run on JAX (NumPy batches, JAX's Dropout generator, Keras's state held apart from the model during
    # an epoch): equally exact.
    expected = uninterrupted_on_jax
    assert expected["epochs_completed"] == 6 and expected["hparams"]["backend"] == "jax"
    epoch, step = kill_inside(tmp_path, "cut", 3, 100, *ON_JAX)
    assert epoch == 3 and step >= 100
    resumed = run(tmp_path, "cut", *ON_JAX)
    assert f"in tensorboard_logs/cut at epoch 4, after batch {step} of 360" in resumed.stdout
    assert "Epoch 4/6" in resumed.stdout
    record = results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == expected["final"] and record["best"] == expected["best"]


def test_a_run_on_a_streamed_image_folder_killed_inside_an_epoch_ends_on_the_uninterrupted_runs_metrics(tmp_path):
    write_images(tmp_path / "pictures", {"circle": 80, "square": 80, "star": 80}, size=(9, 9))
    images = ("--dataset=images:pictures", "--dataset_cache=none", "--dataset_image_size=8,8",
              "--validation_split=0.25", "--batch_size=2", "--backup_and_restore_save_freq=5")
    run(tmp_path, "whole", *images)
    epoch, step = kill_inside(tmp_path, "cut", 2, 30, *images)
    assert epoch == 2 and step >= 30
    resumed = run(tmp_path, "cut", *images)
    assert f"at epoch 3, after batch {step} of 90" in resumed.stdout and "Epoch 1/6" not in resumed.stdout
    expected, record = results(tmp_path, "whole"), results(tmp_path, "cut")
    assert record["epochs_completed"] == expected["epochs_completed"] == 6
    assert record["final"] == expected["final"] and record["best"] == expected["best"]


def test_a_backup_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
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


def test_a_second_sigterm_while_the_stop_backup_is_written_leaves_a_whole_backup_a_resume_continues_from(
        tmp_path, monkeypatch):
    import signal as signals

    import keras
    import numpy as np

    from kerasrun.callbacks.subclasses.backup_and_restore import BackupAndRestore
    from kerasrun.runner.interrupts import GracefulStop
    from kerasrun.runner.resume import STATE_FILE, EpochLog, callback_state_keeper, resume_point

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).random((16, 4)), np.arange(16) % 2
    backup = BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    keeper = callback_state_keeper([backup], EpochLog())
    stop = GracefulStop()
    previous = signals.getsignal(signals.SIGTERM)
    stop.install()
    try:
        class SigtermAtBatch3(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == 3:
                    os.kill(os.getpid(), signals.SIGTERM)  # the first: stop at the next step, with a backup

        original = model.save_weights

        def save_with_a_second_sigterm(filepath, overwrite=True):
            with open(filepath, "wb") as stream:
                stream.write(b"half a file")
            os.kill(os.getpid(), signals.SIGTERM)  # the second, halfway through the backup
            original(filepath, overwrite=overwrite)

        monkeypatch.setattr(model, "save_weights", save_with_a_second_sigterm)
        from kerasrun.runner.interrupts import StopRequested

        with pytest.raises(StopRequested):
            model.fit(x, y, batch_size=2, epochs=2, verbose=0,
                      callbacks=[SigtermAtBatch3(), stop.callback(EpochLog(), keeper.save_before_stop), backup,
                                 keeper])
    finally:
        signals.signal(signals.SIGTERM, previous)
    assert stop.received == signals.SIGTERM and not stop.forced
    # Stopped before batch 3 of the first epoch (three done): the backup says so, and loads.
    assert resume_point(backup.backup_dir) == (0, 3)
    assert sorted(os.listdir(backup.backup_dir)) == ["latest.weights.h5", STATE_FILE, "training_metadata.json"]
    restored = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    restored.compile("adam", "sparse_categorical_crossentropy")
    restored.load_weights(os.path.join(backup.backup_dir, "latest.weights.h5"))
    for loaded, saved in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


def test_a_resumed_csv_log_drops_the_rows_written_after_the_backup_it_resumes_from(tmp_path):
    """kill -9 between epoch 3's row and its backup: the resumed run writes epoch 3 again, once."""
    import keras

    from kerasrun.callbacks.csv_logger import FAMILY

    log = tmp_path / "training.csv"
    log.write_text("epoch,loss\n0,0.9\n1,0.7\n2,0.5\n3,0.4\n")
    logger = keras.callbacks.CSVLogger(str(log), append=True)
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.on_train_begin()
    FAMILY.on_resume(logger, 3)  # the backup was made after epochs 0, 1 and 2
    logger.on_epoch_end(3, {"loss": 0.375})
    logger.on_train_end()
    lines = log.read_text().splitlines()
    assert lines[:4] == ["epoch,loss", "0,0.9", "1,0.7", "2,0.5"] and len(lines) == 5
    assert lines[4].startswith("3,0.375")
