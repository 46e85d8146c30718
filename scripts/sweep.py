"""Runs train.py once per trial of a hyperparameter search on Optuna: a grid, random or TPE search.

    python scripts/sweep.py --grid learning_rate=0.1,0.01,0.001 --grid batch_size=16,32 \\
        --parallel 2 -- --epochs 5 --early_stopping True
    python scripts/sweep.py --search tpe --trials 20 --metric val_accuracy --pruner median \\
        --space learning_rate=loguniform:1e-4:1e-1 --space batch_size=choice:16,32,64 -- --epochs 10

What to search, one entry per train.py flag:
    --grid NAME=V1,V2,...            values as typed (a comma inside a value is written `\\,`)
    --space NAME=choice:V1,V2,...    the same
    --space NAME=uniform:LOW:HIGH    a range; loguniform:LOW:HIGH samples it on a log scale
    --space NAME=int:LOW:HIGH[:log]  whole numbers
    --space_file space.yaml          the same as a YAML mapping (a list of values is a choice)
Every name and value is checked against train.py's own flags before any trial starts.

Each trial is an ordinary run of `train.py <the flags after --> --NAME=VALUE ...`: its own
directory (named PREFIX-<trial>), results.json, a line in --results_file and TensorBoard's
HParams tab. The study (Optuna's record of the trials) lives in --storage: by default an
SQLite file, sweep.db, next to the results file; a PostgreSQL URL lets the same command, started
on many machines (or as the tasks of a job array), share one study: each process asks the study
for its next trial, and --trials bounds their total.

The objective is --metric's best value over a trial's epochs (by default the quantity the run
ranks its epochs by: early stopping's or the checkpoint's monitor, else val_loss), in the
direction the runner gives it. With --pruner, each trial reports the metric after every epoch
and stops when the study says it is doing worse than the others: it ends like an early stop,
with status `pruned` and exit status 4, and keeps its run directory.

Rerunning the same command resumes the sweep: finished trials are kept and counted; a trial that
was interrupted (Ctrl-C, SIGTERM, kill -9 of its run) is queued again, up to three times, and
resumes its run from its backup with --backup_and_restore True (else runs again). A failed trial
counts as finished; --retry_failed runs the failed ones again once their cause is fixed. Ctrl-C
(or SIGTERM) is passed on to the running trials, which stop after their current step and write
their results. With --seed, each process on a study draws from a seed of its own (the seed plus
the number of processes before it), so a rerun or a second machine does not repeat its trials.

With --parallel N > 1 a trial's own output goes to sweep_logs/<trial>.log instead of the terminal.

Exit status: 0 when every trial this process ran completed, stopped early or was pruned; 1 when
any failed (each is listed); 2 for a usage error; 130 after Ctrl-C and 143 after SIGTERM.
"""

import argparse
import collections
import contextlib
import fcntl
import itertools
import os
import re
import shlex
import signal
import subprocess
import runpy
import sys
import threading
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "train.py")
runpy.run_path(os.path.join(REPO, "__init__.py"))

from kerasrun.callbacks.builder import enabled_families  # noqa: E402
from kerasrun.callbacks.monitor import compiled_direction, ranked_monitor  # noqa: E402
from kerasrun.cli import search_space  # noqa: E402
from kerasrun.cli.config import Checker, all_options, changed_flags, check_further, resolve  # noqa: E402
from kerasrun.core import study as studies  # noqa: E402
from kerasrun.core.errors import (  # noqa: E402
    RUN_FAILED_EXIT_CODE, SIGNALLED_EXIT_CODES, USAGE_EXIT_CODE, UsageError,
)
from kerasrun.runner.run_paths import RunPaths  # noqa: E402

LOGS_DIR = "sweep_logs"
STORAGE_FILE = "sweep.db"
# The study's count of sweep processes that have run on it (each gets a seed of its own).
PROCESSES_ATTR = "sweep_processes"
SEARCHES = ("grid", "random", "tpe")
# How often finished trials are noticed; short next to any training run.
POLL_SECONDS = 0.05
# How often a sweep with a free slot asks the study again when it had nothing to give
# (the others' trials may end, or come back to the queue).
ASK_AGAIN_SECONDS = 1.0
# A run killed by one of these was stopped (a terminal, a scheduler, kill -9): it is queued again.
_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
_OPTION = re.compile(r"-{1,2}([A-Za-z0-9_]+)(=|\Z)")
# The runs live in their own process group (see _start), so a hang-up of the
# terminal reaches only the sweep; it stops them gracefully as SIGTERM would.
_FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}
# The flags of train.py's `optuna` callback family, which the sweep gives every trial.
STUDY_FLAG_PREFIX = "optuna"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class Run:
    """One combination of a grid.

    Args:
        index: Its 0-based number in the grid (what --index selects).
        flags: (name, value) pairs, one per dimension.
        command: The argv that runs it, without the flags that tie it to the study.
    """

    def __init__(self, index, flags, command):
        self.index = index
        self.flags = flags
        self.command = command

    def describe(self):
        """Returns the run's values as `name=value ...`, quoted like a shell would need."""
        return describe(self.flags)


def describe(flags):
    """Returns (name, value) pairs as `name=value ...`, quoted like a shell would need."""
    return " ".join(shlex.quote(f"{name}={value}") for name, value in flags)


