"""summarize.py on a sweep's Optuna study (--storage, --study, --plot), run as a user runs it.

The studies are built here with optuna, holding what sweep.py stores in one: the
`kerasrun` study attribute, train.py flags as parameters, and each run's report as
trial attributes.
"""

import json
import os
import subprocess
import sys
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from conftest import REPO, postgres

SUMMARIZE = os.path.join(REPO, "scripts", "summarize.py")
SPACE = {"learning_rate": FloatDistribution(1e-4, 1e-1, log=True), "batch_size": CategoricalDistribution(["16", "64"])}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def build_study(storage, name="lr-search", trials=None, direction="maximize", metric="val_accuracy"):
    """Creates a study as sweep.py leaves it; `trials` is a list of keyword dicts for `add`."""
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    study.set_user_attr("kerasrun", {
        "search": "tpe", "metric": metric, "direction": direction,
        "space": {"learning_rate": "1e-4:1e-1:log", "batch_size": "16,64"}, "train_flags": ["--epochs", "5"]})
    for trial in TRIALS if trials is None else trials:
        add(study, **trial)
    return study


def add(study, state, learning_rate, batch_size, value=None, status=None, epochs=0, steps=None, test=None,
        retry_of=None):
    number = len(study.trials)
    attrs = {"run_name": f"run-{number}", "run_dir": f"tensorboard_logs/run-{number}", "epochs_completed": epochs,
             "final": {} if value is None else {"val_accuracy": value, "loss": round(1 - value, 3)}, "test": test}
    if status:
        attrs["status"] = status
    study.add_trial(create_trial(
        state=state, value=value, params={"learning_rate": learning_rate, "batch_size": batch_size},
        distributions=SPACE, user_attrs=attrs, intermediate_values=steps or {},
        system_attrs={} if retry_of is None else {"failed_trial": retry_of}))


TRIALS = [
    dict(state=TrialState.COMPLETE, learning_rate=0.0123456789, batch_size="16", value=0.90, status="completed",
         epochs=5, steps={0: 0.8, 4: 0.9}, test={"accuracy": 0.88, "loss": 0.3}),
    dict(state=TrialState.COMPLETE, learning_rate=0.001, batch_size="64", value=0.95, status="early_stopped",
         epochs=3, test={"accuracy": 0.93, "loss": 0.2}),
    dict(state=TrialState.PRUNED, learning_rate=0.05, batch_size="16", status="pruned", epochs=3,
         steps={0: 0.5, 1: 0.6, 2: 0.55}),
    dict(state=TrialState.FAIL, learning_rate=0.02, batch_size="64", status="failed"),
    dict(state=TrialState.FAIL, learning_rate=0.003, batch_size="16", status="interrupted", epochs=1),
    dict(state=TrialState.COMPLETE, learning_rate=0.003, batch_size="16", value=0.92, status="completed", epochs=5,
         retry_of=4),
    dict(state=TrialState.RUNNING, learning_rate=0.0005, batch_size="64"),
]


