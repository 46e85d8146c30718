"""scripts/sweep.py on Optuna with the real train.py: search, pruning, resume after a kill, a PostgreSQL study.

Each trial trains the bundled data for a few epochs; the trials of one test
run two at a time. Checks that need no training (the search space refused,
the seed's repeatable sequence) use the stand-in train.py of test_scripts.py.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from test_scripts import FAKE_TRAIN

SWEEP = os.path.join(REPO, "scripts", "sweep.py")
SUMMARIZE = os.path.join(REPO, "scripts", "summarize.py")


def load(url, name):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def finished_count(url, name):
    """How many trials of the study count as finished; 0 before the sweep has created it."""
    try:
        return len(counted(load(url, name).get_trials()))
    except KeyError:  # The database is there, the study not yet.
        return 0


def counted(trials):
    """The trials that count towards --trials: ended on their own (a failure too), and no other stands in for."""
    gone = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    gone |= {trial.user_attrs["retries"] for trial in trials if "retries" in trial.user_attrs}
    return [trial for trial in trials if trial.number not in gone and (
        trial.state.name in ("COMPLETE", "PRUNED")
        or (trial.state.name == "FAIL" and trial.user_attrs.get("status") in ("nan", "failed")))]


def started_numbers(*outputs):
    """The trial numbers the sweeps' outputs say they started."""
    return [int(line.split()[2]) for output in outputs for line in output.splitlines()
            if line.startswith("sweep.py: trial ") and " started" in line]