def build_parser():
    """Returns the argument parser (train.py's own flags come after `--` and never reach it)."""
    parser = _Parser(
        prog="sweep.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        usage="%(prog)s (--grid NAME=V1,... | --space NAME=DIST:... | --space_file F) ... [options] [-- TRAIN_FLAGS]",
    )
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="A flag of train.py and the values to try; repeat for more dimensions.")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=DIST:...",
                        help="A flag of train.py and its range: choice:V1,V2,..., uniform:LOW:HIGH, "
                             "loguniform:LOW:HIGH or int:LOW:HIGH[:log]; repeat for more.")
    parser.add_argument("--space_file", default=None, metavar="FILE",
                        help="A YAML file of the same: {flag: spec, or a list of values}.")
    parser.add_argument("--search", default=None, choices=SEARCHES,
                        help="Optuna's GridSampler, RandomSampler or TPESampler. Default: grid when every "
                             "dimension lists its values, else tpe.")
    parser.add_argument("--trials", default=None, metavar="N",
                        help="How many trials the study runs in all (finished ones count; a rerun adds the "
                             "rest). Default for a grid: every combination; required otherwise.")
    parser.add_argument("--metric", default=None, metavar="NAME",
                        help="The logged quantity to optimize, its best epoch per trial (val_accuracy, ...). "
                             "Default: the quantity each run ranks its epochs by (early stopping's monitor, "
                             "else the checkpoint's, else val_loss).")
    parser.add_argument("--pruner", default="none", choices=studies.PRUNERS,
                        help="Stop trials doing worse than the others after an epoch: Optuna's MedianPruner "
                             "or HyperbandPruner. Default: none.")
    parser.add_argument("--pruner_startup_trials", default="5", metavar="N",
                        help="median: trials that run to the end before any is pruned. Default: 5.")
    parser.add_argument("--pruner_warmup_epochs", default="0", metavar="N",
                        help="Epochs a trial runs before it may be pruned (hyperband: its minimum). Default: 0.")
    parser.add_argument("--seed", default=None, metavar="N",
                        help="Seed of the sampler: the same seed gives the same sequence of trials "
                             "(one process, --parallel 1). train.py's own --seed goes after --.")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help=f"The study's database: sqlite:///PATH, postgresql://USER@HOST:PORT/DB, ... "
                             f"Default: {STORAGE_FILE} next to --results_file.")
    parser.add_argument("--study", default=None, metavar="NAME",
                        help="The study's name in the storage; the same name resumes it. "
                             "Default: the results file's name without its extension.")
    parser.add_argument("--retry_failed", action="store_true",
                        help="Queue the study's failed trials again (once what failed them is fixed): they no "
                             "longer count, and their copies run first.")
    parser.add_argument("--parallel", default="1", metavar="N",
                        help="Trials at once in this process; with more than 1, each trial's output goes to "
                             f"{LOGS_DIR}/<trial>.log. Default: 1.")
    parser.add_argument("--results_file", default="sweep.jsonl", metavar="PATH",
                        help="Passed to every run, which appends its results to it. Default: sweep.jsonl.")
    parser.add_argument("--name_prefix", default=None, metavar="P",
                        help="Each trial's run is named P-<trial>. Default: the study's name.")
    parser.add_argument("--index", default=None, metavar="I",
                        help="Run only combination I (0-based) of a grid, e.g. $SLURM_ARRAY_TASK_ID.")
    parser.add_argument("--count", action="store_true",
                        help="Print the number of combinations of a grid (of trials of a search) and exit.")
    parser.add_argument("--dry_run", action="store_true",
                        help="Print what would run and exit without running or storing anything.")
    # A stand-in for train.py (tests use a tiny fake); split like a shell would.
    parser.add_argument("--train_command", default=None, help=argparse.SUPPRESS)
    return parser


def split_passthrough(argv):
    """Splits argv at the first `--` into the sweep's own arguments and train.py's flags."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def read_dimensions(options):
    """Returns the search space's Dimensions from --grid, --space and --space_file, in that order."""
    dimensions = [search_space.parse_grid_entry(spec) for spec in options.grid]
    dimensions += [search_space.parse_space_entry(spec) for spec in options.space]
    if options.space_file is not None:
        dimensions += search_space.read_space_file(options.space_file)
    if not dimensions:
        raise UsageError("give what to sweep: --grid NAME=V1,V2,..., --space NAME=DISTRIBUTION:... "
                         "or --space_file FILE")
    return search_space.combine(dimensions)


def sweeps_own_flags():
    """Returns {train.py flag: the sweep option that sets it} for the flags the sweep gives every trial."""
    owners = {"results_file": "sweep.py's own --results_file (before --)",
              "run_name": "--name_prefix (each trial's run is named PREFIX-<trial>)",
              "mlflow_parent_run_id": "the sweep's own MLflow run (with --mlflow True, each trial's is nested under it)"}
    for name in all_options():
        if name == STUDY_FLAG_PREFIX or name.startswith(STUDY_FLAG_PREFIX + "_"):
            owners[name] = "the study (it ties each trial's run to it)"
    return owners


def check_passthrough(passthrough, dimensions):
    """Refuses train.py flags after `--`, and dimensions, that the sweep sets itself.

    absl lets the last of two values win, so such a flag would silently undo
    the search or scatter the results; better to say so before anything runs.

    Raises:
        UsageError: Naming the flag and the sweep option that sets it.
    """
    owners = sweeps_own_flags()
    for dimension in dimensions:
        if dimension.name in owners:
            raise UsageError(f"{dimension.label}: the sweep sets --{dimension.name} itself, "
                             f"through {owners[dimension.name]}")
    owners.update({dimension.name: dimension.label.partition("=")[0] + f" {dimension.name}=..."
                   for dimension in dimensions})
    for word in passthrough:
        match = _OPTION.match(word)
        if not match:
            continue
        name = match.group(1)
        if name not in owners and name.startswith("no") and name[2:] in owners:
            name = name[2:]  # absl's --noflag form of a boolean.
        if name in owners:
            raise UsageError(f"{word} after --: the sweep sets --{name} itself, through {owners[name]}")


def build_runs(dimensions, train_command, passthrough, results_file, name_prefix=None):
    """Returns one Run per combination of a grid, the first dimension varying slowest."""
    names = [dimension.name for dimension in dimensions]
    runs = []
    for index, values in enumerate(itertools.product(*(dimension.values for dimension in dimensions))):
        flags = list(zip(names, values))
        # The shared flags first: what the sweep sets for each run comes last, and wins.
        command = [*train_command, *passthrough, *(f"--{name}={value}" for name, value in flags)]
        if name_prefix is not None:
            command.append(f"--run_name={name_prefix}-{index}")
        command.append(f"--results_file={results_file}")
        runs.append(Run(index, flags, command))
    return runs


def probe_runs(dimensions, train_command, passthrough, results_file):
    """Returns Runs that stand for a search space with ranges: each dimension at each of its probes, others at their first."""
    first = [(dimension.name, dimension.probes()[0]) for dimension in dimensions]
    runs = [first]
    for position, dimension in enumerate(dimensions):
        for value in dimension.probes()[1:]:
            runs.append([*first[:position], (dimension.name, value), *first[position + 1:]])
    return [Run(index, flags, [*train_command, *passthrough, *(f"--{name}={value}" for name, value in flags),
                               f"--results_file={results_file}"])
            for index, flags in enumerate(runs)]