def summarize(*args, cwd):
    """Runs `python scripts/summarize.py ARGS` in `cwd`; returns the CompletedProcess."""
    return subprocess.run([sys.executable, SUMMARIZE, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def table(stdout):
    """Returns the title, the header and the rows (lists of words) of a table."""
    title, header, rule, *rows = stdout.splitlines()
    assert set(rule) <= {"-", " "}
    return title, header.split(), [row.split() for row in rows]


@pytest.fixture
def sqlite_study(tmp_path):
    build_study(f"sqlite:///{tmp_path / 'sweep.db'}")
    return "sqlite:///sweep.db"  # Relative to tmp_path, where summarize.py runs, as sweep.py's default is.


def test_the_table_ranks_complete_trials_then_shows_the_others_in_trial_order(tmp_path, sqlite_study):
    result = summarize("--storage", sqlite_study, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    title, header, rows = table(result.stdout)
    assert title == ("study lr-search (tpe search): 6 trial(s) (1 failed and retried, shown as their retry), "
                     "ranked by val_accuracy (higher is better)")
    assert header == ["rank", "trial", "run_name", "status", "epochs_completed", "val_accuracy", "wall_time_s",
                      "test_accuracy", "learning_rate", "batch_size"]
    assert [row[:6] + row[7:] for row in rows] == [
        ["1", "1", "run-1", "early_stopped", "3", "0.95", "0.93", "0.001", "64"],
        ["2", "5", "run-5", "completed", "5", "0.92", "-", "0.003", "16"],
        ["3", "0", "run-0", "completed", "5", "0.9", "0.88", "0.01235", "16"],  # A sampled float, to 4 digits.
        ["-", "2", "run-2", "pruned", "3", "0.6", "-", "0.05", "16"],  # Its best epoch before it was pruned.
        ["-", "3", "run-3", "failed", "0", "-", "-", "0.02", "64"],
        ["-", "6", "run-6", "running", "0", "-", "-", "0.0005", "64"],  # No status reported yet: the trial's state.
    ]


def test_json_top_and_columns(tmp_path, sqlite_study):
    result = summarize("--storage", sqlite_study, "--study", "lr-search", "--format", "json", "--top", "2",
                       "--columns", "loss,learning_rate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    for row in rows:
        assert isinstance(row.pop("wall_time_s"), float)
    assert rows == [
        {"rank": 1, "trial": 1, "run_name": "run-1", "status": "early_stopped", "epochs_completed": 3,
         "val_accuracy": 0.95, "loss": 0.05, "learning_rate": 0.001},
        {"rank": 2, "trial": 5, "run_name": "run-5", "status": "completed", "epochs_completed": 5,
         "val_accuracy": 0.92, "loss": 0.08, "learning_rate": 0.003},
    ]


def test_a_minimized_objective_ranks_lowest_first_and_study_is_needed_among_several(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    build_study(url, name="loss-search", direction="minimize", metric="val_loss", trials=[
        dict(state=TrialState.COMPLETE, learning_rate=0.01, batch_size="16", value=0.4, status="completed"),
        dict(state=TrialState.COMPLETE, learning_rate=0.001, batch_size="16", value=0.2, status="completed")])
    build_study(url, name="another", trials=[])
    result = summarize("--storage", url, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("summarize.py: error: --study: the storage holds 2 studies; name one: another, "
                             "loss-search\n")
    result = summarize("--storage", url, "--study", "loss-search", "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split(",")[:6] for line in result.stdout.splitlines()] == [
        ["rank", "trial", "run_name", "status", "epochs_completed", "val_loss"],
        ["1", "1", "run-1", "completed", "0", "0.2"],
        ["2", "0", "run-0", "completed", "0", "0.4"]]


def is_png(path):
    with open(path, "rb") as stream:
        return stream.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000


def test_plots_are_written_as_png_files(tmp_path, sqlite_study):
    result = summarize("--storage", sqlite_study, "--plot", "importance", "--plot", "history,parallel,slice",
                       "--plot_dir", "plots", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    kinds = ("importance", "history", "parallel", "slice")
    assert result.stdout.splitlines() == [os.path.join("plots", f"lr-search-{kind}.png") for kind in kinds]
    for kind in kinds:
        assert is_png(tmp_path / "plots" / f"lr-search-{kind}.png"), kind


SAME_PARAMS = [dict(state=TrialState.COMPLETE, learning_rate=0.01, batch_size="16", value=value, status="completed")
               for value in (0.8, 0.9)]


@pytest.mark.parametrize("trials, problem", [
    (TRIALS[:1] + TRIALS[2:4], "needs at least 2 complete trials; the study has 1"),
    (SAME_PARAMS, "needs a parameter that varies between the complete trials (batch_size, learning_rate do not)"),
])
def test_a_plot_that_cannot_be_drawn_is_refused(tmp_path, trials, problem):
    build_study(f"sqlite:///{tmp_path / 'sweep.db'}", trials=trials)
    result = summarize("--storage", "sqlite:///sweep.db", "--plot", "history,importance", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"summarize.py: error: --plot importance: cannot draw it: {problem}\n"
    assert not any(name.endswith(".png") for name in os.listdir(tmp_path))  # Refused before any is drawn.


@pytest.mark.parametrize("args, message", [
    (["--storage", "sqlite:///missing.db"], "--storage=sqlite:///missing.db: no such file missing.db"),
    (["--storage", "sweep.db"], "--storage=sweep.db: not a database URL"),
    (["--storage", "sqlite:///sweep.jsonl"], "--storage=sqlite:///sweep.jsonl: cannot read it: file is not a "
                                             "database"),
    (["--storage", "sqlite:///sweep.db", "--study", "lr"], "--study=lr: no such study; the storage holds: "
                                                           "lr-search"),
    (["sweep.jsonl", "--plot", "history"], "--plot: needs --storage"),
    (["sweep.jsonl", "--storage", "sqlite:///sweep.db"], "--storage: reads a study instead of results files"),
    (["--storage", "sqlite:///sweep.db", "--plot", "contour"], "--plot=contour: unknown plot 'contour'"),
    (["--storage", "sqlite:///sweep.db", "--metric", "loss"], "--metric=loss: a study ranks by its objective, "
                                                              "val_accuracy"),
])
def test_bad_options_exit_2_with_one_line_naming_the_option(tmp_path, sqlite_study, args, message):
    (tmp_path / "sweep.jsonl").write_text('{"run_name": "x"}\n')
    result = summarize(*args, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"summarize.py: error: {message}"), line
    assert not (tmp_path / "missing.db").exists()  # A storage is read, never created.


def test_a_study_on_postgresql_and_an_unreachable_server(tmp_path, postgres_server):
    build_study(postgres_server, name="pg-summarize")
    result = summarize("--storage", postgres_server, "--study", "pg-summarize", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _, _, rows = table(result.stdout)
    assert [row[1] for row in rows] == ["1", "5", "0", "2", "3", "6"]
    with postgres() as stopped:
        pass  # Its port is free again: nothing answers there.
    started = time.monotonic()
    result = summarize("--storage", stopped, cwd=tmp_path)
    assert result.returncode == 2 and time.monotonic() - started < 30
    assert result.stderr.startswith(f"summarize.py: error: --storage={stopped}: cannot read it: "), result.stderr


def test_results_files_do_not_import_optuna_or_matplotlib(tmp_path):
    (tmp_path / "sweep.jsonl").write_text(json.dumps({"run_name": "x", "final": {"val_accuracy": 0.5}}) + "\n")
    code = (f"import runpy, sys; sys.argv = [{SUMMARIZE!r}, 'sweep.jsonl']\n"
            f"try:\n    runpy.run_path({SUMMARIZE!r}, run_name='__main__')\n"
            f"except SystemExit as exit:\n    assert exit.code == 0\n"
            f"print(sorted({{'optuna', 'matplotlib', 'sqlalchemy'}} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
