"""What a sweep adds to each trial: its own machinery, and the study's share of a trial's train.py.

    python benchmarks/sweep_overhead.py [--trials 20] [--postgres URL] [--json OUT.json]

Three figures, for the SQLite file a sweep uses by default and for PostgreSQL
(a server started for the benchmark in a temporary directory when --postgres
is not given and Debian's server binaries are there, as the tests start it):

- sweep.py's start-up: parsing and checking the search against train.py's
  flags, then opening or creating the study, before the first trial starts.
- sweep.py's own time per trial: asking the study for the trial, starting
  its process, noticing its end and reading the trial back, measured as the
  sweep's wall time less its start-up and the time its trials' processes ran
  (each trial here is a stand-in that only opens the study and ends its
  trial, as train.py does at its end).
- What the study costs inside train.py: importing Optuna (in a fresh
  process), opening the storage and loading the trial when the run starts,
  and reporting each epoch's value (with a median pruner's decision) and
  recording a heartbeat, as the `optuna` callback family does, timed in this
  process over many calls.
"""

import argparse
import contextlib
import json
import os
import runpy
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SWEEP = os.path.join(REPO, "scripts", "sweep.py")
runpy.run_path(os.path.join(REPO, "__init__.py"))

from kerasrun.core import study as studies  # noqa: E402

# The stand-in trial: what train.py does with the study when its optuna family is on, less the training.
TRIAL = r"""
import runpy, sys
runpy.run_path(sys.argv[1])
from kerasrun.core import study as studies
flags = dict(word[2:].split("=", 1) for word in sys.argv[2:] if word.startswith("--") and "=" in word)
import optuna
storage = studies.open_storage(flags["optuna_storage"], "optuna_storage")
study = optuna.load_study(study_name=flags["optuna_study"], storage=storage)
trial_id = studies.trial_id(storage, flags["optuna_study"], int(flags["optuna_trial"]))
storage.set_trial_user_attr(trial_id, studies.STATUS_ATTR, "completed")
study.tell(int(flags["optuna_trial"]), float(flags["x"]))
"""


def time_sweep(url, trials, folder):
    """Runs a sweep of `trials` stand-in trials on `url`; returns {startup_s, per_trial_s, trial_process_s}."""
    stub = os.path.join(folder, "trial.py")
    with open(stub, "w") as stream:
        stream.write(TRIAL)
    command = [sys.executable, SWEEP, "--train_command", shlex.join([sys.executable, stub, os.path.join(REPO, "__init__.py")]),
               "--search", "random", "--trials", str(trials), "--space", "x=uniform:0:1", "--storage", url,
               "--study", f"bench-{time.time_ns()}", "--results_file", os.path.join(folder, "sweep.jsonl")]
    started = time.monotonic()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    if result.returncode:
        raise SystemExit(f"the sweep failed: {result.stdout}{result.stderr}")
    lines = result.stdout.splitlines()
    # Each end line gives its trial process's seconds: "... completed, score 0.5, 1.2 s: x=...".
    process_seconds = [float(line.rsplit(", ", 1)[1].split(" s:")[0]) for line in lines if " ended (" in line]
    startup = _startup(command, folder)
    return {"startup_s": startup, "per_trial_s": (wall - startup - sum(process_seconds)) / trials,
            "trial_process_s": statistics.median(process_seconds), "trials": trials}


def _startup(command, folder):
    """The sweep's wall time to its first trial: a sweep of one trial whose command starts nothing."""
    probe = [*command[:3], shlex.join([sys.executable, "-c", "pass"]), *command[4:]]
    probe[probe.index("--trials") + 1] = "1"
    probe[probe.index("--study") + 1] = f"bench-startup-{time.time_ns()}"
    started = time.monotonic()
    result = subprocess.run(probe, cwd=folder, capture_output=True, text=True, timeout=600)
    total = time.monotonic() - started
    ended = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if " ended (" in line]
    trial = float(ended[0].rsplit(", ", 1)[1].split(" s:")[0]) if ended else 0.0
    return total - trial


def time_in_run(url, epochs=200):
    """Times the study's work inside a run: opening it at the start, then each epoch's report."""
    import optuna

    name = f"bench-run-{time.time_ns()}"
    storage = studies.open_storage(url, "storage")
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                pruner=studies.make_pruner("median", 1, 0))
    for value in (0.5, 0.6):  # Two finished trials for the pruner to compare with.
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values={step: value for step in range(epochs)}))
    number = study.ask().number
    started = time.monotonic()
    storage = studies.open_storage(url, "optuna_storage")
    study = optuna.load_study(study_name=name, storage=storage, pruner=studies.make_pruner("median", 1, 0))
    trial_id = studies.trial_id(storage, name, number)
    trial = optuna.trial.Trial(study, trial_id)
    opened = time.monotonic() - started
    report, heartbeat = [], []
    for step in range(epochs):
        started = time.monotonic()
        trial.report(0.55, step)
        trial.should_prune()
        report.append(time.monotonic() - started)
        started = time.monotonic()
        storage.record_heartbeat(trial_id)
        heartbeat.append(time.monotonic() - started)
    return {"open_s": opened, "report_and_prune_s": statistics.median(report),
            "heartbeat_s": statistics.median(heartbeat)}


def time_import(repeats=5):
    """The median seconds a fresh process takes to import Optuna (and SQLAlchemy), which a trial's train.py pays."""
    code = "import time; started = time.perf_counter(); import optuna; print(time.perf_counter() - started)"
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(repeats))


@contextlib.contextmanager
def postgres_url(given):
    if given:
        yield given
        return
    sys.path.insert(0, os.path.join(REPO, "tests"))
    try:
        from conftest import postgres
    except Exception as error:  # pytest or the server binaries missing: the figures are SQLite's alone.
        print(f"no PostgreSQL server ({error}); give --postgres URL for its figures", file=sys.stderr)
        yield None
        return
    with postgres(database="bench") as url:
        yield url


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--postgres", default=None, metavar="URL")
    parser.add_argument("--json", default=None, metavar="OUT.json")
    options = parser.parse_args(argv)
    figures = {}
    with tempfile.TemporaryDirectory() as folder, postgres_url(options.postgres) as pg:
        storages = {"sqlite": f"sqlite:///{os.path.join(folder, 'sweep.db')}", **({"postgresql": pg} if pg else {})}
        for kind, url in storages.items():
            figures[kind] = {**time_sweep(url, options.trials, folder), **time_in_run(url)}
    figures["import_optuna_s"] = time_import()
    print("| storage | sweep start-up | sweep per trial | stand-in trial process | open study in train.py "
          "| report + prune per epoch | heartbeat |")
    print("|---|---|---|---|---|---|---|")
    for kind, values in figures.items():
        if not isinstance(values, dict):
            continue
        print(f"| {kind} | {values['startup_s']:.2f} s | {values['per_trial_s'] * 1000:.0f} ms "
              f"| {values['trial_process_s']:.2f} s | {values['open_s'] * 1000:.0f} ms "
              f"| {values['report_and_prune_s'] * 1000:.1f} ms | {values['heartbeat_s'] * 1000:.1f} ms |")
    print(f"Importing Optuna in a trial's train.py: {figures['import_optuna_s']:.2f} s")
    if options.json:
        with open(options.json, "w") as stream:
            json.dump(figures, stream, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
