"""The optuna family: a run reports to a trial of an Optuna study, may be pruned, and tells the study its end."""

import json
import math
import os
import re
import sqlite3
import textwrap

import optuna
import pytest

from conftest import REPO
from kerasrun.cli.config import resolve, saved_config
from kerasrun.core import files
from kerasrun.core.errors import PRUNED_EXIT_CODE
from kerasrun.runner import results, trial as trial_telling
from kerasrun.runner.run_paths import CONFIG_FILE, RESULTS_FILE, RunPaths, experiment_identity, find_resumable
from test_run_outputs import write_npz_with_test

optuna.logging.set_verbosity(optuna.logging.WARNING)
State = optuna.trial.TrialState


def make_study(tmp_path, direction, earlier=()):
    """Returns (storage URL, study) of a new study in tmp_path/sweep.db holding the `earlier` COMPLETE trials."""
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction=direction)
    for values in earlier:
        study.add_trial(optuna.trial.create_trial(state=State.COMPLETE, value=values[-1],
                                                  intermediate_values=dict(enumerate(values))))
    return url, study


def trial_flags(url, number, *more):
    return ["--optuna", "True", "--optuna_storage", url, "--optuna_study", "s", "--optuna_trial", str(number), *more]


def only_run_dir(tmp_path):
    (run_dir,) = (tmp_path / "tensorboard_logs").iterdir()
    return run_dir