def check_train_flags(dimensions, runs, command_length, results_file, probed):
    """Checks the dimensions and every run's train.py flags as train.py itself does, before any trial starts.

    Each run must also get the values the sweep gives it: a flag after `--`
    given without its value would take the next word as its own.

    Args:
        dimensions: The search space.
        runs: Every combination of a grid, or the `probe_runs` of a space with ranges.
        command_length: How many words of each run's command start train.py.
        results_file: The file every run appends its results to.
        probed: Whether `runs` are probes (errors then name the dimension, not a run).

    Returns:
        The runs' resolved configs.

    Raises:
        UsageError: Naming a name train.py does not have, or the first run
            whose flags train.py would refuse, and why.
    """
    options = all_options()
    for dimension in dimensions:
        search_space.check_against_flags(dimension, options)
    labels = {dimension.name: dimension.label for dimension in dimensions}
    configs = []
    for run in runs:
        try:
            configs.append(_checked_run(run, command_length, results_file, options))
        except UsageError as error:
            if not probed:
                raise UsageError(f"run {run.index} ({run.describe()}): {error}") from None
            named = [name for name, _ in run.flags if f"--{name}=" in str(error)]
            if not named:  # A flag after --, the same in every trial.
                raise
            raise UsageError(f"{labels[named[0]]}: train.py refuses {error}") from None
    for flag, value in shared_outputs(configs):
        raise UsageError(f"--{flag}={value}: every run would write there, over the others' files; leave it "
                         "out (each run then writes into its own directory) or make it a dimension")
    return configs


def _checked_run(run, command_length, results_file, options):
    """Returns the run's config as train.py resolves it, refused unless it has the values the sweep gives it."""
    config = resolve(["train.py", *run.command[command_length:]])
    check_further(config)
    for name, value in [*run.flags, ("results_file", results_file)]:
        if config[name] != options[name].kind.from_text(value):
            raise UsageError(f"train.py would take --{name} to be {options[name].kind.format(config[name])!r}, "
                             f"not {value!r}: a flag after -- takes it (one given without its value?)")
    return config


def shared_outputs(configs):
    """Yields (flag, value) of each file or folder the runs would all write, given once for all.

    A callback family's path that it puts in the run's own directory when
    left unset (its `in_run_dir`) is an output; set to one value for every
    run, the runs would overwrite (or, for a backup, restore and delete)
    one another's.
    """
    if len(configs) < 2:
        return
    for family in enabled_families(configs[0]):
        values = family.values(configs[0])
        for name in values:
            unset_a, unset_b = _in_two_runs(family, {**values, name: None}, name)
            set_a, set_b = _in_two_runs(family, values, name)
            flag = family.flag_name(name)
            # An output (each run's own when unset), here one path for both runs, and the same in every run.
            if unset_a != unset_b and set_a == set_b and len({config[flag] for config in configs}) == 1:
                yield flag, values[name]


def _in_two_runs(family, values, name):
    """Returns the value of option `name` as two runs in different directories would give their callback."""
    return [family.with_run_paths(values, RunPaths("logs", run))[name] for run in ("a", "b")]


class _MetricChecker(Checker):
    """Train.py's check of a monitored quantity, naming sweep.py's --metric."""

    def fail(self, name, message):
        raise UsageError(f"--metric={self.values['metric']}: {message}")


def objective(metric, config):
    """Returns (the quantity each trial reports, "maximize" or "minimize", its name), by the runner's rule.

    The quantity is "" where each run decides it (val_loss, or loss without validation data).

    Args:
        metric: --metric, or None for the quantity each run ranks its epochs by.
        config: A trial's resolved config.

    Raises:
        UsageError: A metric training will not log, or whose direction Keras cannot tell.
    """
    if metric is None:
        # The runner's rule; with validation data the fallback is val_loss, without it loss: both fall.
        monitor, mode = ranked_monitor(config, {"val_loss"})
        return monitor if (config.early_stopping or config.model_checkpoint) else "", _direction(mode), monitor
    checker = _MetricChecker({**config, "metric": metric}, config.sources, all_options())
    checker.check_log_key("metric", metric)
    mode = compiled_direction(metric, checker.metric_names)
    if mode is None:
        raise UsageError(f"--metric={metric}: Keras cannot tell whether it should fall or rise; "
                         "optimize a loss or a compiled metric")
    return metric, _direction(mode), metric


def _direction(mode):
    return "maximize" if mode == "max" else "minimize"


def _int_option(name, text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name}={text}: must be an integer") from None
    if value < minimum:
        raise UsageError(f"--{name}={text}: must be at least {minimum}")
    return value


class Plan:
    """A sweep as its options describe it, checked: what to search, how, where the study lives."""

    def __init__(self, options, dimensions, passthrough, train_command):
        self.options = options
        self.dimensions = dimensions
        self.passthrough = passthrough
        self.train_command = train_command
        self.search = options.search
        self.trials = options.trials
        self.results_file = options.results_file
        self.study_name = options.study
        self.storage = options.storage
        self.name_prefix = options.name_prefix
        self.monitor, self.direction, self.shown_metric = "", "minimize", "score"
        self.grid = []  # Every combination, when every dimension lists its values.
        self.backup = False  # Whether the runs keep a backup (--backup_and_restore), to resume from.
        self.train_flags = None  # train.py's flags after --, as it reads them: {flag: value}.
        self.chosen = None  # The search the sweep chose for the user, and why (None: --search given).
        self.mlflow = None  # A run's config, when the runs log to MLflow: the sweep nests them under a run of its own.

    def resumes(self):
        """Whether a trial queued again resumes its run (from its backup) rather than starting over."""
        return self.backup

    def is_grid(self):
        return self.search == "grid"

    def definition(self):
        """Returns what a rerun must share with the study's first run to resume it (kept in the study).

        Each part as it acts: train.py's flags as it reads them (`--epochs 1` is
        `--epochs=1`; a secret flag is left out), the metric by name, the
        pruner's options only where the pruner takes them.
        """
        pruner = {"kind": self.options.pruner}
        if self.options.pruner == "median":
            pruner["startup_trials"] = self.options.pruner_startup_trials
        if self.options.pruner != "none":
            pruner["warmup_epochs"] = self.options.pruner_warmup_epochs
        return {
            "search": self.search,
            "space": {dimension.name: dimension.spec() for dimension in self.dimensions},
            "metric": self.shown_metric,
            "direction": self.direction,
            "pruner": pruner,
            "train_flags": self.train_flags if self.train_flags is not None else list(self.passthrough),
        }

    def metric_name(self):
        return self.shown_metric


