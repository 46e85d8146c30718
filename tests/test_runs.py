"""Runs as a sweep uses them: run directories, config.yaml, results, HParams, exit codes, seeds."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TRAIN, tensorboard_server
from kerasrun.cli.config import resolve, saved_config

LOGS = "tensorboard_logs"


def run_dirs(tmp_path):
    return sorted(os.listdir(tmp_path / LOGS))


def results_of(tmp_path, name):
    with open(tmp_path / LOGS / name / "results.json") as stream:
        return json.load(stream)


def test_runs_started_together_get_their_own_directories_and_intact_result_lines(tmp_path):
    # Same flags, same second: three runs at once, one results file. With the same
    # --seed and --deterministic they must also end on identical metrics.
    command = [sys.executable, TRAIN, "--epochs=2", "--verbose=0", "--seed=3", "--deterministic", "True",
               "--results_file=sweep.jsonl", "--learning_rate=0.002"]
    processes = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    names = run_dirs(tmp_path)
    assert len(names) == 3
    assert all("learning_rate=0.002" in name and "epochs=2" in name for name in names)
    lines = (tmp_path / "sweep.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(record["run_name"] for record in records) == names
    for record in records:
        assert record == results_of(tmp_path, record["run_name"])
        assert record["status"] == "completed" and record["exit_code"] == 0
        assert record["epochs_completed"] == 2
        assert record["best"]["monitor"] == "val_loss" and record["best"]["epoch"] in (1, 2)
        assert record["hparams"]["learning_rate"] == 0.002 and record["wall_time_s"] > 0
    assert records[0]["final"] == records[1]["final"] == records[2]["final"]

    # config.yaml holds every effective value; --config on it resolves to the same experiment.
    first = tmp_path / LOGS / names[0]
    rerun = resolve(["train.py", f"--config={first / 'config.yaml'}"])
    assert saved_config(rerun) == records[0]["hparams"] | {"run_name": names[0]}

    # Rerunning it never overwrites the finished run: the new run says where it went.
    again = subprocess.run([sys.executable, TRAIN, f"--config={first / 'config.yaml'}", "--epochs=1"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"Run directory '{names[0]}' exists already; this run writes to" in again.stdout
    assert results_of(tmp_path, names[0])["epochs_completed"] == 2
    assert f"{names[0]}-2" in run_dirs(tmp_path)

    # TensorBoard's HParams tab, read back from a live server, compares the runs.
    with tensorboard_server(tmp_path / LOGS) as get:
        experiment = get("/data/plugin/hparams/experiment", {"experimentName": ""})
        hparams = {info["name"]: info for info in experiment["hparamInfos"]}
        assert hparams["learning_rate"]["type"] == "DATA_TYPE_FLOAT64"
        assert hparams["epochs"]["differs"] is True  # 2 in three runs, 1 in the rerun
        metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
        assert {"final/val_accuracy", "final/loss"} <= metrics
        groups = get("/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
        sessions = [session for group in groups["sessionGroups"] for session in group["sessions"]]
        assert sorted(session["name"] for session in sessions) == sorted(run_dirs(tmp_path))


def test_a_run_name_cannot_leave_the_logs_root(train, tmp_path):
    result = train("--run_name=../outside")
    assert result.returncode == 2 and "--run_name=../outside" in result.stderr
    assert os.listdir(tmp_path) == []


def start(tmp_path, *args):
    process = subprocess.Popen([sys.executable, TRAIN, *args], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    return process


def wait_for_epoch(process, number):
    """Reads the run's output until epoch `number` has started."""
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if line.startswith(f"Epoch {number}/"):
            return
        assert time.monotonic() < deadline
    pytest.fail("the run ended before epoch %d: %s" % (number, process.stderr.read()[-2000:]))


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_stop_gracefully_record_interrupted_and_the_same_command_resumes(tmp_path, signum, exit_code):
    command = ["--epochs=6", "--batch_size=8", "--verbose=2", "--run_name=long",
               "--backup_and_restore", "True"]
    process = start(tmp_path, *command)
    wait_for_epoch(process, 3)
    process.send_signal(signum)
    output, errors = process.communicate(timeout=120)
    assert process.returncode == exit_code, errors[-2000:]
    assert f"{signal.Signals(signum).name} received" in errors and "Traceback" not in errors
    record = results_of(tmp_path, "long")
    assert record["status"] == "interrupted" and record["exit_code"] == exit_code
    reason = f"stopped by {signal.Signals(signum).name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")
    assert record["message"] == reason and errors.strip().splitlines()[-1] == f"train.py: {reason}"
    stopped_at = record["epochs_completed"]
    assert 2 <= stopped_at < 6
    assert os.listdir(tmp_path / LOGS / "long" / "backup")  # kept for the resume

    resumed = subprocess.run([sys.executable, TRAIN, *command], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming the interrupted run in" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 6/6" in resumed.stdout
    assert run_dirs(tmp_path) == ["long"]
    record = results_of(tmp_path, "long")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert not (tmp_path / LOGS / "long" / "backup").exists()  # deleted once finished


def test_early_stopping_is_a_finish_with_its_own_status(train, tmp_path):
    result = train("--epochs=10", "--verbose=0", "--run_name=early", "--early_stopping", "True",
                   "--early_stopping_monitor=loss", "--early_stopping_min_delta=100")
    assert result.returncode == 0, result.stderr
    record = results_of(tmp_path, "early")
    assert record["status"] == "early_stopped" and record["epochs_completed"] == 2


def test_nan_writes_results_with_status_nan(train, tmp_path):
    import numpy as np

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    x[3, 1] = 3e38  # Finite (infinity is refused before training), but the layer's sums overflow.
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.arange(64) % 2)
    (tmp_path / "linear.py").write_text(
        "import keras\n\n"
        "def build(input_shape, num_classes):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes, activation='softmax')])\n")
    result = train("--dataset=npz:bad.npz", "--model=linear:build", "--epochs=3", "--verbose=0",
                   "--run_name=nan", "--terminate_on_nan")
    assert result.returncode == 3
    record = results_of(tmp_path, "nan")
    assert record["status"] == "nan" and record["exit_code"] == 3 and record["final"]["loss"] in ("nan", "inf")