def test_a_trial_gets_every_epoch_and_ends_complete_with_the_best_value(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    url, study = make_study(tmp_path, "maximize")
    running = study.ask()
    # The monitor left empty is early stopping's, as for the results' `best`.
    done = train("--dataset", "npz:data.npz", "--epochs", "3", "--early_stopping", "True",
                 "--early_stopping_monitor", "val_accuracy", "--early_stopping_patience", "5",
                 *trial_flags(url, running.number))
    assert done.returncode == 0, done.stderr
    record = json.loads((only_run_dir(tmp_path) / RESULTS_FILE).read_text())
    assert record["status"] == "completed" and record["best"]["monitor"] == "val_accuracy"
    # Bookkeeping: neither in the run's name nor saved where a password could be read.
    assert "optuna" not in record["run_name"] and "sweep.db" not in (only_run_dir(tmp_path) / CONFIG_FILE).read_text()
    told = study.trials[running.number]
    history = [float(line.split("val_accuracy: ")[1].split()[0]) for line in done.stdout.splitlines()
               if " - val_accuracy: " in line]
    assert told.state == State.COMPLETE
    assert [told.intermediate_values[step] for step in range(3)] == pytest.approx(history, abs=1e-4)
    assert told.value == max(told.intermediate_values.values()) == record["best"]["value"]
    attrs = told.user_attrs
    assert (attrs["run_dir"], attrs["run_name"], attrs["status"]) == (record["run_dir"], record["run_name"], "completed")
    assert (attrs["epochs_completed"], attrs["final"], attrs["exit_code"]) == (3, record["final"], 0)
    assert attrs["test"] == record["test"] and set(record["test"]) == {"loss", "accuracy"}
    with sqlite3.connect(tmp_path / "sweep.db") as database:  # The run's heartbeat, which the sweep watches.
        (beats,) = database.execute("SELECT COUNT(*) FROM trial_heartbeats WHERE trial_id = ?",
                                    (running._trial_id,)).fetchone()
    assert beats == 1


def test_a_poor_trial_is_pruned_and_ends_like_an_early_stop_with_exit_4(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    # An earlier trial whose val_loss no real run comes near: the median pruner stops this one at once.
    url, study = make_study(tmp_path, "minimize", earlier=[[1e-4] * 4])
    running = study.ask()
    done = train("--dataset", "npz:data.npz", "--epochs", "4", "--results_file", "all.jsonl",
                 *trial_flags(url, running.number, "--optuna_monitor", "val_loss", "--optuna_pruner", "median",
                              "--optuna_pruner_startup_trials", "1"))
    assert done.returncode == PRUNED_EXIT_CODE == 4, done.stderr
    run_dir = only_run_dir(tmp_path)
    record = json.loads((run_dir / RESULTS_FILE).read_text())
    assert (record["status"], record["exit_code"], record["epochs_completed"]) == ("pruned", 4, 1)
    assert record["message"].startswith("stopped: pruned by the study's median pruner at epoch 1: val_loss ")
    assert "Pruned by the study's median pruner at epoch 1: val_loss " in done.stdout
    assert done.stderr.strip().splitlines()[-1] == f"train.py: {record['message']}"
    # Saved and scored as after an early stop, and recorded in the results file.
    assert (run_dir / "model.keras").is_file() and record["model_file"] and record["test"] is not None
    assert json.loads((tmp_path / "all.jsonl").read_text())["status"] == "pruned"
    told = study.trials[running.number]
    assert told.state == State.PRUNED and list(told.intermediate_values) == [0]
    assert told.value == told.intermediate_values[0] == record["final"]["val_loss"]
    assert (told.user_attrs["status"], told.user_attrs["exit_code"]) == ("pruned", 4)


def test_a_run_that_fails_before_training_fails_its_trial(train, tmp_path):
    (tmp_path / "broken.py").write_text(textwrap.dedent("""
        def load():
            raise RuntimeError("no data server")
    """))
    url, study = make_study(tmp_path, "maximize")
    running = study.ask()
    done = train("--dataset", "broken:load", *trial_flags(url, running.number))
    assert done.returncode == 1, done.stderr
    record = json.loads((only_run_dir(tmp_path) / RESULTS_FILE).read_text())
    told = study.trials[running.number]
    assert told.state == State.FAIL and record["status"] == "failed"
    assert (told.user_attrs["status"], told.user_attrs["epochs_completed"]) == ("failed", 0)
    assert "no data server" in told.user_attrs["message"]


@pytest.fixture
def study_file(tmp_path):
    """A study with trial 0 COMPLETE and trial 1 RUNNING, in a file outside the run's directory."""
    url, study = make_study(tmp_path, "maximize", earlier=[[0.5]])
    study.ask()
    return url


@pytest.mark.parametrize("flags, env, words", [
    (["--optuna", "True", "--optuna_storage", "{url}", "--optuna_trial", "1"], {},
     "--optuna_study: is required with --optuna True"),
    (["--optuna", "True", "--optuna_storage", "{url}", "--optuna_study", "s"], {}, "--optuna_trial: is required"),
    (trial_flags("{url}", 7), {}, "--optuna_trial=7: study 's' has no trial 7 (it has 2)"),
    (trial_flags("{url}", 0), {}, "--optuna_trial=0: trial 0 of study 's' is COMPLETE: a run reports only to a "
                                  "RUNNING trial"),
    (["--optuna", "True", "--optuna_storage", "{url}", "--optuna_study", "t", "--optuna_trial", "1"], {},
     "--optuna_study=t: no such study in sqlite:///"),
    (trial_flags("sqlite:///{tmp}/absent.db", 1), {}, "absent.db: the sweep creates it"),
    (trial_flags("postgresql://u:hidden@127.0.0.1:1/db", 1), {},
     "--optuna_storage=postgresql://u:***@127.0.0.1:1/db: cannot be opened after 3 attempts"),
    (trial_flags("{url}", 1, "--distribution_strategy", "multi_worker_mirrored"),
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["localhost:2222"]}, "task": {"type": "worker", "index": 0}})},
     "--distribution_strategy=multi_worker_mirrored: multi_worker_mirrored cannot run with --optuna True: only one "
     "process may report to a trial"),
    (trial_flags("{url}", 1, "--optuna_monitor", "test_accuracy"), {}, "--optuna_monitor=test_accuracy: "),
], ids=["no study", "no trial", "unknown trial", "trial not running", "unknown study", "no database file",
        "unreachable server", "multi worker", "test monitor"])
