"""Runs train.py once for every combination of flag values: a grid sweep.

    python scripts/sweep.py --grid learning_rate=0.1,0.01,0.001 --grid batch_size=16,32 \\
        --parallel 2 -- --epochs 5 --early_stopping True

Each `--grid name=v1,v2,...` adds a dimension; every combination is one run of
`train.py --name=v ... <the flags after --> --results_file FILE`, so all the
runs append their results to one file (rank them with scripts/summarize.py).
Combinations are numbered from 0 in a fixed order, the first --grid varying
slowest. A value holding a comma is written with a backslash: `\\,`.

On a cluster, one job-array task per combination runs the same sweep:

    sbatch --array=0-$(($(python scripts/sweep.py --grid ... --count) - 1)) job.sh
    # job.sh: python scripts/sweep.py --grid ... --index $SLURM_ARRAY_TASK_ID -- ...

Values go to train.py exactly as typed, spaces and all; no shell sees them.
Each run prints a line when it starts and when it ends. With --parallel N > 1
a run's own output goes to sweep_logs/<index>.log instead of the terminal.

Ctrl-C (or SIGTERM) is passed on to the running runs, which stop after their
current step and write their results; the sweep starts no more and waits.

Exit status: 0 when every run exited 0, 1 when any failed (each failed run is
listed), 2 for a usage error, 130 after Ctrl-C and 143 after SIGTERM.
"""

import argparse
import collections
import difflib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import runpy
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "train.py")
runpy.run_path(os.path.join(REPO, "__init__.py"))

from kerasrun.callbacks.builder import enabled_families  # noqa: E402
from kerasrun.cli.config import all_options, check_further, resolve  # noqa: E402
from kerasrun.runner.run_paths import RunPaths  # noqa: E402
from kerasrun.core.errors import (  # noqa: E402
    RUN_FAILED_EXIT_CODE, SIGNALLED_EXIT_CODES, USAGE_EXIT_CODE, UsageError,
)

LOGS_DIR = "sweep_logs"
# How often finished runs are noticed; short next to any training run.
POLL_SECONDS = 0.05
_FLAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPTION = re.compile(r"-{1,2}([A-Za-z0-9_]+)(=|\Z)")
# A comma preceded by a backslash belongs to the value (`--grid dataset_image_size=32\,32,64\,64`).
_VALUE_SEPARATOR = re.compile(r"(?<!\\),")
# The runs live in their own process group (see _start), so a hang-up of the
# terminal reaches only the sweep; it stops them gracefully as SIGTERM would.
_FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class Run:
    """One combination of the grid.

    Args:
        index: Its 0-based number in the sweep (what --index selects).
        flags: (name, value) pairs, one per --grid dimension.
        command: The argv that runs it.
    """

    def __init__(self, index, flags, command):
        self.index = index
        self.flags = flags
        self.command = command

    def describe(self):
        """Returns the run's grid values as `name=value ...`, quoted like a shell would need."""
        return " ".join(shlex.quote(f"{name}={value}") for name, value in self.flags)


def build_parser():
    """Returns the argument parser (train.py's own flags come after `--` and never reach it)."""
    parser = _Parser(
        prog="sweep.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False, usage="%(prog)s --grid NAME=V1,V2,... [--grid ...] [options] [-- TRAIN_FLAGS ...]",
    )
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="A flag of train.py and the values to try; repeat for more dimensions.")
    parser.add_argument("--parallel", default="1", metavar="N",
                        help="Runs at once; with more than 1, each run's output goes to "
                             f"{LOGS_DIR}/<index>.log. Default: 1.")
    parser.add_argument("--results_file", default="sweep.jsonl", metavar="PATH",
                        help="Passed to every run, which appends its results to it. Default: sweep.jsonl.")
    parser.add_argument("--name_prefix", default=None, metavar="P",
                        help="Name each run P-<index> (--run_name). Default: train.py names them.")
    parser.add_argument("--index", default=None, metavar="I",
                        help="Run only combination I (0-based), e.g. $SLURM_ARRAY_TASK_ID.")
    parser.add_argument("--count", action="store_true",
                        help="Print the number of combinations and exit.")
    parser.add_argument("--dry_run", action="store_true",
                        help="Print the command of every run and exit without running any.")
    # A stand-in for train.py (tests use a tiny fake); split like a shell would.
    parser.add_argument("--train_command", default=None, help=argparse.SUPPRESS)
    return parser


