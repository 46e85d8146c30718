"""The sweep helpers in scripts/: sweep.py against a fake train.py, summarize.py on hand-made records.

Every sweep here runs a tiny stand-in for train.py (hidden option
--train_command), so the tests take seconds; one end-to-end test at the end
runs the real train.py.
"""

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TRAIN

SWEEP = os.path.join(REPO, "scripts", "sweep.py")
SUMMARIZE = os.path.join(REPO, "scripts", "summarize.py")

# Stands in for train.py: takes --name=value flags, appends a record (its flags as
# hparams) to --results_file, ends its Optuna trial as train.py does (value --score)
# and exits with --code. --sleep keeps it running; a SIGINT is noted in sigint-<tag>
# and makes it write an interrupted record and exit 130; --die=SIGNAL kills it.
FAKE_TRAIN = r'''
import json, os, signal, sys, time

flags = dict(word[2:].split("=", 1) for word in sys.argv[1:] if word.startswith("--") and "=" in word)
tag = flags.get("tag", "run")
started = time.time()
interrupted = []


def on_sigint(signum, frame):
    with open(f"sigint-{tag}", "a") as stream:
        stream.write("SIGINT\n")
    interrupted.append(signum)


def write(status, code):
    record = {"run_name": flags.get("run_name", tag), "status": status, "exit_code": code,
              "argv": sys.argv[1:], "hparams": flags, "started": started, "ended": time.time()}
    with open(flags["results_file"], "a") as stream:
        stream.write(json.dumps(record) + "\n")


signal.signal(signal.SIGINT, on_sigint)
open(f"ready-{tag}", "w").close()
if flags.get("die", "none") != "none":  # --die=SIGSEGV: the run crashes; --die=SIGKILL: the machine kills it.
    os.kill(os.getpid(), getattr(signal, flags["die"]))
deadline = started + float(os.environ.get("FAKE_SLEEP", flags.get("sleep", "0")))
while time.time() < deadline and not interrupted:
    time.sleep(0.01)
if interrupted:
    time.sleep(0.3)  # Long enough for a second, unwanted SIGINT to show up.
    write("interrupted", 130)
    sys.exit(130)
print(f"fake train.py output of {tag}")
code = int(os.environ.get("FAKE_CODE", flags.get("code", "0")))
write("completed" if code == 0 else "failed", code)
if "optuna_storage" in flags:  # Ends its trial as train.py's optuna callback family does.
    import optuna
    study = optuna.load_study(study_name=flags["optuna_study"], storage=flags["optuna_storage"])
    trial = next(trial for trial in study.get_trials() if trial.number == int(flags["optuna_trial"]))
    study._storage.set_trial_user_attr(trial._trial_id, "status", "completed" if code == 0 else "failed")
    if code == 0:
        study.tell(trial.number, float(flags.get("score", "0")))
    else:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
sys.exit(code)
'''