def test_dry_run_checks_prints_and_writes_nothing(tmp_path):
    code = (
        "import sys, io, contextlib\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "import train\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = train.main(['train.py', '--dry_run', '--reduce_lr', 'True', '--epochs=3', '--tensorboard',\n"
        "                       '--model_checkpoint', '--run_name=planned'])\n"
        "assert code == 0, code\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(out.getvalue())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "epochs: 3" in result.stdout
    assert "keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.1" in result.stdout
    assert "callbacks.subclasses.tensorboard.TensorBoard(log_dir='tensorboard_logs/planned'" in result.stdout
    # The paths the run would give its callbacks, not None.
    assert "ModelCheckpoint(filepath='tensorboard_logs/planned/checkpoints/epoch{epoch:02d}.keras'" in result.stdout
    assert result.stdout.strip().endswith("# Run directory, for a run starting now: tensorboard_logs/planned")
    assert os.listdir(tmp_path) == []
    # A name that is taken: the run would write to the next free one, and the paths say so.
    (tmp_path / "tensorboard_logs" / "planned").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert "TensorBoard(log_dir='tensorboard_logs/planned-2'" in result.stdout
    assert result.stdout.strip().endswith(
        "# Run directory, for a run starting now: tensorboard_logs/planned-2 (planned exists already)")


def test_remote_monitor_headers_are_never_saved_or_printed(tmp_path):
    config = resolve(["train.py", "--remote_monitor", "--remote_monitor_headers=Authorization: Bearer s3cret"])
    assert config.remote_monitor_headers == ("Authorization: Bearer s3cret",)
    assert "remote_monitor_headers" not in saved_config(config)
    from kerasrun.cli.docs import dry_run_text
    from kerasrun.runner.run_paths import planned_run

    assert "s3cret" not in dry_run_text(config, planned_run(config))
    from kerasrun.core.errors import UsageError

    with pytest.raises(UsageError) as caught:
        resolve(["train.py", "--remote_monitor", "--remote_monitor_headers=Bearer s3cret"])
    assert "s3cret" not in str(caught.value)


def test_nan_in_the_data_is_refused_before_training_naming_the_array_and_row(train, tmp_path):
    import numpy as np

    # ReLU hides NaN from the loss (TerminateOnNaN never fires), so it is looked for before training.
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    x[5, 2] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=np.arange(64) % 2)
    result = train("--dataset=npz:nan.npz", "--epochs=2", "--verbose=0", "--run_name=relu")
    assert result.returncode == 2
    assert "x_train holds nan in row 5; inputs must be finite numbers" in result.stderr
    assert not (tmp_path / "tensorboard_logs" / "relu").exists()


def test_weights_holding_nan_under_a_finite_loss_are_caught():
    import types

    import numpy as np

    from kerasrun.runner.fit import non_finite
    from kerasrun.runner.resume import EpochLog

    log = EpochLog()
    log.epochs, log.history = [1, 2], {"loss": [0.7, 0.6]}
    model = types.SimpleNamespace(trainable_weights=[np.ones(3), np.array([[0.5, np.nan]])])
    assert non_finite(log, model).startswith("the weights hold NaN or infinite values: training diverged")
    assert non_finite(log, types.SimpleNamespace(trainable_weights=[np.ones(3)])) is None


def test_a_new_run_refuses_a_backup_another_run_left(train, tmp_path):
    first = train("--epochs=1", "--verbose=0", "--backup_and_restore", "--backup_and_restore_backup_dir=bk",
                  "--backup_and_restore_delete_checkpoint=False")
    assert first.returncode == 0, first.stderr
    second = train("--epochs=1", "--verbose=0", "--learning_rate=0.1", "--backup_and_restore",
                   "--backup_and_restore_backup_dir=bk", "--backup_and_restore_delete_checkpoint=False")
    assert second.returncode == 2
    assert "--backup_and_restore_backup_dir=bk: holds the backup of another run" in second.stderr
    assert len(run_dirs(tmp_path)) == 1
    # A folder of the user's own files is no backup: it is named as what it is.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    third = train("--epochs=1", "--verbose=0", "--backup_and_restore", "--backup_and_restore_backup_dir=mine")
    assert third.returncode == 2 and (tmp_path / "mine" / "notes.txt").exists()
    assert ("--backup_and_restore_backup_dir=mine: holds files of yours (notes.txt), which Keras deletes when "
            "training ends; choose an empty or new directory") in third.stderr


def test_a_named_run_that_got_a_suffix_is_the_one_resumed(tmp_path):
    from kerasrun.runner import results
    from kerasrun.runner.run_paths import RunPaths, experiment_identity, find_resumable

    root = tmp_path / LOGS
    saved = saved_config(resolve(["train.py", "--backup_and_restore", "--run_name=rn"]))
    for name, status in [("rn", "completed"), ("rn-2", None), ("other", None)]:
        paths = RunPaths(str(root), name)
        os.makedirs(paths.path("backup"))
        (root / name / "backup" / "latest.weights.h5").write_text("")
        results.write_config(paths, {**saved, "run_name": name})
        if status:
            (root / name / "results.json").write_text(json.dumps({"status": status}))
    found = find_resumable(str(root), experiment_identity(saved), "rn")
    assert found is not None and found.name == "rn-2"


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path):
    process = start(tmp_path, "--epochs=50", "--batch_size=1", "--verbose=2", "--run_name=twice")
    wait_for_epoch(process, 2)
    process.send_signal(signal.SIGINT)
    time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors[-2000:]
    assert "Traceback" not in errors


def test_a_second_ctrl_c_that_tensorflow_turns_into_an_error_still_ends_as_interrupted(tmp_path, monkeypatch):
    # The second SIGINT may land inside a TensorFlow context manager, which raises a RuntimeError of its own.
    import types

    from kerasrun.datasets import EpochCounter
    from kerasrun.runner import fit
    from kerasrun.runner.interrupts import GracefulStop
    from kerasrun.runner.resume import EpochLog
    from kerasrun.runner.run_paths import RunPaths

    stops = []

    class SecondCtrlC(GracefulStop):
        def install(self):
            stops.append(self)

    def interrupted_twice(*args):
        stops[0].received, stops[0].forced = signal.SIGINT, True  # Both Ctrl-Cs come while training.
        return "failed", "error: training failed: RuntimeError: Exiting device scope without proper scope nesting"

    monkeypatch.setattr(fit, "GracefulStop", SecondCtrlC)
    monkeypatch.setattr(fit, "fit", interrupted_twice)
    monkeypatch.setattr(fit, "set_steps_per_execution", lambda *args: None)  # No model: nothing to set.
    outcome = fit.train(resolve(["train.py", "--csv_logger"]), None, fit.Pipelines(None, None, EpochCounter(), None),
                        RunPaths(str(tmp_path), "run"), False, types.SimpleNamespace(multi_worker=False), EpochLog())
    assert (outcome.status, outcome.exit_code, outcome.message) == ("interrupted", 130, fit.SECOND_CTRL_C)


def test_a_results_line_that_cannot_be_written_fails_the_run_and_results_json_says_why(tmp_path):
    from kerasrun.runner import results
    from kerasrun.runner.fit import summary
    from kerasrun.runner.run_paths import RunPaths

    paths = RunPaths(str(tmp_path), "run")
    os.makedirs(paths.dir)
    record = results.make_record(paths, "completed", 0, {}, [], None, {}, 1.0)
    written = results.write_results(paths, record, str(tmp_path / "gone" / "sweep.jsonl"))
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk == written and (written["status"], written["exit_code"]) == ("failed", 1)
    assert written["message"] == (f"error: --results_file={tmp_path / 'gone' / 'sweep.jsonl'}: cannot be written: "
                                  "No such file or directory")
    assert summary(written, 1.0).splitlines()[1] == "No epoch finished."  # not an empty "Final " line


def test_an_unforeseen_error_is_one_line_and_a_claimed_run_directory_records_it(tmp_path, monkeypatch, capsys):
    from kerasrun.runner import fit

    def surprise(*args, **kwargs):
        raise ValueError("a surprise\nwith a second line")

    monkeypatch.delenv("KERASRUN_TRACEBACK", raising=False)
    monkeypatch.setattr(fit, "build_callbacks", surprise)
    config = resolve(["train.py", f"--tensorboard_log_dir={tmp_path}", "--run_name=run", "--epochs=1"])
    assert fit.run(config) == 1
    line = "error: ValueError: a surprise; set KERASRUN_TRACEBACK=1 for the traceback"
    assert capsys.readouterr().err.splitlines()[-1] == f"train.py: {line}"
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (record["status"], record["exit_code"], record["message"]) == ("failed", 1, line)
    # Before a run directory exists train.py's own net catches it: one line, exit 1, nothing written.
    code = (
        "import sys\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "import train\n"
        "from kerasrun.cli import config\n"
        "def surprise(argv, **options):\n"
        "    raise KeyError('where')\n"
        "config.resolve = surprise\n"
        "sys.exit(train.main(['train.py']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "run", capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stderr) == (
        1, "train.py: error: KeyError: 'where'; set KERASRUN_TRACEBACK=1 for the traceback\n")


def test_a_signal_while_the_callbacks_are_made_is_recorded_and_a_keyboard_interrupt_of_the_users_is_a_failure(
        tmp_path):
    (tmp_path / "slow.py").write_text(
        "import time\n\nimport keras\n\n"
        "class Slow(keras.callbacks.Callback):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        print('constructing', flush=True)\n"
        "        time.sleep(3)\n\n"
        "class Raises(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n"
        "        raise KeyboardInterrupt\n\n"
        "def load():\n"
        "    print('loading', flush=True)\n"
        "    time.sleep(60)\n")
    # Before any run directory exists there is nothing to save: SIGTERM stops at once, in one line, exit 143.
    process = start(tmp_path, "--dataset=slow:load")
    for line in process.stdout:
        if line.startswith("loading"):
            break
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=120)
    assert (process.returncode, errors.strip().splitlines()[-1]) == (143, "train.py: stopped by SIGTERM")
    assert not (tmp_path / LOGS).exists()
    process = start(tmp_path, "--callbacks=slow:Slow", "--run_name=slow")
    for line in process.stdout:
        if line.startswith("constructing"):
            break
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 143, errors[-2000:]
    assert (results_of(tmp_path, "slow")["status"], results_of(tmp_path, "slow")["message"]) == (
        "interrupted", "stopped by SIGTERM")
    result = subprocess.run([sys.executable, TRAIN, "--callbacks=slow:Raises", "--run_name=raises", "--epochs=2"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert results_of(tmp_path, "raises")["message"] == (
        "error: training failed: KeyboardInterrupt raised by a callback or hook")


def test_a_second_ctrl_c_inside_a_garbage_collection_callback_prints_no_traceback():
    import signal as signals
    import sys as system
    import types

    from kerasrun.runner.interrupts import GracefulStop

    previous = (signals.getsignal(signals.SIGINT), signals.getsignal(signals.SIGTERM), system.unraisablehook)
    reported = []
    try:
        system.unraisablehook = lambda unraisable: reported.append(unraisable.exc_type)  # Python's own, say
        GracefulStop().install()

        def unraisable(kind):
            return types.SimpleNamespace(exc_type=kind, exc_value=kind("x"), exc_traceback=None,
                                         err_msg="Exception ignored in", object=None)

        system.unraisablehook(unraisable(KeyboardInterrupt))  # where a second Ctrl-C can land: not reported
        system.unraisablehook(unraisable(ValueError))  # anything else is, as before
        assert reported == [ValueError]
    finally:
        signals.signal(signals.SIGINT, previous[0])
        signals.signal(signals.SIGTERM, previous[1])
        system.unraisablehook = previous[2]