def split_passthrough(argv):
    """Splits argv at the first `--` into the sweep's own arguments and train.py's flags."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def parse_grid(specs):
    """Returns the grid as a list of (flag name, [values]), in the order given.

    Args:
        specs: The --grid arguments, each `name=v1,v2,...`.

    Raises:
        UsageError: A spec without `=`, a name that is not a flag name, a
            name given twice, or an empty or repeated value.
    """
    if not specs:
        raise UsageError("--grid is required: give at least one --grid NAME=V1,V2,...")
    grid, seen = [], set()
    for spec in specs:
        name, equals, listed = spec.partition("=")
        if not equals:
            raise UsageError(f"--grid={spec}: expected NAME=V1,V2,... (a train.py flag, '=', its values)")
        if not _FLAG_NAME.match(name):
            raise UsageError(f"--grid={spec}: {name!r} is not a flag name (write it without dashes)")
        if name in seen:
            raise UsageError(f"--grid={spec}: {name} is already a dimension; list all its values in one --grid")
        seen.add(name)
        grid.append((name, _split_values(spec, listed)))
    return grid


def _split_values(spec, listed):
    if not listed:
        raise UsageError(f"--grid={spec}: no values after '='")
    values = [value.replace("\\,", ",") for value in _VALUE_SEPARATOR.split(listed)]
    for position, value in enumerate(values, 1):
        if not value:
            raise UsageError(f"--grid={spec}: value {position} is empty")
        if value in values[:position - 1]:
            raise UsageError(f"--grid={spec}: value {value!r} is listed twice")
    return values


def sweeps_own_flags(name_prefix):
    """Returns {train.py flag: the sweep option that sets it} for the flags the sweep gives every run."""
    owners = {"results_file": "sweep.py's own --results_file (before --)"}
    if name_prefix is not None:
        owners["run_name"] = "--name_prefix"
    return owners


def check_passthrough(passthrough, grid, name_prefix):
    """Refuses train.py flags after `--`, and grid dimensions, that the sweep sets itself.

    absl lets the last of two values win, so such a flag would silently undo
    the grid or scatter the results; better to say so before anything runs.

    Args:
        passthrough: The flags after `--`.
        grid: What `parse_grid` returned.
        name_prefix: --name_prefix, or None.

    Raises:
        UsageError: Naming the flag and the sweep option that sets it.
    """
    owners = sweeps_own_flags(name_prefix)
    for name, values in grid:
        if name in owners:
            raise UsageError(f"--grid={name}={','.join(values)}: the sweep sets --{name} itself, "
                             f"through {owners[name]}")
    owners.update({name: f"--grid {name}=..." for name, _ in grid})
    for word in passthrough:
        match = _OPTION.match(word)
        if not match:
            continue
        name = match.group(1)
        if name not in owners and name.startswith("no") and name[2:] in owners:
            name = name[2:]  # absl's --noflag form of a boolean.
        if name in owners:
            raise UsageError(f"{word} after --: the sweep sets --{name} itself, through {owners[name]}")


def build_runs(grid, train_command, passthrough, results_file, name_prefix):
    """Returns one Run per combination, the first grid dimension varying slowest.

    Args:
        grid: What `parse_grid` returned.
        train_command: The argv that starts train.py.
        passthrough: train.py flags shared by every run.
        results_file: The file every run appends its results to.
        name_prefix: Runs are named `<name_prefix>-<index>`; None lets train.py name them.
    """
    names = [name for name, _ in grid]
    runs = []
    for index, values in enumerate(itertools.product(*(values for _, values in grid))):
        flags = list(zip(names, values))
        # The shared flags first: what the sweep sets for each run comes last, and wins.
        command = [*train_command, *passthrough, *(f"--{name}={value}" for name, value in flags)]
        if name_prefix is not None:
            command.append(f"--run_name={name_prefix}-{index}")
        command.append(f"--results_file={results_file}")
        runs.append(Run(index, flags, command))
    return runs


def check_train_flags(grid, runs, command_length, results_file):
    """Checks the grid's names and every run's train.py flags as train.py itself does, before any run starts.

    Each run must also get the values the sweep gives it: a flag after `--`
    given without its value would take the next word as its own.

    Args:
        grid: What `parse_grid` returned.
        runs: The Runs of the grid.
        command_length: How many words of each run's command start train.py.
        results_file: The file every run appends its results to.

    Raises:
        UsageError: Naming a --grid name train.py does not have, or the first
            run whose flags train.py would refuse, and why.
    """
    options = all_options()
    for name, values in grid:
        _check_grid_dimension(name, values, options)
    configs = [_checked_run(run, command_length, results_file, options) for run in runs]
    for flag, value in shared_outputs(configs):
        raise UsageError(f"--{flag}={value}: every run would write there, over the others' files; leave it "
                         "out (each run then writes into its own directory) or make it a --grid dimension")


def _check_grid_dimension(name, values, options):
    """Refuses a grid name train.py does not have, and two values it reads as one (1 and 01)."""
    if name not in options:
        close = difflib.get_close_matches(name, options, n=1)
        raise UsageError(f"--grid={name}={','.join(values)}: train.py has no flag --{name}"
                         + (f"; did you mean {close[0]}?" if close else ""))
    seen = {}
    for value in values:
        try:
            parsed = options[name].kind.from_text(value)
            # A --model_args mapping is compared by its content, whatever the order of its names.
            same = seen.setdefault(json.dumps(parsed, sort_keys=True) if isinstance(parsed, dict) else parsed, value)
        except ValueError:
            continue  # The run with that value says what is wrong with it.
        if same != value:
            raise UsageError(f"--grid={name}={','.join(values)}: {value!r} is {same!r} again, as train.py reads them")


def _checked_run(run, command_length, results_file, options):
    """Returns the run's config as train.py resolves it, refused unless it has the values the sweep gives it."""
    try:
        config = resolve(["train.py", *run.command[command_length:]])
        check_further(config)
    except UsageError as error:
        raise UsageError(f"run {run.index} ({run.describe()}): {error}") from None
    for name, value in [*run.flags, ("results_file", results_file)]:
        if config[name] != options[name].kind.from_text(value):
            raise UsageError(f"run {run.index} ({run.describe()}): train.py would take --{name} to be "
                             f"{options[name].kind.format(config[name])!r}, not {value!r}: a flag after -- "
                             "takes it (one given without its value?)")
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