def load_script(name):
    """Imports scripts/<name>.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", os.path.join(REPO, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sweep_module = load_script("sweep")
summarize_module = load_script("summarize")


@pytest.fixture
def sweep(tmp_path):
    """Runs sweep.py in tmp_path with the fake train.py; returns the CompletedProcess."""
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAIN)
    command = shlex.join([sys.executable, str(fake)])

    def run(*args):
        return subprocess.run([sys.executable, SWEEP, "--train_command", command, *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    return run


def records(path):
    with open(path) as stream:
        return [json.loads(line) for line in stream]


# ---------------------------------------------------------------- sweep.py: the grid


def test_grid_expands_in_order_first_dimension_slowest():
    runs = sweep_module.parse_args(["--grid", "learning_rate=0.1,0.01,0.001", "--grid", "batch_size=16,32"]).grid
    assert [run.flags for run in runs] == [
        [("learning_rate", lr), ("batch_size", bs)]
        for lr in ("0.1", "0.01", "0.001") for bs in ("16", "32")
    ]
    assert [run.index for run in runs] == list(range(6))
    assert runs[1].command == [sys.executable, TRAIN, "--learning_rate=0.1", "--batch_size=32",
                               "--results_file=sweep.jsonl"]


def test_passthrough_flags_name_prefix_and_escaped_commas_reach_the_command():
    runs = sweep_module.parse_args([
        "--grid", r"dataset_image_size=32\,32,64\,64", "--name_prefix", "lr", "--results_file", "r.jsonl",
        "--", "--epochs", "3", "--early_stopping",
    ]).grid
    assert [run.flags[0][1] for run in runs] == ["32,32", "64,64"]
    assert runs[1].command[2:] == ["--epochs", "3", "--early_stopping", "--dataset_image_size=64,64",
                                   "--results_file=r.jsonl"]


def test_count_prints_the_number_of_combinations(sweep, tmp_path):
    result = sweep("--grid", "a=1,2,3", "--grid", "b=x,y", "--count")
    assert (result.returncode, result.stdout, result.stderr) == (0, "6\n", "")
    assert os.listdir(tmp_path) == ["fake_train.py"]


def test_dry_run_prints_every_command_and_runs_nothing(sweep, tmp_path):
    result = sweep("--grid", "a=1,2", "--grid", "b=x y,$(touch pwned);z", "--dry_run", "--", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    assert [command[2:] for command in commands] == [
        ["--epochs", "2", "--a=1", "--b=x y", "--results_file=sweep.jsonl"],
        ["--epochs", "2", "--a=1", "--b=$(touch pwned);z", "--results_file=sweep.jsonl"],
        ["--epochs", "2", "--a=2", "--b=x y", "--results_file=sweep.jsonl"],
        ["--epochs", "2", "--a=2", "--b=$(touch pwned);z", "--results_file=sweep.jsonl"],
    ]
    assert os.listdir(tmp_path) == ["fake_train.py"]


def test_index_runs_only_that_combination(sweep, tmp_path):
    result = sweep("--grid", "tag=a,b", "--grid", "code=0,1", "--index", "2")
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path / "sweep.jsonl")
    assert (record["hparams"]["tag"], record["hparams"]["code"]) == ("b", "0")
    assert "trial 2 started: tag=b code=0" in result.stdout  # Trial i is combination i.
    again = sweep("--grid", "tag=a,b", "--grid", "code=0,1", "--index", "2")  # A task of the array run twice.
    assert again.returncode == 0, again.stderr
    assert "combination 2 (tag=b code=0) is finished as trial 2" in again.stdout
    assert len(records(tmp_path / "sweep.jsonl")) == 1

    dry = sweep("--grid", "tag=a,b", "--grid", "code=0,1", "--index", "1", "--dry_run")
    assert shlex.split(dry.stdout)[2:4] == ["--tag=a", "--code=1"]


# ---------------------------------------------------------------- sweep.py: running


def test_sequential_runs_stream_their_output_and_append_intact_records(sweep, tmp_path):
    result = sweep("--grid", "tag=a,b c,d;$(touch pwned)", "--name_prefix", "P", "--", "--epochs=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("fake train.py output of") == 3  # Streamed, not logged.
    assert not (tmp_path / "sweep_logs").exists() and not (tmp_path / "pwned").exists()
    written = records(tmp_path / "sweep.jsonl")
    assert sorted(record["hparams"]["tag"] for record in written) == ["a", "b c", "d;$(touch pwned)"]
    assert [record["run_name"] for record in written] == ["P-0", "P-1", "P-2"]
    assert all(record["hparams"]["epochs"] == "2" for record in written)
    assert all(record["hparams"]["optuna_trial"] == record["run_name"][2:] for record in written)
    assert "3 of 3 trial(s) finished in study 'sweep' (3 complete, 0 pruned, 0 failed)" in result.stdout
    for index in range(3):
        assert f"trial {index} started: " in result.stdout
        assert f"trial {index} ended (exit 0): completed, score 0, " in result.stdout


def test_parallel_runs_at_most_n_at_once_and_log_each_run(sweep, tmp_path):
    result = sweep("--grid", "tag=a,b,c,d", "--parallel", "2", "--results_file", "out.jsonl", "--", "--sleep=0.4")
    assert result.returncode == 0, result.stderr
    written = records(tmp_path / "out.jsonl")
    assert sorted(record["hparams"]["tag"] for record in written) == ["a", "b", "c", "d"]
    # Two overlap, never three.
    moments = sorted([(record["started"], 1) for record in written] + [(record["ended"], -1) for record in written])
    running = [sum(step for _, step in moments[:end]) for end in range(1, len(moments) + 1)]
    assert max(running) == 2
    assert "fake train.py output" not in result.stdout
    logs = [(tmp_path / "sweep_logs" / f"{index}.log").read_text() for index in range(4)]
    assert sorted(log.strip()[-1] for log in logs) == ["a", "b", "c", "d"]
    assert all(log.startswith("fake train.py output of ") for log in logs)


def test_failed_runs_make_exit_status_1_and_are_named(sweep, tmp_path):
    result = sweep("--grid", "code=0,3", "--grid", "tag=x,y", "--parallel", "2")
    assert result.returncode == 1
    assert len(records(tmp_path / "sweep.jsonl")) == 4  # The failures did not stop the others.
    failed = [line for line in result.stderr.splitlines() if line.startswith("sweep.py: trial") and "failed" in line]
    assert len(failed) == 2
    assert sorted(line.split(": ", 2)[2][:12] for line in failed) == ["code=3 tag=x", "code=3 tag=y"]
    assert all(re.match(r"sweep.py: trial \d failed \(exit 3\): code=3 tag=. -- fake train.py output of . "
                        r"\(log: sweep_logs/\d.log\)$", line) for line in failed), failed
    assert "4 of 4 trial(s) finished in study 'sweep' (2 complete, 0 pruned, 2 failed)" in result.stdout


def test_a_command_that_cannot_start_is_a_failed_run(tmp_path):
    result = subprocess.run([sys.executable, SWEEP, "--train_command", str(tmp_path / "missing"), "--grid", "a=1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "trial 0 not started: " in result.stderr and "missing: No such file or directory" in result.stderr
    assert "1 of 1 trial(s) finished in study 'sweep' (0 complete, 0 pruned, 1 failed)" in result.stdout


@pytest.mark.parametrize("args, message", [
    ([], "give what to sweep: --grid NAME=V1,V2,..., --space NAME=DISTRIBUTION:... or --space_file FILE"),
    (["--grid", "learning_rate"], "--grid=learning_rate: expected NAME=V1,V2,..."),
    (["--grid", "learning_rate="], "--grid=learning_rate=: no values"),
    (["--grid", "learning_rate=0.1,,0.2"], "--grid=learning_rate=0.1,,0.2: value 2 is empty"),
    (["--grid", "learning_rate=0.1,0.1"], "value '0.1' is listed twice"),
    (["--grid", "--learning_rate=0.1"], "argument --grid: expected one argument"),
    (["--grid=--learning_rate=0.1"], "'--learning_rate' is not a flag name (write it without dashes)"),
    (["--grid", "a=1", "--grid", "a=2"], "--grid=a=2: a is already a dimension"),
    (["--grid", "a=1", "--epochs", "3"], "unknown option --epochs: train.py's own flags go after --"),
    (["--grid", "a=1,2", "--index", "2"], "--index=2: the grid has 2 combination(s), numbered 0 to 1"),
    (["--grid", "a=1,2", "--index", "-1"], "--index=-1: must be at least 0"),
    (["--grid", "a=1", "--parallel", "0"], "--parallel=0: must be at least 1"),
    (["--grid", "a=1", "--parallel", "two"], "--parallel=two: must be an integer"),
    (["--grid", "a=1", "--", "--a=2"], "--a=2 after --: the sweep sets --a itself"),
    (["--grid", "a=1", "--", "--noa"], "--noa after --: the sweep sets --a itself"),
    (["--grid", "a=1", "--", "--results_file", "x"], "--results_file after --: the sweep sets --results_file"),
    (["--grid", "a=1", "--name_prefix", "P", "--", "--run_name=x"], "the sweep sets --run_name itself"),
    (["--grid", "results_file=a.jsonl,b.jsonl"], "--grid=results_file=a.jsonl,b.jsonl: the sweep sets --results_file "
                                                 "itself, through sweep.py's own --results_file (before --)"),
    (["--grid", "run_name=a,b", "--name_prefix", "P"], "--grid=run_name=a,b: the sweep sets --run_name itself"),
])
def test_usage_errors_are_one_line_naming_the_option_and_exit_2(sweep, tmp_path, args, message):
    result = sweep(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("sweep.py: error: ") and message in line, line
    assert sorted(os.listdir(tmp_path)) == ["fake_train.py"]  # Nothing ran.


@pytest.mark.parametrize("args, message", [
    (["--grid", "learning_rat=0.1,0.01"], "--grid=learning_rat=0.1,0.01: train.py has no flag --learning_rat; "
                                          "did you mean learning_rate?"),
    (["--grid", "learning_rate=0.1,-1"], "run 1 (learning_rate=-1): --learning_rate=-1.0: must be greater than 0"),
    (["--grid", "learning_rate=0.1", "--", "--epochs", "0"], "run 0 (learning_rate=0.1): --epochs=0: must be at least 1"),
    (["--grid", "epochs=1,01"], "--grid=epochs=1,01: '01' is '1' again, as train.py reads them"),
    # One file or folder for all runs: they would overwrite (a backup: restore and delete) one another's.
    (["--grid", "epochs=1,2", "--", "--csv_logger", "True", "--csv_logger_filename", "log.csv"],
     "--csv_logger_filename=log.csv: every run would write there, over the others' files; leave it out (each "
     "run then writes into its own directory) or make it a dimension"),
    (["--grid", "epochs=1,2", "--", "--backup_and_restore", "True", "--backup_and_restore_backup_dir=/tmp/b"],
     "--backup_and_restore_backup_dir=/tmp/b: every run would write there, over the others' files; leave it out "
     "(each run then writes into its own directory) or make it a dimension"),
    (["--grid", "early_stopping=True,true"], "--grid=early_stopping=True,true: 'true' is 'True' again, as train.py reads them"),
    # A train.py flag given without its value would take the next word, the grid's flag: no run would get it.
    (["--grid", "epochs=1,2", "--", "--dataset_label_column"],
     "run 0 (epochs=1): train.py would take --epochs to be '10', not '1': a flag after -- takes it "
     "(one given without its value?)"),
])
def test_train_flags_are_checked_before_any_run_starts(tmp_path, args, message):
    # The real train.py's declarations: a mistake in the last combination stops the sweep before the first.
    result = subprocess.run([sys.executable, SWEEP, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"sweep.py: error: {message}"]
    assert os.listdir(tmp_path) == []


def test_plug_ins_named_by_the_grid_are_imported_and_checked_before_any_run_starts(tmp_path):
    (tmp_path / "nets.py").write_text("def small(input_shape, num_classes):\n    pass\n")
    result = subprocess.run([sys.executable, SWEEP, "--grid", "model=nets:small,nets:large"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "sweep.py: error: run 1 (model=nets:large): --model='nets:large': 'nets' has no attribute 'large'"]
    assert sorted(os.listdir(tmp_path)) == ["nets.py"]


def test_a_run_that_ends_without_ending_its_trial_is_a_failed_trial(tmp_path):
    command = shlex.join([sys.executable, "-c", "pass"])  # exits 0, reports nothing to the study
    result = subprocess.run([sys.executable, SWEEP, "--train_command", command, "--grid", "a=1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "sweep.py: trial 0 failed (exit 0): a=1 -- the run ended (exit 0) without ending its trial in the study",
        "sweep.py: a failed trial counts as finished; once what failed it is fixed, the same command with "
        "--retry_failed runs it again"]
    assert "results in" not in result.stdout  # No run wrote sweep.jsonl.


def signal_two_running_runs(tmp_path, send):
    """Sweeps tag=a,b,c two at once (each run sleeping), calls `send(sweep)` once a and b are up.

    Returns (exit status, stdout, stderr) of the sweep. It runs in a session of
    its own, so that signalling its process group is what a terminal's Ctrl-C does.
    """
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAIN)
    sweeping = subprocess.Popen(
        [sys.executable, SWEEP, "--train_command", shlex.join([sys.executable, str(fake)]),
         "--grid", "tag=a,b,c", "--parallel", "2", "--", "--sleep=30"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.time() + 15
        while not ((tmp_path / "ready-a").exists() and (tmp_path / "ready-b").exists()):
            assert time.time() < deadline and sweeping.poll() is None, "the runs did not start"
            time.sleep(0.02)
        send(sweeping)
        stdout, stderr = sweeping.communicate(timeout=15)
    finally:
        if sweeping.poll() is None:
            sweeping.kill()
            sweeping.communicate()
    return sweeping.returncode, stdout, stderr


@pytest.mark.parametrize("send", [
    lambda sweeping: sweeping.send_signal(signal.SIGINT),       # kill -INT <sweep>
    lambda sweeping: os.killpg(sweeping.pid, signal.SIGINT),    # Ctrl-C in the terminal
], ids=["to the sweep", "to its process group"])
def test_sigint_is_passed_on_once_to_the_running_runs(tmp_path, send):
    status, stdout, stderr = signal_two_running_runs(tmp_path, send)
    assert status == 130, stderr
    # Each running run got exactly one SIGINT, so train.py stops after its step rather than at once.
    assert (tmp_path / "sigint-a").read_text() == "SIGINT\n"
    assert (tmp_path / "sigint-b").read_text() == "SIGINT\n"
    written = records(tmp_path / "sweep.jsonl")
    assert sorted((record["hparams"]["tag"], record["status"]) for record in written) == [
        ("a", "interrupted"), ("b", "interrupted")]
    assert not (tmp_path / "ready-c").exists()
    assert "SIGINT received: passed on to 2 running run(s)" in stderr
    assert "stopped by SIGINT: 2 trial(s) interrupted and queued again; rerun the same command" in stderr
    assert "trial 0 ended (exit 130): interrupted; queued again as trial 3, which runs it again" in stdout

    # The same command again: the interrupted trials run first, in the runs they started (their names), then c.
    again = subprocess.run(
        [sys.executable, SWEEP, "--train_command", shlex.join([sys.executable, str(tmp_path / "fake_train.py")]),
         "--grid", "tag=a,b,c", "--parallel", "2", "--", "--sleep=0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "was started by another sweep (its train.py flags after -- was --sleep=30, " \
        "here --sleep=0)" in again.stderr
    again = subprocess.run(
        [sys.executable, SWEEP, "--train_command", shlex.join([sys.executable, str(tmp_path / "fake_train.py")]),
         "--grid", "tag=a,b,c", "--parallel", "2", "--", "--sleep=30"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "FAKE_SLEEP": "0"})
    assert again.returncode == 0, again.stderr
    assert "resuming study 'sweep' in sqlite:///" in again.stdout and "0 of 3 trial(s) finished, 0 running" in again.stdout
    completed = [record for record in records(tmp_path / "sweep.jsonl") if record["status"] == "completed"]
    assert sorted((record["hparams"]["tag"], record["run_name"]) for record in completed) == [
        ("a", "sweep-0"), ("b", "sweep-1"), ("c", "sweep-2")]
    assert "3 of 3 trial(s) finished in study 'sweep' (3 complete, 0 pruned, 0 failed)" in again.stdout


def test_sigterm_is_passed_on_and_exits_143(tmp_path):
    # The fake run has no SIGTERM handler, so it dies of it (train.py would write its results).
    status, stdout, stderr = signal_two_running_runs(tmp_path, lambda sweeping: sweeping.terminate())
    assert status == 143, stderr
    assert "trial 0 ended (killed by SIGTERM): interrupted; queued again as trial" in stdout
    assert "trial 1 ended (killed by SIGTERM): interrupted; queued again as trial" in stdout
    assert "stopped by SIGTERM" in stderr


# ---------------------------------------------------------------- summarize.py


def record(name, status="completed", final=None, best=None, wall=1.0, run_dir=None, **hparams):
    return {
        "run_name": name, "run_dir": run_dir or f"tensorboard_logs/{name}", "status": status,
        "exit_code": 0 if status == "completed" else 1, "epochs_completed": 5 if final else 0,
        "final": final or {}, "best": best,
        "hparams": {"epochs": 5, "batch_size": 32, "run_name": name, "results_file": "sweep.jsonl", **hparams},
        "wall_time_s": wall,
    }


RECORDS = [
    record("slow", final={"loss": 0.3, "val_loss": 0.35, "val_accuracy": 0.90},
           best={"monitor": "val_loss", "value": 0.33, "epoch": 3}, learning_rate=0.1),
    record("broken", status="failed", learning_rate=10.0),
    record("good", final={"loss": 0.1, "val_loss": 0.20, "val_accuracy": 0.96},
           best={"monitor": "val_loss", "value": 0.18, "epoch": 4}, learning_rate=0.001),
    record("fine", final={"loss": 0.2, "val_loss": 0.25, "val_accuracy": 0.94},
           best={"monitor": "val_loss", "value": 0.25, "epoch": 5}, learning_rate=0.01),
]


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "sweep.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in RECORDS))
    return path


def summarize(capsys, *args):
    """Runs summarize.py's main in-process; returns (status, stdout, stderr)."""
    status = summarize_module.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table(stdout):
    """Returns the table's header and rows as lists of words (the title and rule dropped)."""
    lines = stdout.splitlines()
    assert set(lines[2]) <= {"-", " "}
    return lines[1].split(), [line.split() for line in lines[3:]]