def parse_args(argv):
    """Returns the checked Plan of the sweep's argv (without the program name).

    Raises:
        UsageError: For every mistake, naming the option and its value.
    """
    own, passthrough = split_passthrough(argv)
    options, unknown = build_parser().parse_known_args(own)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}: train.py's own flags go after --, "
                         f"as in: sweep.py --grid ... -- {unknown[0]}")
    dimensions = read_dimensions(options)
    options.parallel = _int_option("parallel", options.parallel, 1)
    options.pruner_startup_trials = _int_option("pruner_startup_trials", options.pruner_startup_trials, 0)
    options.pruner_warmup_epochs = _int_option("pruner_warmup_epochs", options.pruner_warmup_epochs, 0)
    if options.seed is not None:
        options.seed = _int_option("seed", options.seed, 0)
    if not options.results_file:
        raise UsageError("--results_file='': give the file every run appends its results to")
    for name in ("name_prefix", "study", "storage"):
        if getattr(options, name) is not None and not getattr(options, name):
            raise UsageError(f"--{name}='': give a value, or leave the option out for its default")
    check_passthrough(passthrough, dimensions)
    if options.train_command is None:
        train_command = [sys.executable, TRAIN]
    else:
        train_command = shlex.split(options.train_command)
        if not train_command:
            raise UsageError("--train_command='': give the command that runs train.py")
    plan = Plan(options, dimensions, passthrough, train_command)
    _choose_search(plan)
    if plan.study_name is None:
        plan.study_name = os.path.splitext(os.path.basename(plan.results_file))[0] or "sweep"
    if plan.name_prefix is None:
        plan.name_prefix = plan.study_name
    _check_run_names(plan)
    if plan.storage is None:
        folder = os.path.dirname(os.path.abspath(plan.results_file))
        plan.storage = "sqlite:///" + os.path.join(folder, STORAGE_FILE)
    elif re.fullmatch(r"sqlite(\+\w+)?://(/(:memory:)?)?", plan.storage):
        raise UsageError(f"--storage={plan.storage}: an in-memory database ends with the sweep and its trials' "
                         "runs cannot reach it; name a file, sqlite:///sweep.db")
    if plan.is_grid():
        plan.grid = build_runs(dimensions, train_command, passthrough, plan.results_file)
    _choose_trials(plan)
    if options.index is not None:
        if not plan.is_grid():
            raise UsageError(f"--index={options.index}: selects a combination of a grid; a {plan.search} search "
                             "shares its trials between processes by itself (start the same command in each)")
        index = _int_option("index", options.index, 0)
        if index >= len(plan.grid):
            raise UsageError(f"--index={options.index}: the grid has {len(plan.grid)} combination(s), "
                             f"numbered 0 to {len(plan.grid) - 1}")
        options.index = index
    if options.train_command is None:  # The tests' stand-in for train.py has flags of its own.
        probed = not plan.is_grid()
        runs = probe_runs(dimensions, train_command, passthrough, plan.results_file) if probed else plan.grid
        configs = check_train_flags(dimensions, runs, len(train_command), plan.results_file, probed)
        plan.monitor, plan.direction, plan.shown_metric = objective(options.metric, configs[0])
        plan.backup = configs[0].backup_and_restore
        plan.mlflow = configs[0] if configs[0].mlflow else None
        varied = {dimension.name for dimension in dimensions} | set(sweeps_own_flags())
        plan.train_flags = {name: value for name, value in changed_flags(configs[0]).items() if name not in varied}
    elif options.metric is not None:
        plan.monitor, plan.direction = options.metric, "maximize"  # The stand-in reports a score.
        plan.shown_metric = options.metric
    return plan


def _check_run_names(plan):
    """Refuses a --name_prefix (or --study, its default) that train.py would refuse in a run's name."""
    try:
        resolve(["train.py", f"--run_name={plan.name_prefix}-0"])
    except UsageError as error:
        option = "name_prefix" if plan.options.name_prefix is not None else "study"
        raise UsageError(f"--{option}={getattr(plan.options, option) or plan.study_name}: names each trial's run "
                         f"{plan.name_prefix}-<trial>, which train.py refuses: {error}") from None


def _choose_search(plan):
    lists = all(dimension.is_list() for dimension in plan.dimensions)
    if plan.search is None:
        plan.search = "grid" if lists else "tpe"
        plan.chosen = ("grid: every dimension lists its values" if lists
                       else "tpe: the space has ranges (--search random samples them at random)")
    if plan.search == "grid" and not lists:
        ranged = next(dimension for dimension in plan.dimensions if not dimension.is_list())
        raise UsageError(f"--search=grid: {ranged.label} is a range; a grid needs its values listed "
                         f"(--grid {ranged.name}=V1,V2,... or choice:)")


def _choose_trials(plan):
    if plan.is_grid():
        combinations = len(plan.grid)
        if plan.trials is None:
            plan.trials = combinations
            return
        plan.trials = _int_option("trials", plan.trials, 1)
        if plan.trials > combinations:
            raise UsageError(f"--trials={plan.trials}: the grid has only {combinations} combination(s)")
        return
    if plan.trials is None:
        raise UsageError(f"--trials is required with --search {plan.search}: a search of ranges has no "
                         "natural end; give how many trials to run in all")
    plan.trials = _int_option("trials", plan.trials, 1)