def _int_option(name, text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name}={text}: must be an integer") from None
    if value < minimum:
        raise UsageError(f"--{name}={text}: must be at least {minimum}")
    return value


def parse_args(argv):
    """Returns (options, runs) from the sweep's argv (without the program name).

    Raises:
        UsageError: For every mistake, naming the option and its value.
    """
    own, passthrough = split_passthrough(argv)
    options, unknown = build_parser().parse_known_args(own)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}: train.py's own flags go after --, "
                         f"as in: sweep.py --grid ... -- {unknown[0]}")
    grid = parse_grid(options.grid)
    options.parallel = _int_option("parallel", options.parallel, 1)
    if not options.results_file:
        raise UsageError("--results_file='': give the file every run appends its results to")
    if options.name_prefix is not None and not options.name_prefix:
        raise UsageError("--name_prefix='': give a prefix, or leave the option out to let train.py name runs")
    check_passthrough(passthrough, grid, options.name_prefix)
    if options.train_command is None:
        train_command = [sys.executable, TRAIN]
    else:
        train_command = shlex.split(options.train_command)
        if not train_command:
            raise UsageError("--train_command='': give the command that runs train.py")
    runs = build_runs(grid, train_command, passthrough, options.results_file, options.name_prefix)
    if options.train_command is None:  # The tests' stand-in for train.py has flags of its own.
        check_train_flags(grid, runs, len(train_command), options.results_file)
    if options.index is not None:
        index = _int_option("index", options.index, 0)
        if index >= len(runs):
            raise UsageError(f"--index={options.index}: the grid has {len(runs)} combination(s), "
                             f"numbered 0 to {len(runs) - 1}")
        options.index = index
    return options, runs


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
    """A run in progress: its Run, process, start time and log file (None when it streams to the terminal)."""

    def __init__(self, run, process, started, log_path):
        self.run = run
        self.process = process
        self.started = started
        self.log_path = log_path


class Outcome:
    """How a run ended.

    Args:
        run: The Run.
        exit_code: Its exit status (negative: killed by that signal); None if it never started.
        seconds: How long it ran.
        log_path: Where its output went, or None.
        reason: Why it could not start, or None.
    """

    def __init__(self, run, exit_code, seconds, log_path=None, reason=None):
        self.run = run
        self.exit_code = exit_code
        self.seconds = seconds
        self.log_path = log_path
        self.reason = reason

    def status(self):
        """Returns the exit status in words: `exit 0`, `killed by SIGKILL`, `not started: ...`."""
        if self.exit_code is None:
            return f"not started: {self.reason}"
        if self.exit_code < 0:
            return f"killed by {signal.Signals(-self.exit_code).name}"
        return f"exit {self.exit_code}"

    def interrupted(self):
        """Returns whether the run exited as train.py does after SIGINT or SIGTERM."""
        return self.exit_code in SIGNALLED_EXIT_CODES


def _say(message, stream=None):
    print(f"sweep.py: {message}", file=stream or sys.stdout, flush=True)