def test_ranks_by_val_accuracy_highest_first_with_failed_runs_last(capsys, results):
    status, stdout, stderr = summarize(capsys, results)
    assert (status, stderr) == (0, "")
    assert stdout.splitlines()[0] == "4 run(s), ranked by val_accuracy (higher is better)"
    header, rows = table(stdout)
    # Only learning_rate differs: epochs, batch_size and the bookkeeping run_name/results_file are left out.
    assert header == ["rank", "run_name", "status", "epochs_completed", "val_accuracy", "wall_time_s",
                      "learning_rate"]
    assert rows == [
        ["1", "good", "completed", "5", "0.96", "1.0", "0.001"],
        ["2", "fine", "completed", "5", "0.94", "1.0", "0.01"],
        ["3", "slow", "completed", "5", "0.9", "1.0", "0.1"],
        ["-", "broken", "failed", "0", "-", "1.0", "10.0"],
    ]


@pytest.mark.parametrize("args, order", [
    (["--metric", "val_loss"], ["good", "fine", "slow"]),                 # auto: a loss falls.
    (["--metric", "val_loss", "--mode", "max"], ["slow", "fine", "good"]),
    (["--metric", "val_accuracy", "--mode", "min"], ["slow", "fine", "good"]),
    (["--metric", "best"], ["good", "fine", "slow"]),                     # auto from best.monitor, val_loss.
])
def test_mode_min_max_and_auto(capsys, results, args, order):
    status, stdout, _ = summarize(capsys, results, *args)
    assert status == 0
    _, rows = table(stdout)
    assert [row[1] for row in rows] == [*order, "broken"]