class SharedStudy:
    """The sweep's Optuna study: created on the first run of a sweep, resumed by the same command after.

    Args:
        plan: The checked Plan.

    Raises:
        UsageError: The storage cannot be opened, or the study was started by another sweep.
    """

    def __init__(self, plan):
        import optuna

        self.plan = plan
        self.storage = studies.open_storage(plan.storage, "storage", plan.resumes())
        self.distributions = {dimension.name: _distribution(dimension) for dimension in plan.dimensions}
        pruner = studies.make_pruner(plan.options.pruner, plan.options.pruner_startup_trials,
                                     plan.options.pruner_warmup_epochs)
        with self._creating():  # Two processes starting one new study: one creates it, the other resumes it.
            existing = self._existing_definition()
            self.resumed = existing is not None
            if existing is not None and existing != plan.definition():
                raise UsageError(_different_sweep(plan, existing))
            try:
                self.study = optuna.create_study(
                    study_name=plan.study_name, storage=self.storage, sampler=_sampler(plan), pruner=pruner,
                    direction=plan.direction, load_if_exists=True)
            except ValueError as error:  # The study's directions were set otherwise by someone else.
                raise UsageError(f"--study={plan.study_name}: {error}") from None
            # Each process's sampler draws from its own seed (--seed, +1 for the study's second process, ...):
            # the same seed again would draw the trials the first process drew.
            self.process = self.study.user_attrs.get(PROCESSES_ATTR, 0)
            self.study.set_user_attr(PROCESSES_ATTR, self.process + 1)
            if plan.options.seed is not None:
                self.study.sampler = _sampler(plan, plan.options.seed + self.process)
            if existing is None:
                if self.study.get_trials(deepcopy=False):
                    raise UsageError(f"--study={plan.study_name}: the study in {studies.shown_url(plan.storage)} "
                                     "holds trials of something other than a sweep.py sweep; give another --study")
                self.study.set_user_attr(studies.SWEEP_ATTR, plan.definition())
                if plan.is_grid():
                    # Queued in the order the grid lists them (the first dimension slowest), so trial i is
                    # combination i; GridSampler would draw them in a shuffled order.
                    for run in plan.grid:
                        self.study.enqueue_trial(dict(run.flags))
        self.study_id = self.storage.get_study_id_from_name(plan.study_name)
        self.parent = None  # The sweep's MLflow run (runner/mlflow_parent.py), when its runs log to MLflow.

    @contextlib.contextmanager
    def _creating(self):
        """Holds a lock on the study's creation: a lock on the SQLite file, or PostgreSQL's advisory lock."""
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        url = make_url(self.plan.storage)
        if url.get_backend_name() == "sqlite" and url.database:
            # flock, which SQLite's own (fcntl) locks of the same file do not see.
            with open(url.database, "a") as stream:
                fcntl.flock(stream, fcntl.LOCK_EX)
                yield
        elif url.get_backend_name() == "postgresql":
            key = zlib.crc32(f"kerasrun sweep {self.plan.study_name}".encode()) - 2 ** 31  # A signed bigint.
            with self.storage.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        else:
            yield

    def _existing_definition(self):
        import optuna

        try:
            study_id = self.storage.get_study_id_from_name(self.plan.study_name)
        except KeyError:
            return None
        try:
            return self.storage.get_study_user_attrs(study_id).get(studies.SWEEP_ATTR)
        except optuna.exceptions.StorageInternalError:
            return None

    def trials(self):
        return self.storage.get_all_trials(self.study_id, deepcopy=False)

    def tally(self):
        """Returns (finished trials, running ones), after failing those whose process died unseen."""
        import optuna

        optuna.storages.fail_stale_trials(self.study)
        trials = self.trials()
        running = sum(1 for trial in trials if trial.state == optuna.trial.TrialState.RUNNING)
        return len(self.finished(trials)), running

    def next_trial(self):
        """Returns the next trial to run, as (number, params, the number of the trial it retries or its own), or None.

        A trial queued again (interrupted before) comes first. None when the
        finished and running trials reach --trials. Two processes asking at
        once may both get one beyond it; the later one gives its trial back.
        """
        import optuna

        finished, running = self.tally()
        if finished + running >= self.plan.trials:
            return None
        trial = self.study.ask(self.distributions)
        trials = self.trials()
        ahead = len(self.finished(trials)) + sum(1 for other in trials if (
            other.state == optuna.trial.TrialState.RUNNING and other.number < trial.number))
        if ahead >= self.plan.trials:
            # Given back through the storage: telling the study would run the sampler's end-of-trial hook
            # (GridSampler's stops an optimize loop there is none of).
            trial_id = studies.trial_id(self.storage, self.plan.study_name, trial.number)
            self.storage.set_trial_user_attr(trial_id, studies.STATUS_ATTR, studies.SURPLUS)
            self.storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
            return None
        return self._started(trial.number)

    def trial_of_combination(self, run):
        """Claims the trial of grid combination `run` (--index): returns (Trial, None), or (None, why) when it has one."""
        import optuna

        params = dict(run.flags)
        trials = self.trials()
        gone = studies.superseded(trials)
        for trial in trials:
            # A queued trial holds its values as the ones it is to take (Optuna's fixed_params).
            if (trial.params or trial.system_attrs.get("fixed_params")) != params or trial.number in gone:
                continue
            if trial.state == optuna.trial.TrialState.WAITING:
                trial_id = studies.trial_id(self.storage, self.plan.study_name, trial.number)
                if self.storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.RUNNING):
                    return self._started(trial.number), None
                trial = self.storage.get_trial(trial_id)  # Another process claimed it a moment ago.
            if studies.counts(trial) or trial.state == optuna.trial.TrialState.RUNNING:
                state = "finished" if studies.counts(trial) else "running"
                return None, f"combination {run.index} ({run.describe()}) is {state} as trial {trial.number}"
        template = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=params,
                                             distributions=self.distributions)
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        return self._started(self.storage.get_trial_number_from_id(trial_id)), None

    def _started(self, number):
        import optuna

        trial_id = studies.trial_id(self.storage, self.plan.study_name, number)
        frozen = self.storage.get_trial(trial_id)
        if len(frozen.params) < len(self.distributions):  # A queued one claimed by --index: its values set now.
            _take_values(optuna.trial.Trial(self.study, trial_id), self.distributions)
            frozen = self.storage.get_trial(trial_id)
        original = studies.original_number(frozen)
        self.storage.set_trial_user_attr(trial_id, studies.RUN_NAME_ATTR, f"{self.plan.name_prefix}-{original}")
        self.storage.set_trial_user_attr(trial_id, studies.STATUS_ATTR, "running")
        # From now on the trial is alive while its heartbeat is: this sweep's while it waits for the run,
        # the run's own (which goes on should this sweep die).
        self.storage.record_heartbeat(trial_id)
        return Trial(number, trial_id, [(name, _flag_text(frozen.params[name])) for name in self.distributions],
                     original, [dimension.name for dimension in self.plan.dimensions
                                if dimension.distribution in ("uniform", "loguniform")])

    def retry_failed(self):
        """Queues every trial that failed for good again (--retry_failed); returns how many."""
        trials = self.trials()
        gone = studies.superseded(trials)
        failed = [trial for trial in trials if studies.counts(trial) and trial.state.name == "FAIL"
                  and trial.number not in gone]
        for trial in failed:
            # Its copy waits in the queue, under the same run's name, and stands in for it: it counts no more.
            self.study.enqueue_trial(trial.params, user_attrs={studies.RETRIES_ATTR: trial.number,
                                                               studies.RETRY_OF_ATTR: studies.original_number(trial)})
        return len(failed)

    def finished(self, trials):
        """Returns the trials that count towards --trials: ended on their own, and not stood in for."""
        gone = studies.superseded(trials)
        return [trial for trial in trials if studies.counts(trial) and trial.number not in gone]

    def beat(self, trials):
        """Records the heartbeat of the trials this process runs."""
        for trial in trials:
            self.storage.record_heartbeat(trial.trial_id)

    def settle(self, trial, exit_code, last_line):
        """Records a trial whose run ended without reporting its end (stopped, killed, failed early).

        A run stopped by a signal (SIGINT, SIGTERM, SIGHUP or SIGKILL; 130 or
        143 from train.py) is queued again, at most core/study.py MAX_RETRIES
        times; one that crashed (SIGSEGV, SIGABRT, ...) or exited otherwise
        without ending its trial fails for good.

        Returns:
            The trial's state after: its FrozenTrial, and the number of the
            trial queued in its place (None when none is).
        """
        import optuna

        frozen = self.storage.get_trial(trial.trial_id)
        if frozen.state != optuna.trial.TrialState.RUNNING:
            return frozen, None
        stopped = exit_code in SIGNALLED_EXIT_CODES or (exit_code is not None and -exit_code in _STOPPING_SIGNALS)
        again = stopped and studies.retries(frozen) < studies.MAX_RETRIES
        if again:
            message = None
        elif stopped:
            message = f"stopped {studies.retries(frozen) + 1} times ({_exit_words(exit_code)} the last); not queued again"
        else:
            message = last_line or f"the run ended ({_exit_words(exit_code)}) without ending its trial in the study"
        self.storage.set_trial_user_attr(trial.trial_id, studies.STATUS_ATTR, studies.INTERRUPTED if again else "failed")
        if message:
            self.storage.set_trial_user_attr(trial.trial_id, "message", message)
        if not self.storage.set_trial_state_values(trial.trial_id, state=optuna.trial.TrialState.FAIL) or not again:
            return self.storage.get_trial(trial.trial_id), None
        failed = self.storage.get_trial(trial.trial_id)
        studies.requeue_callback(self.plan.resumes())(self.study, failed)
        queued = [other.number for other in self.trials() if trial.number in studies.retry_history(other)]
        return failed, (queued[0] if queued else None)

    def study_flags(self, trial):
        """Returns the train.py flags that tie a trial's run to the study."""
        options = self.plan.options
        return [f"--run_name={self.plan.name_prefix}-{trial.original}", f"--results_file={self.plan.results_file}",
                "--optuna=True", f"--optuna_storage={self.plan.storage}", f"--optuna_study={self.plan.study_name}",
                f"--optuna_trial={trial.number}", f"--optuna_monitor={self.plan.monitor}",
                f"--optuna_pruner={options.pruner}",
                # Each only where the pruner takes it (train.py notes an option that has no effect).
                *([f"--optuna_pruner_startup_trials={options.pruner_startup_trials}"]
                  if options.pruner == "median" else []),
                *([f"--optuna_pruner_warmup_epochs={options.pruner_warmup_epochs}"]
                  if options.pruner != "none" else []),
                *(self.parent.flags() if self.parent else [])]