def test_a_trial_that_cannot_be_reported_to_is_refused_before_anything_is_written(
        train, tmp_path, study_file, flags, env, words):
    done = train(*[flag.format(url=study_file, tmp=tmp_path) for flag in flags], env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("train.py: error: ") and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "hidden" not in done.stderr
    assert not (tmp_path / "tensorboard_logs").exists() and not (tmp_path / "absent.db").exists()


def test_dry_run_checks_the_trial_and_shows_the_callback_without_the_storage(train, tmp_path, study_file):
    done = train("--dry_run", *trial_flags(study_file, 1, "--optuna_pruner", "median"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"optuna\.OptunaTrial\(storage=<secret>, study='s', trial=1, monitor='', pruner='median'",
                     done.stdout)
    assert "sweep.db" not in done.stdout
    assert not (tmp_path / "tensorboard_logs").exists()


def test_the_optuna_flags_are_bookkeeping_so_a_retried_trial_resumes_the_run_it_retries(tmp_path):
    plain = resolve(["train.py", "--epochs", "3", "--backup_and_restore", "True"])
    retried = resolve(["train.py", "--epochs", "3", "--backup_and_restore", "True", "--optuna", "True",
                       "--optuna_storage", "sqlite:///x.db", "--optuna_study", "s", "--optuna_trial", "9",
                       "--optuna_monitor", "val_loss", "--optuna_pruner", "hyperband",
                       "--optuna_pruner_warmup_epochs", "2"])
    identity = experiment_identity(saved_config(retried))
    assert identity == experiment_identity(saved_config(plain))
    assert not any(key.startswith("optuna") for key in identity)
    # The interrupted run's directory is found; a pruned run's is finished, never resumed.
    run = RunPaths(str(tmp_path), "run")
    os.makedirs(run.path("backup"))
    open(run.path("backup", "state"), "w").close()
    files.write_atomically(run.path(CONFIG_FILE), json.dumps(saved_config(plain)))
    for status, found in (("interrupted", True), ("pruned", False)):
        files.write_atomically(run.path(RESULTS_FILE), json.dumps({"status": status}))
        assert (find_resumable(str(tmp_path), identity) is not None) == found, status


def test_each_end_of_a_run_tells_the_trial_its_state_and_value():
    history, epochs = {"val_loss": [0.5, 0.3, float("nan"), 0.4]}, [1, 2, 3, 4]
    assert trial_telling.outcome("completed", history, epochs, "val_loss", "min") == (
        "COMPLETE", 0.3, "completed", None)
    assert trial_telling.outcome("early_stopped", history, epochs, "val_loss", "max")[:2] == ("COMPLETE", 0.5)
    state, value, status, message = trial_telling.outcome("completed", history, epochs, "val_accuracy", "max")
    assert (state, value, status) == ("FAIL", None, "failed") and "val_accuracy" in message
    assert trial_telling.outcome("pruned", history, epochs, "val_loss", "min") == ("PRUNED", None, "pruned", None)
    for status in ("nan", "failed"):
        assert trial_telling.outcome(status, history, epochs, "val_loss", "min") == ("FAIL", None, status, None)
    assert set(results.EXIT_CODES) == {"completed", "early_stopped", "pruned", "nan", "failed", "interrupted"}


def test_the_callback_reports_each_step_once_skips_non_numbers_and_survives_a_failing_storage(tmp_path, capsys):
    from kerasrun.callbacks.subclasses.optuna import OptunaTrial

    url, study = make_study(tmp_path, "minimize")
    running = study.ask()
    running.report(0.9, step=0)  # Inherited from the run a retried trial resumes.
    callback = OptunaTrial(url, "s", running.number, monitor="val_loss")
    callback.on_train_begin()
    try:
        for epoch, value in enumerate([0.7, math.nan, 0.4]):
            callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": value})
        assert study.trials[running.number].intermediate_values == {0: 0.9, 2: 0.4}

        def down(*args, **kwargs):
            raise ConnectionError("server closed the connection")

        callback._trial.report = down
        for epoch in (3, 4):
            callback.on_epoch_end(epoch, {"val_loss": 0.1})
    finally:
        callback.close()
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and "cannot report epoch 4 to trial 0: ConnectionError" in warnings[0]
    assert callback.pruned_epoch is None and callback._heartbeat is None


def test_readme_documents_every_exit_status():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as stream:
        table = stream.read().split("## Errors and exit codes", 1)[1]
    for code in set(results.EXIT_CODES.values()):
        assert f"\n| {code} | " in table, code