def test_best_ranks_by_best_value_named_after_its_monitor(capsys, results):
    _, stdout, _ = summarize(capsys, results, "--metric", "best", "--top", "1")
    header, rows = table(stdout)
    assert header[4] == "best_val_loss" and rows == [["1", "good", "completed", "5", "0.18", "1.0", "0.001"]]
    assert "(lower is better)" in stdout


def test_a_test_score_shows_beside_the_validation_metric_it_pairs_with_and_can_rank(capsys, tmp_path):
    tests = {"slow": {"loss": 0.3, "accuracy": 0.8}, "good": {"loss": 0.1, "accuracy": 0.8200000000000001},
             "fine": {"loss": 0.05, "accuracy": 0.83}}
    scored = [{**item, "test": tests[item["run_name"]]} if item["run_name"] in tests else item for item in RECORDS]
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in scored))
    _, stdout, _ = summarize(capsys, path)
    header, rows = table(stdout)
    assert header[4:7] == ["val_accuracy", "wall_time_s", "test_accuracy"]
    assert [row[6] for row in rows] == ["0.82", "0.83", "0.8", "-"]  # good, fine, slow, broken
    _, stdout, _ = summarize(capsys, path, "--metric", "test_loss")
    header, rows = table(stdout)
    assert "ranked by test_loss (lower is better)" in stdout and header[4] == "test_loss"
    assert [row[1] for row in rows] == ["fine", "good", "slow", "broken"]
    status, _, stderr = summarize(capsys, path, "--metric", "test_auc")
    assert status == 2 and "test_accuracy" in stderr and "test_loss" in stderr