class Trial:
    """A trial this process runs: its number, storage id, flags and the trial whose run it continues."""

    def __init__(self, number, trial_id, flags, original, sampled=()):
        self.sampled = frozenset(sampled)  # The names of the flags whose values were drawn from a range.
        self.number = number
        self.trial_id = trial_id
        self.flags = flags
        self.original = original

    def describe(self):
        """Returns the trial's values as `name=value ...`, a sampled number to 4 significant digits."""
        return describe((name, f"{float(value):.4g}" if name in self.sampled else value) for name, value in self.flags)


def _take_values(trial, distributions):
    """Has a trial take a value for each distribution, as `Study.ask` would (a queued trial takes its own)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            trial.suggest_categorical(name, distribution.choices)
        elif isinstance(distribution, IntDistribution):
            trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
        else:
            trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)


def _exit_words(exit_code):
    if exit_code is None:
        return "not started"
    return f"killed by {signal.Signals(-exit_code).name}" if exit_code < 0 else f"exit {exit_code}"


def _distribution(dimension):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dimension.distribution == "choice":
        return CategoricalDistribution(list(dimension.values))
    if dimension.distribution == "int":
        return IntDistribution(int(dimension.low), int(dimension.high), log=dimension.log)
    return FloatDistribution(dimension.low, dimension.high, log=dimension.log)


def _sampler(plan, seed=None):
    import optuna

    if plan.search == "grid":
        return optuna.samplers.GridSampler({dimension.name: list(dimension.values) for dimension in plan.dimensions},
                                           seed=seed)
    if plan.search == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _flag_text(value):
    """Returns a sampled value as train.py's flag takes it: a listed value as typed, a number in full."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _different_sweep(plan, existing):
    ours = plan.definition()
    differing = [key for key in ours if ours[key] != existing.get(key)]
    what = {"search": "--search", "space": "search space", "metric": "--metric", "direction": "metric's direction",
            "pruner": "pruner", "train_flags": "train.py flags after --"}
    key = differing[0] if differing else "search"
    return (f"--study={plan.study_name}: the study in {studies.shown_url(plan.storage)} was started by another sweep "
            f"(its {what.get(key, key)} was {_shown(existing.get(key))}, here {_shown(ours.get(key))}); rerun "
            "that command to resume it, or give another --study")


def _shown(value):
    if isinstance(value, dict):
        return " ".join(f"{name}={item}" for name, item in value.items()) or "{}"
    if isinstance(value, list):
        return shlex.join(value) or "none"
    return str(value)


class _SignalRelay:
    """Catches SIGINT, SIGTERM and SIGHUP and passes them on to the running runs.

    The handler only notes the signal; the sweep's loop passes it on, so no
    output or process bookkeeping happens inside a signal handler. Every
    Ctrl-C is passed on, so a second one stops the runs at once, as it does
    train.py on its own.
    """

    def __init__(self):
        self.first = None
        self._waiting = collections.deque()
        self._previous = {}

    def install(self):
        """Installs the handlers, remembering the ones they replace."""
        for signum in _FORWARDED:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self):
        """Puts the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def exit_code(self):
        """Returns 128 + the first signal's number (130 for SIGINT)."""
        return 128 + self.first

    def forward(self, processes):
        """Sends every signal received since the last call to `processes`."""
        while self._waiting:
            signum = self._waiting.popleft()
            alive = [process for process in processes if process.poll() is None]
            for process in alive:
                process.send_signal(_FORWARDED[signum])
            again = " (Ctrl-C again stops them at once)" if signum == signal.SIGINT else ""
            _say(f"{signal.Signals(signum).name} received: passed on to {len(alive)} running run(s); "
                 f"waiting for them to write their results, starting no more{again}", stream=sys.stderr)

    def _handle(self, signum, frame):
        if self.first is None:
            self.first = signum
        self._waiting.append(signum)