def wait_for(condition, what, process, timeout=180):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def train_pids(study_name):
    """The pids of the train.py processes running trials of `study_name` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                words = stream.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if f"--optuna_study={study_name}" in words and any(word.endswith("train.py") for word in words):
            pids.append(int(entry))
    return pids


# END-TO-END: a TPE search of 8 trials with a median pruner; kill -9 of one trial's train.py (queued again, it
# resumes its run from its backup), SIGTERM to the sweep halfway, the same command again, then the study's plots.
def test_a_tpe_search_prunes_resumes_after_a_kill_and_finishes_exactly_its_trials(tmp_path):
    command = [
        sys.executable, SWEEP, "--search", "tpe", "--trials", "8", "--seed", "4", "--parallel", "2",
        "--metric", "val_accuracy", "--pruner", "median", "--pruner_startup_trials", "1",
        # A learning rate of 1e-7 learns nothing: those trials are plainly worse and must be pruned. With
        # seed 4 the first three trials learn (TPE draws its first ten at random, from the seed), so a
        # poor one is always compared with trials that learnt.
        "--space", "learning_rate=choice:0.005,1e-7", "--space", "mlp_units=int:16:64:log",
        "--", "--epochs", "3", "--verbose", "2", "--backup_and_restore", "True", "--seed", "1",
    ]
    url = f"sqlite:///{tmp_path / 'sweep.db'}"

    def a_trial_in_its_second_epoch():
        """(pid, run name) of a trial's train.py that has begun epoch 2, so its backup of epoch 1 is written."""
        for pid in train_pids("sweep"):
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                words = stream.read().decode().split("\0")
            number = next(word.split("=", 1)[1] for word in words if word.startswith("--optuna_trial="))
            log = tmp_path / "sweep_logs" / f"{number}.log"
            if log.exists() and "Epoch 2/3" in log.read_text():
                return pid, next(word.split("=", 1)[1] for word in words if word.startswith("--run_name="))
        return None

    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first trials learn for three epochs: one of them is caught in its second.
        wait_for(lambda: a_trial_in_its_second_epoch() is not None, "a trial in its second epoch", first)
        victim, victim_run = a_trial_in_its_second_epoch()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: finished_count(url, "sweep") >= 3, "three finished trials", first)
        first.send_signal(signal.SIGTERM)
        out1, err1 = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, out1 + err1
    assert "stopped by SIGTERM" in err1
    assert "(killed by SIGKILL): interrupted; queued again as trial" in out1
    finished_before = len(counted(load(url, "sweep").get_trials()))
    assert 3 <= finished_before < 8

    second = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out2, err2 = second.communicate(timeout=400)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, out2 + err2
    assert f"resuming study 'sweep' in {url}: {finished_before} of 8 trial(s) finished" in out2

    trials = load(url, "sweep").get_trials()
    done = counted(trials)
    assert len(done) == 8
    # No trial ran twice: each number started once over both sweeps, and each run directory holds one trial.
    numbers = started_numbers(out1, out2)
    assert len(numbers) == len(set(numbers)), numbers
    run_names = [trial.user_attrs["run_name"] for trial in done]
    assert len(run_names) == len(set(run_names))
    # The killed trial was queued again and its retry continued the same run directory from its backup.
    (resumed,) = [trial for trial in done if trial.user_attrs["run_name"] == victim_run]
    assert resumed.system_attrs.get("failed_trial") is not None
    results = json.loads((tmp_path / "tensorboard_logs" / victim_run / "results.json").read_text())
    assert results["run_dir"].endswith(victim_run) and results["status"] in ("completed", "pruned")
    assert not (tmp_path / "tensorboard_logs" / f"{victim_run}-2").exists()
    logs = "".join(log.read_text() for log in (tmp_path / "sweep_logs").iterdir())
    assert f"Resuming the interrupted run in tensorboard_logs/{victim_run}" in logs
    # Pruned: the bad learning rate stopped early, recorded as such by the run and by the study.
    pruned = [trial for trial in done if trial.state.name == "PRUNED"]
    poor = [trial for trial in done if trial.params["learning_rate"] == "1e-7"]
    assert poor and all(trial.state.name == "PRUNED" for trial in poor), [(t.params, t.state.name) for t in done]
    stopped_at = []
    for trial in pruned:
        record = json.loads((tmp_path / "tensorboard_logs" / trial.user_attrs["run_name"] / "results.json").read_text())
        assert (record["status"], record["exit_code"]) == ("pruned", 4)
        stopped_at.append(record["epochs_completed"])
        assert (tmp_path / "tensorboard_logs" / trial.user_attrs["run_name"] / "model.keras").exists()
    assert min(stopped_at) < 3  # Pruned before its last epoch.
    complete = [trial for trial in done if trial.state.name == "COMPLETE"]
    assert complete
    for trial in complete:
        record = json.loads((tmp_path / "tensorboard_logs" / trial.user_attrs["run_name"] / "results.json").read_text())
        # Reported after every epoch; the trial's value is the best of them, the last one the run's final.
        steps = trial.intermediate_values
        assert sorted(steps) == list(range(record["epochs_completed"]))
        assert steps[max(steps)] == pytest.approx(record["final"]["val_accuracy"])
        assert trial.value == max(steps.values())
        assert record["hparams"]["learning_rate"] == float(trial.params["learning_rate"])
    assert "8 of 8 trial(s) finished in study 'sweep'" in out2

    # The same command once more: nothing left to run.
    third = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and " started" not in third.stdout, third.stdout
    assert len(counted(load(url, "sweep").get_trials())) == 8

    # Which good trials the median pruner stops depends on the order the two workers report in, so the
    # importance plot (it needs two complete trials) is drawn only when there are two; test_summarize_study
    # draws it on a fixed study.
    kinds = ("importance", "history") if len(complete) >= 2 else ("history",)
    plots = subprocess.run([sys.executable, SUMMARIZE, "--storage", url, "--study", "sweep", "--plot",
                            ",".join(kinds), "--plot_dir", str(tmp_path / "plots")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert plots.returncode == 0, plots.stderr
    for kind in kinds:
        image = (tmp_path / "plots" / f"sweep-{kind}.png").read_bytes()
        assert image.startswith(b"\x89PNG") and len(image) > 5000


# END-TO-END: two sweep processes share one study on a real PostgreSQL server, as two machines would.
def test_two_sweeps_on_one_postgresql_study_share_its_trials(tmp_path, postgres_server):
    command = [sys.executable, SWEEP, "--search", "random", "--trials", "4", "--storage", postgres_server,
               "--study", "two-machines", "--space", "learning_rate=loguniform:1e-3:1e-1",
               "--", "--epochs", "1", "--verbose", "0"]
    workers = [subprocess.Popen(command, cwd=tmp_path / folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
               for folder in ("a", "b") if (tmp_path / folder).mkdir() or True]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, out + err
        outputs.append(out)
    trials = load(postgres_server, "two-machines").get_trials()
    assert [trial.state.name for trial in counted(trials)] == ["COMPLETE"] * 4
    numbers = started_numbers(*outputs)
    assert sorted(numbers) == sorted(set(numbers)) and len(numbers) == 4, outputs
    # Each machine wrote its own runs; between them, one per trial.
    runs = sorted(os.listdir(tmp_path / "a" / "tensorboard_logs") + os.listdir(tmp_path / "b" / "tensorboard_logs"))
    assert runs == sorted(f"two-machines-{number}" for number in numbers)


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAIN)
    return shlex.join([sys.executable, str(path)])


def test_the_seed_repeats_the_sequence_of_trials(tmp_path, fake):
    drawn = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        result = subprocess.run(
            [sys.executable, SWEEP, "--train_command", fake, "--search", "random", "--trials", "3", "--seed", "7",
             "--space", "score=uniform:0:1", "--space", "tag=choice:a,b,c"],
            cwd=tmp_path / folder, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        drawn.append([(trial.params["score"], trial.params["tag"])
                      for trial in load(f"sqlite:///{tmp_path / folder / 'sweep.db'}", "sweep").get_trials()])
    assert drawn[0] == drawn[1] and len(set(drawn[0])) == 3
    # Extended, or run by a second process, the study draws on from another seed: no trial is drawn again.
    more = subprocess.run(
        [sys.executable, SWEEP, "--train_command", fake, "--search", "random", "--trials", "6", "--seed", "7",
         "--space", "score=uniform:0:1", "--space", "tag=choice:a,b,c"],
        cwd=tmp_path / "one", capture_output=True, text=True, timeout=60)
    assert more.returncode == 0, more.stderr
    assert "--seed 7: the study's sweep process 2 draws from seed 8" in more.stdout
    scores = [trial.params["score"] for trial in load(f"sqlite:///{tmp_path / 'one' / 'sweep.db'}", "sweep").get_trials()]
    assert len(scores) == 6 and len(set(scores)) == 6


def test_failed_trials_count_until_retry_failed_queues_them_again(tmp_path, fake):
    command = [sys.executable, SWEEP, "--train_command", fake, "--grid", "code=0,3", "--grid", "tag=x,y"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 1
    assert "the same command with --retry_failed runs it again" in first.stderr
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and " started" not in again.stdout  # Finished, failures included.
    fixed = subprocess.run([*command, "--retry_failed"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "FAKE_CODE": "0"})
    assert fixed.returncode == 0, fixed.stderr
    assert "--retry_failed: 2 failed trial(s) queued again" in fixed.stdout
    trials = load(f"sqlite:///{tmp_path / 'sweep.db'}", "sweep").get_trials()
    assert [trial.state.name for trial in counted(trials)] == ["COMPLETE"] * 4
    # Each copy runs under its failed trial's run name.
    copies = trials[4:]
    assert [trial.user_attrs["run_name"] for trial in copies] == ["sweep-2", "sweep-3"]
    assert "4 of 4 trial(s) finished in study 'sweep' (4 complete, 0 pruned, 0 failed)" in fixed.stdout


@pytest.mark.parametrize("args, message", [
    (["--space", "learning_rat=loguniform:1e-4:1e-1", "--trials", "2"],
     "--space=learning_rat=loguniform:1e-4:1e-1: train.py has no flag --learning_rat; did you mean learning_rate?"),
    (["--space", "learning_rate=loguniform:1e-1:1e-4", "--trials", "2"],
     "--space=learning_rate=loguniform:1e-1:1e-4: low is above high"),
    (["--space", "learning_rate=lognormal:1e-4:1e-1", "--trials", "2"],
     "--space=learning_rate=lognormal:1e-4:1e-1: 'lognormal' is not a distribution; use one of choice, uniform, "
     "loguniform, int (did you mean loguniform?)"),
    (["--space", "mlp_dropout=uniform:0:1", "--trials", "2"],
     "--space=mlp_dropout=uniform:0:1: train.py refuses --mlp_dropout=1.0: must be at least 0 and below 1"),
    (["--space", "mlp_units=uniform:32:512", "--trials", "2"],
     "--space=mlp_units=uniform:32:512: --mlp_units does not take a number of any size; use int:32:512"),
    (["--space", "mlp_units=int:32:512"], "--trials is required with --search tpe"),
    (["--space", "mlp_units=int:32:512", "--trials", "2", "--metric", "val_acuracy"],
     "--metric=val_acuracy: 'val_acuracy' will never be logged"),
    (["--space", "mlp_units=int:32:512", "--trials", "2", "--metric", "test_accuracy"],
     "--metric=test_accuracy: 'test_accuracy': the test split is evaluated once, after training, and never guides it"),
    (["--search", "grid", "--space", "mlp_dropout=uniform:0:0.5"],
     "--search=grid: --space=mlp_dropout=uniform:0:0.5 is a range; a grid needs its values listed"),
    (["--grid", "mlp_units=16,32", "--trials", "3"], "--trials=3: the grid has only 2 combination(s)"),
    (["--space", "mlp_units=int:32:512", "--trials", "2", "--", "--optuna_pruner", "median"],
     "--optuna_pruner after --: the sweep sets --optuna_pruner itself, through the study"),
    (["--space", "mlp_units=int:32:512", "--trials", "2", "--storage", "postgresql://u@127.0.0.1:1/db"],
     "--storage=postgresql://u@127.0.0.1:1/db: cannot be opened after 3 attempts: connection failed"),
    (["--space", "mlp_units=int:32:512", "--trials", "2", "--storage", "nonsense"],
     "--storage=nonsense: not a database URL"),
    (["--space_file", "missing.yaml", "--trials", "2"], "--space_file=missing.yaml: cannot read the file"),
    (["--grid", "mlp_units=16", "--study", "a/b"], "--study=a/b: names each trial's run a/b-<trial>, which "
                                                  "train.py refuses: --run_name=a/b-0: must be a plain directory name"),
    (["--grid", "mlp_units=16", "--storage", "sqlite://"], "--storage=sqlite://: an in-memory database ends with"),
    (["--grid", "mlp_units=16", "--storage", "postgres://u:pw@h/db"],
     "--storage=postgres://u:***@h/db: write postgresql://, the name SQLAlchemy knows"),
    (["--grid", "mlp_units=16", "--storage", "sqlite:////no/such/folder/s.db"],
     "--storage=sqlite:////no/such/folder/s.db: the folder /no/such/folder does not exist"),
])
def test_a_bad_search_is_refused_before_any_trial_naming_the_entry(tmp_path, args, message):
    result = subprocess.run([sys.executable, SWEEP, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"sweep.py: error: {message}"), line
    assert os.listdir(tmp_path) == []


def test_a_space_file_holds_the_same_entries(tmp_path):
    (tmp_path / "space.yaml").write_text("learning_rate: loguniform:1e-4:1e-1\nbatch_size: [16, 32]\n"
                                         "mlp_units: int:16:64:log\n")
    result = subprocess.run([sys.executable, SWEEP, "--space_file", "space.yaml", "--trials", "4", "--dry_run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "learning_rate: loguniform:0.0001:0.1", "batch_size: choice:16,32", "mlp_units: int:16:64:log",
        "tpe search, 4 trial(s), objective: val_loss (minimize), pruner: none"]
    (tmp_path / "space.yaml").write_text("learning_rate: [0.1, 0.1]\n")
    result = subprocess.run([sys.executable, SWEEP, "--space_file", "space.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "sweep.py: error: space.yaml: learning_rate: value '0.1' is listed twice\n"


def test_a_rerun_with_another_search_is_refused_naming_the_study(tmp_path, fake):
    base = [sys.executable, SWEEP, "--train_command", fake, "--grid", "score=1,2"]
    assert subprocess.run(base, cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
    result = subprocess.run([*base, "--", "--x=1"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("sweep.py: error: --study=sweep: the study in sqlite:///")
    assert "was started by another sweep (its train.py flags after -- was none, here --x=1)" in result.stderr


def test_a_crash_fails_for_good_and_a_run_killed_again_and_again_is_queued_only_so_often(tmp_path, fake):
    result = subprocess.run(
        [sys.executable, SWEEP, "--train_command", fake, "--grid", "die=SIGSEGV,SIGKILL,none", "--results_file", "r.jsonl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    trials = load(f"sqlite:///{tmp_path / 'sweep.db'}", "r").get_trials()
    by_die = {}
    for trial in trials:
        by_die.setdefault(trial.params["die"], []).append(trial)
    # A crash is the run's own failure: once, counted, not queued again.
    (crashed,) = by_die["SIGSEGV"]
    assert (crashed.state.name, crashed.user_attrs["status"]) == ("FAIL", "failed")
    assert crashed.user_attrs["message"] == "the run ended (killed by SIGSEGV) without ending its trial in the study"
    # kill -9 is a stop: queued again, three times, then it fails for good.
    killed = by_die["SIGKILL"]
    assert [trial.user_attrs["status"] for trial in killed] == ["interrupted"] * 3 + ["failed"]
    assert killed[-1].user_attrs["message"] == "stopped 4 times (killed by SIGKILL the last); not queued again"
    assert {trial.user_attrs["run_name"] for trial in killed} == {f"r-{killed[0].number}"}
    assert [trial.state.name for trial in by_die["none"]] == ["COMPLETE"]
    assert "3 of 3 trial(s) finished in study 'r' (1 complete, 0 pruned, 2 failed)" in result.stdout


def test_two_sweeps_creating_one_study_at_once_run_each_combination_once(tmp_path, fake):
    command = [sys.executable, SWEEP, "--train_command", fake, "--grid", "tag=a,b,c,d", "--grid", "score=1,2",
               "--", "--sleep=0.2"]
    sweeps = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outputs = [sweep.communicate(timeout=120) for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    trials = load(f"sqlite:///{tmp_path / 'sweep.db'}", "sweep").get_trials()
    assert [trial.state.name for trial in trials] == ["COMPLETE"] * 8
    # Queued once, in the listed order, and shared between the two.
    assert [(trial.params["tag"], trial.params["score"]) for trial in trials] == [
        (tag, score) for tag in "abcd" for score in "12"]
    numbers = started_numbers(*(out for out, _ in outputs))
    assert sorted(numbers) == list(range(8))


@pytest.mark.parametrize("pruner, passed, absent", [
    ("hyperband", ["--optuna_pruner=hyperband", "--optuna_pruner_warmup_epochs=1"], "--optuna_pruner_startup_trials"),
    ("median", ["--optuna_pruner=median", "--optuna_pruner_startup_trials=2", "--optuna_pruner_warmup_epochs=1"],
     None),
    ("none", ["--optuna_pruner=none"], "--optuna_pruner_warmup_epochs"),
])
def test_each_trial_gets_the_study_and_the_options_of_its_pruner(tmp_path, fake, pruner, passed, absent):
    result = subprocess.run(
        [sys.executable, SWEEP, "--train_command", fake, "--grid", "score=1", "--pruner", pruner,
         "--pruner_startup_trials", "2", "--pruner_warmup_epochs", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "sweep.jsonl").read_text().splitlines()]
    argv = record["argv"]
    assert argv[-len(passed) - 5:-len(passed)] == [
        "--optuna=True", f"--optuna_storage=sqlite:///{tmp_path / 'sweep.db'}", "--optuna_study=sweep",
        "--optuna_trial=0", "--optuna_monitor="]
    assert argv[-len(passed):] == passed
    assert absent is None or not any(word.startswith(absent) for word in argv)
    import optuna

    from kerasrun.core.study import make_pruner

    built = {"hyperband": optuna.pruners.HyperbandPruner, "median": optuna.pruners.MedianPruner,
             "none": optuna.pruners.NopPruner}[pruner]
    assert isinstance(make_pruner(pruner, 2, 1), built)