def test_auto_mode_follows_keras_and_the_runs_own_direction():
    assert summarize_module.resolve_mode("val_loss", "auto") == "min"
    assert summarize_module.resolve_mode("mean_absolute_error", "auto") == "min"
    assert summarize_module.resolve_mode("val_accuracy", "auto") == "max"
    assert summarize_module.resolve_mode("val_auc", "auto") == "max"
    assert summarize_module.resolve_mode("best", "auto", best={"monitor": "val_accuracy"}) == "max"
    # The run's own decision wins: it ranked its epochs that way.
    assert summarize_module.resolve_mode("best", "auto", best={"monitor": "lr", "mode": "min"}) == "min"
    assert summarize_module.resolve_mode("val_loss", "max") == "max"
    with pytest.raises(summarize_module.UsageError, match="^--mode=auto: cannot tell whether 'my_score'"):
        summarize_module.resolve_mode("my_score", "auto")


def test_columns_names_what_to_show(capsys, results):
    status, stdout, _ = summarize(capsys, results, "--columns", "batch_size,loss", "--top", "2")
    header, rows = table(stdout)
    assert header[-2:] == ["batch_size", "loss"]
    assert rows == [["1", "good", "completed", "5", "0.96", "1.0", "32", "0.1"],
                    ["2", "fine", "completed", "5", "0.94", "1.0", "32", "0.2"]]