class _Started:
    """A trial in progress: its Trial, process, start time and log file (None when it streams to the terminal)."""

    def __init__(self, trial, process, started, log_path):
        self.trial = trial
        self.process = process
        self.started = started
        self.log_path = log_path
        self.relay = None  # The thread copying its stderr to ours, when it has no log file.
        self.last_line = ""


class Outcome:
    """How a trial's run ended.

    Args:
        trial: The Trial.
        exit_code: Its exit status (negative: killed by that signal); None if it never started.
        seconds: How long it ran.
        frozen: The trial as the study holds it after (Optuna's FrozenTrial).
        log_path: Where its output went, or None.
        reason: Why it could not start, or None.
        queued: The number of the trial queued in its place, or None.
    """

    def __init__(self, trial, exit_code, seconds, frozen, log_path=None, reason=None, queued=None):
        self.trial = trial
        self.exit_code = exit_code
        self.seconds = seconds
        self.frozen = frozen
        self.log_path = log_path
        self.reason = reason
        self.queued = queued
        self.last_line = ""  # The run's last line of output (usually its one-line error).

    def exit_status(self):
        """Returns the exit status in words: `exit 0`, `killed by SIGKILL`, `not started: ...`."""
        return f"not started: {self.reason}" if self.exit_code is None else _exit_words(self.exit_code)

    def status(self):
        """Returns the run's status as the study records it (completed, pruned, interrupted, failed, ...)."""
        return self.frozen.user_attrs.get(studies.STATUS_ATTR) or self.frozen.state.name.lower()

    def failed(self):
        return self.status() in studies.FINAL_FAILURES


def _say(message, stream=None):
    print(f"sweep.py: {message}", file=stream or sys.stdout, flush=True)


def _start(trial, command, to_log, resumes):
    """Starts a trial's run and returns its _Started.

    Raises:
        OSError: The command or its log file could not be opened.
    """
    log_path = os.path.join(LOGS_DIR, f"{trial.number}.log") if to_log else None
    log = open(log_path, "w", encoding="utf-8") if log_path else None
    try:
        # Its own process group: a Ctrl-C typed in the terminal reaches only the
        # sweep, which passes it on once. Reaching train.py twice would make it
        # stop at once instead of after the current step.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT if log else subprocess.PIPE, process_group=0)
    finally:
        if log:
            log.close()  # The run holds its own copy.
    started = _Started(trial, process, time.monotonic(), log_path)
    if not log:  # Its errors go to the terminal as they come; the last line is kept for the sweep's report.
        started.relay = threading.Thread(target=_relay_stderr, args=(process.stderr, started), daemon=True)
        started.relay.start()
    again = ""
    if trial.original != trial.number:
        again = f" (trial {trial.original} again, " + ("resuming its run)" if resumes else "from the start)")
    _say(f"trial {trial.number} started{again}: {trial.describe()}" + (f" (output: {log_path})" if log_path else ""))
    return started


def _relay_stderr(stream, started):
    """Copies a run's stderr to ours line by line, keeping its last non-empty line in `started.last_line`."""
    for line in stream:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip():
            started.last_line = line.strip()
    stream.close()


def _not_started(shared, trial, error):
    reason = f"{error.filename or 'the command'}: {error.strerror}"
    frozen, _ = shared.settle(trial, None, f"not started: {reason}")
    outcome = Outcome(trial, None, 0.0, frozen, reason=reason)
    _say(f"trial {trial.number} {outcome.exit_status()}: {trial.describe()}", stream=sys.stderr)
    return outcome


def _finish(shared, started):
    trial = started.trial
    code = started.process.returncode
    if started.relay is not None:
        started.relay.join(5)  # The rest of its stderr, up to its end.
    last = _last_line(started.log_path) if started.log_path else started.last_line
    frozen, queued = shared.settle(trial, code, last)
    outcome = Outcome(trial, code, time.monotonic() - started.started, frozen, started.log_path, queued=queued)
    outcome.last_line = last
    status = outcome.status()
    if status == "pruned":
        status += f" after epoch {frozen.user_attrs.get('epochs_completed', '?')}"
    if frozen.value is not None:
        status += f", {shared.plan.metric_name()} {frozen.value:.6g}"
    if queued is not None:
        status += f"; queued again as trial {queued}" + (
            ", which resumes its run" if shared.plan.resumes() else ", which runs it again")
    _say(f"trial {trial.number} ended ({outcome.exit_status()}): {status}, {outcome.seconds:.1f} s: "
         f"{trial.describe()}")
    return outcome


def execute(shared, plan, only=None):
    """Runs trials until the study has --trials finished ones (or only `only`); returns (outcomes, relay).

    Up to --parallel trials run at once; with more than one, each trial's
    output goes to its log file, since interleaved output is unreadable.
    """
    parallel = plan.options.parallel
    to_log = parallel > 1
    if to_log:
        os.makedirs(LOGS_DIR, exist_ok=True)
    running, outcomes = {}, []
    queue = collections.deque([only] if only is not None else [])
    relay = _SignalRelay()
    relay.install()
    ask_at, beat_at, waited = 0.0, 0.0, False
    try:
        while True:
            relay.forward([started.process for started in running.values()])
            if time.monotonic() >= beat_at:  # Our trials are alive while we wait for them.
                shared.beat([started.trial for started in running.values()])
                beat_at = time.monotonic() + studies.HEARTBEAT_SECONDS
            for number, started in list(running.items()):
                if started.process.poll() is not None:
                    outcomes.append(_finish(shared, started))
                    del running[number]
            if relay.first is not None:
                if not running:
                    break
            elif only is not None:
                if queue:
                    _launch(shared, queue.popleft(), running, outcomes, to_log)
                elif not running:
                    break
            elif time.monotonic() >= ask_at:
                while len(running) < parallel:
                    trial = shared.next_trial()
                    if trial is None:
                        ask_at = time.monotonic() + ASK_AGAIN_SECONDS
                        break
                    _launch(shared, trial, running, outcomes, to_log)
                if not running:
                    finished, elsewhere = shared.tally()
                    if finished >= plan.trials:
                        break
                    if not elsewhere:  # One ended or came back to the queue since we asked: ask again.
                        ask_at = 0.0
                    elif not waited:
                        _say(f"waiting for {elsewhere} trial(s) running in other processes (one whose heartbeat "
                             f"stops for {studies.GRACE_SECONDS} s is queued again, for this one to run)")
                        waited = True
            time.sleep(POLL_SECONDS)
    finally:
        relay.restore()
    return outcomes, relay