def _start(run, total, to_log):
    """Starts a run and returns its _Started.

    Raises:
        OSError: The command or its log file could not be opened.
    """
    log_path = os.path.join(LOGS_DIR, f"{run.index}.log") if to_log else None
    log = open(log_path, "w", encoding="utf-8") if log_path else None
    try:
        # Its own process group: a Ctrl-C typed in the terminal reaches only the
        # sweep, which passes it on once. Reaching train.py twice would make it
        # stop at once instead of after the current step.
        process = subprocess.Popen(run.command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT if log else None, process_group=0)
    finally:
        if log:
            log.close()  # The run holds its own copy.
    _say(f"run {run.index} ({run.index + 1}/{total}) started: {run.describe()}"
         + (f" (output: {log_path})" if log_path else ""))
    return _Started(run, process, time.monotonic(), log_path)


def _not_started(run, total, error):
    outcome = Outcome(run, None, 0.0, reason=f"{error.filename or run.command[0]}: {error.strerror}")
    _say(f"run {run.index} ({run.index + 1}/{total}) {outcome.status()}: {run.describe()}")
    return outcome


def _finish(started, total):
    run = started.run
    outcome = Outcome(run, started.process.returncode, time.monotonic() - started.started, started.log_path)
    status = outcome.status() + (" (interrupted)" if outcome.interrupted() else "")
    _say(f"run {run.index} ({run.index + 1}/{total}) ended, {status}, "
         f"{outcome.seconds:.1f} s: {run.describe()}")
    return outcome


def execute(runs, total, parallel):
    """Runs `runs`, up to `parallel` at once, and returns (outcomes, relay).

    Args:
        runs: The Runs to start, in order.
        total: The number of combinations in the whole grid (for progress lines).
        parallel: How many may run at once; with more than one, each run's
            output goes to its log file, since interleaved output is unreadable.
    """
    to_log = parallel > 1
    if to_log:
        os.makedirs(LOGS_DIR, exist_ok=True)
    waiting, running, outcomes = collections.deque(runs), {}, []
    relay = _SignalRelay()
    relay.install()
    try:
        while waiting or running:
            relay.forward([started.process for started in running.values()])
            while waiting and len(running) < parallel and relay.first is None:
                run = waiting.popleft()
                try:
                    running[run.index] = _start(run, total, to_log)
                except OSError as error:
                    outcomes.append(_not_started(run, total, error))
            for index, started in list(running.items()):
                if started.process.poll() is not None:
                    outcomes.append(_finish(started, total))
                    del running[index]
            if relay.first is not None and not running:
                break
            time.sleep(POLL_SECONDS)
    finally:
        relay.restore()
    return outcomes, relay


def _last_line(path):
    """Returns the last non-empty line of a log file ('' if none): usually the run's one-line error."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = [line.strip() for line in stream if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def report(outcomes, planned, relay, results_file):
    """Prints what became of the runs and returns the sweep's exit status."""
    failed = [outcome for outcome in outcomes if outcome.exit_code != 0]
    for outcome in sorted(failed, key=lambda outcome: outcome.run.index):
        verb = "was interrupted" if outcome.interrupted() else "failed"
        line = f"run {outcome.run.index} {verb} ({outcome.status()}): {outcome.run.describe()}"
        if outcome.log_path:
            last = _last_line(outcome.log_path)
            line += f" -- {last} (log: {outcome.log_path})" if last else f" (log: {outcome.log_path})"
        _say(line, stream=sys.stderr)
    if relay.first is not None:
        _say(f"stopped by {signal.Signals(relay.first).name}: {len(outcomes)} of {planned} run(s) started, "
             f"{planned - len(outcomes)} not started", stream=sys.stderr)
        return relay.exit_code()
    if os.path.exists(results_file):
        _say(f"{len(outcomes) - len(failed)} of {planned} run(s) succeeded; results in {results_file} "
             f"(rank them: python scripts/summarize.py {shlex.quote(results_file)})")
    else:
        _say(f"{len(outcomes) - len(failed)} of {planned} run(s) succeeded; no run wrote {results_file}")
    return RUN_FAILED_EXIT_CODE if failed else 0


def main(argv):
    """Runs the sweep described by `argv` (without the program name); returns the exit status."""
    try:
        options, runs = parse_args(argv)
    except UsageError as error:
        print(f"sweep.py: error: {error}", file=sys.stderr)
        return USAGE_EXIT_CODE
    if options.count:
        print(len(runs))
        return 0
    selected = runs if options.index is None else [runs[options.index]]
    if options.dry_run:
        for run in selected:
            print(shlex.join(run.command))
        return 0
    if options.index is None and os.path.exists(options.results_file):
        # Array tasks share the file by design; a whole sweep adding to an old one may be a surprise.
        _say(f"appending to the existing {options.results_file}")
    outcomes, relay = execute(selected, len(runs), options.parallel)
    return report(outcomes, len(selected), relay, options.results_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