def test_csv_and_json_hold_the_raw_values(capsys, results):
    _, stdout, _ = summarize(capsys, results, "--format", "csv", "--metric", "val_loss")
    assert stdout.splitlines() == [
        "rank,run_name,status,epochs_completed,val_loss,wall_time_s,learning_rate",
        "1,good,completed,5,0.2,1.0,0.001",
        "2,fine,completed,5,0.25,1.0,0.01",
        "3,slow,completed,5,0.35,1.0,0.1",
        ",broken,failed,0,,1.0,10.0",
    ]
    _, stdout, _ = summarize(capsys, results, "--format", "json")
    rows = json.loads(stdout)
    assert rows[0] == {"rank": 1, "run_name": "good", "status": "completed", "epochs_completed": 5,
                       "val_accuracy": 0.96, "wall_time_s": 1.0, "learning_rate": 0.001}
    assert rows[-1]["rank"] is None and rows[-1]["val_accuracy"] is None


def test_a_malformed_line_is_skipped_with_a_warning(capsys, results):
    with open(results, "a") as stream:
        stream.write('{"run_name": "cut off while writ\n')
        stream.write("[1, 2]\n")
        stream.write('{"run_name": "odd", "run_dir": ["a", "b"]}\n')
        stream.write('{"run_name": "odd", "best": {"monitor": "loss", "mode": "sideways"}}\n')
        stream.write("[" * 100_000 + "\n")
        stream.write('{"run_name": "odd", "final": {"val_accuracy": 1' + "0" * 400 + '}}\n')
    status, stdout, stderr = summarize(capsys, results)
    assert status == 0
    warnings = stderr.splitlines()
    assert len(warnings) == 6
    assert warnings[0].startswith(f"summarize.py: warning: {results}:5: skipped, not valid JSON")
    assert warnings[1].startswith(f"summarize.py: warning: {results}:9: skipped, not valid JSON (RecursionError")
    assert warnings[2:] == [
        f"summarize.py: warning: {results}:6: skipped, not a JSON object",
        f"summarize.py: warning: {results}:7: skipped, not a results record (run_dir is a list)",
        f"summarize.py: warning: {results}:8: skipped, not a results record (best has no monitor name or no "
        "min/max mode)",
        f"summarize.py: warning: {results}:10: skipped, not a results record (val_accuracy is an integer of 401 "
        "digits)"]
    assert len(table(stdout)[1]) == 4