def _launch(shared, trial, running, outcomes, to_log):
    command = [*shared.plan.train_command, *shared.plan.passthrough,
               *(f"--{name}={value}" for name, value in trial.flags), *shared.study_flags(trial)]
    try:
        running[trial.number] = _start(trial, command, to_log, shared.plan.resumes())
    except OSError as error:
        outcomes.append(_not_started(shared, trial, error))


def _last_line(path):
    """Returns the last non-empty line of a log file ('' if none): usually the run's one-line error."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = [line.strip() for line in stream if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def report(shared, plan, outcomes, relay):
    """Prints what became of the trials and the study, and returns the sweep's exit status."""
    failed = [outcome for outcome in outcomes if outcome.failed()]
    for outcome in sorted(failed, key=lambda outcome: outcome.trial.number):
        line = f"trial {outcome.trial.number} failed ({outcome.exit_status()}): {outcome.trial.describe()}"
        why = outcome.last_line or outcome.frozen.user_attrs.get("message")
        if why and outcome.exit_code is not None:
            line += f" -- {why}"
        if outcome.log_path:
            line += f" (log: {outcome.log_path})"
        _say(line, stream=sys.stderr)
    script = os.path.join(REPO, "scripts", "summarize.py")
    if not os.path.relpath(script).startswith(".."):
        script = os.path.relpath(script)
    # A password is not printed: the command then names where the URL goes.
    url = "'<the --storage URL>'" if studies.has_password(plan.storage) else shlex.quote(plan.storage)
    summary = f"python {shlex.quote(script)} --storage {url} --study {shlex.quote(plan.study_name)}"
    if failed:
        _say("a failed trial counts as finished; once what failed it is fixed, the same command with "
             "--retry_failed runs it again", stream=sys.stderr)
    if relay.first is not None:
        queued = sum(1 for outcome in outcomes if outcome.queued is not None)
        _say(f"stopped by {signal.Signals(relay.first).name}: {queued} trial(s) interrupted and queued again; "
             "rerun the same command to resume the sweep", stream=sys.stderr)
        return 128 + relay.first
    finished = shared.finished(shared.trials())
    states = collections.Counter(trial.state.name.lower() for trial in finished)
    _say(f"{len(finished)} of {plan.trials} trial(s) finished in study {plan.study_name!r} "
         f"({states['complete']} complete, {states['pruned']} pruned, {states['fail']} failed)")
    best = best_trial(shared, plan, finished)
    if best is not None:
        flags = describe((name, f"{value:.4g}" if isinstance(value, float) else value)
                         for name, value in best.params.items())
        where = best.user_attrs.get(studies.RUN_DIR_ATTR)
        _say(f"best: trial {best.number}, {plan.metric_name()} {best.value:.6g}: {flags}"
             + (f" (run: {where})" if where else ""))
    if os.path.exists(plan.results_file):
        _say(f"results in {plan.results_file}; rank the trials: {summary}")
    return RUN_FAILED_EXIT_CODE if failed else 0


def best_trial(shared, plan, finished=None):
    """Returns the study's best complete trial (a pruned one has a value too, but is not ranked), or None."""
    finished = shared.finished(shared.trials()) if finished is None else finished
    complete = [trial for trial in finished if trial.state.name == "COMPLETE"]
    if not complete:
        return None
    pick = max if plan.direction == "maximize" else min
    return pick(complete, key=lambda trial: trial.value)


def print_plan(plan):
    """--dry_run: prints each combination's command (a grid), or the search and the command it varies."""
    if plan.is_grid():
        index = plan.options.index
        for run in plan.grid if index is None else [plan.grid[index]]:
            print(shlex.join(run.command))
        return
    for dimension in plan.dimensions:
        print(f"{dimension.name}: {dimension.spec()}")
    print(f"{plan.search} search, {plan.trials} trial(s), objective: {plan.metric_name()} "
          f"({plan.direction}), pruner: {plan.options.pruner}")
    print(shlex.join([*plan.train_command, *plan.passthrough, *(f"--{d.name}=..." for d in plan.dimensions),
                      f"--results_file={plan.results_file}"]))


def main(argv):
    """Runs the sweep described by `argv` (without the program name); returns the exit status."""
    try:
        plan = parse_args(argv)
        if plan.options.count:
            print(len(plan.grid) if plan.is_grid() else plan.trials)
            return 0
        if plan.options.dry_run:
            print_plan(plan)
            return 0
        shared = SharedStudy(plan)
    except UsageError as error:
        print(f"sweep.py: error: {error}", file=sys.stderr)
        return USAGE_EXIT_CODE
    if plan.chosen:
        _say(f"search: {plan.chosen}")
    if shared.resumed:
        finished, running = shared.tally()
        beyond = " (no more to run)" if finished >= plan.trials else ""
        _say(f"resuming study {plan.study_name!r} in {studies.shown_url(plan.storage)}: {finished} of "
             f"{plan.trials} trial(s) finished{beyond}, {running} running")
    if plan.options.retry_failed:
        queued = shared.retry_failed()
        _say(f"--retry_failed: {queued} failed trial(s) queued again" if queued else
             "--retry_failed: the study has no failed trial")
    if plan.options.seed is not None and shared.process and not plan.is_grid():
        _say(f"--seed {plan.options.seed}: the study's sweep process {shared.process + 1} draws from seed "
             f"{plan.options.seed + shared.process}, so as not to repeat the trials its first process drew")
    only = None
    if plan.options.index is not None:
        only, why = shared.trial_of_combination(plan.grid[plan.options.index])
        if only is None:
            _say(why)
            return 0
    if plan.mlflow is not None:
        from kerasrun.runner.mlflow_parent import SweepParent

        shared.parent = SweepParent(plan.mlflow, plan.study_name, studies.shown_url(plan.storage))
    outcomes, relay = execute(shared, plan, only)
    status = report(shared, plan, outcomes, relay)
    if shared.parent is not None:
        end_parent(shared, plan, relay)
    return status


def end_parent(shared, plan, relay):
    """Ends the sweep's MLflow run: KILLED when a signal stopped the sweep, FINISHED (with the best value) once the
    study has all its trials; while other processes still run some, it stays RUNNING for the last to end it."""
    if relay.first is not None:
        shared.parent.end("KILLED")
    elif len(shared.finished(shared.trials())) >= plan.trials:
        best = best_trial(shared, plan)
        shared.parent.end("FINISHED", None if best is None else (plan.metric_name(), best.value))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