def test_runs_of_sweeps_in_different_folders_are_different_runs_and_names_print_safely(capsys, tmp_path):
    for folder, accuracy in (("first", 0.5), ("second", 0.7)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "sweep.jsonl").write_text(json.dumps(
            record("run-0\x1b[31m\n", final={"val_accuracy": accuracy}, learning_rate=0.1)) + "\n")
    status, stdout, _ = summarize(capsys, str(tmp_path / "first" / "sweep.jsonl"),
                                  str(tmp_path / "second" / "sweep.jsonl"))
    assert status == 0 and stdout.startswith("2 run(s)")
    assert "run-0\\x1b[31m\\n" in stdout and "\x1b" not in stdout


def test_a_resumed_run_counts_once_by_its_latest_record(capsys, tmp_path):
    path = tmp_path / "r.jsonl"
    first = record("run", status="interrupted", final={"val_accuracy": 0.5}, learning_rate=0.1)
    again = record("run", final={"val_accuracy": 0.9}, learning_rate=0.1)
    other = record("other", final={"val_accuracy": 0.7}, learning_rate=0.2)
    path.write_text("".join(json.dumps(item) + "\n" for item in (first, other, again)))
    _, stdout, _ = summarize(capsys, path)
    assert [row[:3] for row in table(stdout)[1]] == [["1", "run", "completed"], ["2", "other", "completed"]]


def test_nan_ranks_last_and_a_sweep_that_all_failed_still_shows(capsys, tmp_path):
    path = tmp_path / "r.jsonl"
    diverged = record("diverged", status="nan", final={"loss": "nan", "val_accuracy": "nan"}, learning_rate=9.0)
    fine = record("fine", final={"loss": 0.2, "val_accuracy": 0.9}, learning_rate=0.1)
    path.write_text(json.dumps(diverged) + "\n" + json.dumps(fine) + "\n")
    _, stdout, _ = summarize(capsys, path)
    assert [row[:5] for row in table(stdout)[1]] == [["1", "fine", "completed", "5", "0.9"],
                                                     ["-", "diverged", "nan", "5", "nan"]]

    path.write_text("".join(json.dumps(record(name, status="failed")) + "\n" for name in ("x", "y")))
    status, stdout, _ = summarize(capsys, path)
    assert status == 0
    assert [row[:5] for row in table(stdout)[1]] == [["-", "x", "failed", "0", "-"], ["-", "y", "failed", "0", "-"]]


@pytest.mark.parametrize("args, message", [
    (["missing.jsonl"], "missing.jsonl: no such file or directory"),
    (["empty.jsonl"], "empty.jsonl: no usable records"),
    (["sweep.jsonl", "--metric", "val_acc"], "--metric=val_acc: no record logs it; the records have: "
                                             "loss, val_accuracy, val_loss (or best)"),
    (["sweep.jsonl", "--columns", "lr"], "--columns=lr: no record has 'lr'"),
    (["sweep.jsonl", "--top", "0"], "--top=0: must be at least 1"),
    (["sweep.jsonl", "--mode", "up"], "argument --mode: invalid choice: 'up'"),
])
def test_summarize_usage_errors_exit_2_with_one_line(capsys, results, tmp_path, monkeypatch, args, message):
    (tmp_path / "empty.jsonl").write_text("\n")
    monkeypatch.chdir(tmp_path)
    status, stdout, stderr = summarize(capsys, *args)
    assert (status, stdout) == (2, "")
    (line,) = stderr.splitlines()
    assert line.startswith("summarize.py: error: ") and message in line, line


def test_summarize_runs_as_a_script(tmp_path):
    result = subprocess.run([sys.executable, SUMMARIZE, "missing.jsonl"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (2, "summarize.py: error: missing.jsonl: no such file or directory\n")


# ---------------------------------------------------------------- end to end

def test_runs_results_json_files_are_read_as_well_as_results_lines(capsys, tmp_path):
    paths = []
    for item in RECORDS:
        path = tmp_path / item["run_name"] / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(item, indent=2) + "\n")  # as train.py writes it
        paths.append(path)
    status, stdout, stderr = summarize(capsys, *paths, "--metric", "val_loss")
    assert (status, stderr) == (0, "")
    _, rows = table(stdout)
    assert [row[1] for row in rows] == ["good", "fine", "slow", "broken"]


def test_a_regression_sweep_is_ranked_by_its_best_monitored_value_without_a_metric(capsys, tmp_path):
    path = tmp_path / "regression.jsonl"
    path.write_text("".join(json.dumps(record(name, final={"loss": loss, "val_loss": loss, "val_mae": loss / 2},
                                              best={"monitor": "val_loss", "value": loss, "epoch": 5},
                                              learning_rate=rate)) + "\n"
                            for name, loss, rate in (("a", 3.0, 0.1), ("b", 1.0, 0.01))))
    status, stdout, stderr = summarize(capsys, path)
    assert (status, stderr) == (0, "")
    assert stdout.splitlines()[0] == "2 run(s), ranked by best_val_loss (lower is better)"
    assert [row[1] for row in table(stdout)[1]] == ["b", "a"]
