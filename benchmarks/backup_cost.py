"""What a backup every N batches costs (`--backup_and_restore_save_freq N`), per backup and per epoch.

    python benchmarks/backup_cost.py [--quick] [--json benchmarks/backup_cost.json]

For each model (train.py's default `mlp`, and `--model resnet`), train.py
runs on the bundled digits (8x8x1 images, which resnet takes as they are),
repeated and cut to a whole number of batches: MODELS[model] steps of batch
BATCH_SIZE per epoch, a multiple of every N, so that each epoch makes exactly
steps / N backups and auto's steps per call can divide N (the bundled digits
as they are make 45-step epochs, which would leave N = 10 one step per call).
Each run takes the default --steps_per_execution auto, which picks a divisor
of N: 1 for N = 1, and fewer steps per call than without a backup for larger N.

One round runs, side by side in one interleaved group (see below), train.py:
- with --backup_and_restore True --backup_and_restore_save_freq N, for
  each N of EVERY;
- with no backup, at the steps per call each of those runs gets (given
  explicitly when auto would pick another), and with the defaults, twice:
  the second default run against the first shows the noise that remains.

Every run times its epochs with benchmarks/backup_timer.py:BackupTimer
(epoch_timer.py's EpochTimer, which bench.py uses, plus a count and clocks
on the runner's BackupAndRestore.write, and a look at the backup on
disk at each epoch's end). The benchmark checks that each epoch of a run
with backups made steps / N of them and left the last on disk, that the
runs without made none, and that each run used the steps per call expected.

With the first `warm_up` epochs of each run dropped (the first traces the
step), each run's epoch is the median of the rest; the figures below are
computed in each round, from runs that ran side by side, and the table
gives the median of the rounds' figures (its epoch columns, the median of
the epochs pooled over the rounds, as bench.py's tables do):
- seconds per backup: (epoch with the backup - epoch without, at the same
  steps per call) / backups per epoch. This counts what the backup costs
  outside the save too: Keras then runs the batch-end hooks in line with
  the steps instead of on a thread of its own. The same in CPU seconds (the
  process's, all threads), which other work on the machine disturbs less
  than wall time (it delays a process more than it makes it work more).
- overhead at the same steps per call: that difference / the epoch without;
- overhead against the default: epoch with the backup / the default run's
  epoch - 1, the slowdown a user sees (fewer steps per call included); also
  in CPU time.
The table also gives the range of the overhead against the default over
the rounds, and the CPU time inside the save alone (BackupTimer's clock,
the mean over the steady epochs), which no difference between runs blurs.

The runs of a group start up together (importing TensorFlow, loading the
data, building the model), each stopping itself as its training begins;
then their training runs in turns: only one runs at any moment, the others
stopped (SIGSTOP), each for INTERLEAVE_SLICE_S seconds in turn until all have
ended, and each epoch counts only the time its own process ran (as
bench.py's Bench.interleaved_epochs does for two). A slow spell of this
shared machine thus falls on every run of the group. Which run starts the
rotation changes from round to round. Before each group the benchmark waits
a little for other processes to go quiet, and it reports the CPU they used
while the groups trained.

A full run takes about 10 minutes on 2 quiet cores (three rounds; N of 1, 10
and 100). --quick takes under two: one round of 5-epoch runs on 100-step
epochs, N of 10 and 100 against the default (all at 10 steps per call),
without the run against itself; its figures are coarse.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BACKUP_TIMER = f"{os.path.join(HERE, 'backup_timer.py')}:BackupTimer"

sys.path.insert(0, HERE)
from bare_keras import load_digits  # noqa: E402
from bench import (INTERLEAVE_SLICE_S, Bench, BenchError, busy_cpu_seconds, end_group, machine,  # noqa: E402
                   progress, reap, running_seconds)
from callback_time import EPOCH_TIMER_FILE_ENV  # noqa: E402 (also registers the package `kerasrun`)

from kerasrun.callbacks.stepping import choose  # noqa: E402
from kerasrun.cli.config import resolve  # noqa: E402

# Set for the runs, BackupTimer stops each as its training begins (not imported from backup_timer.py: Keras).
STOP_AT_TRAIN_BEGIN_ENV = "BACKUP_TIMER_STOP_AT_TRAIN_BEGIN"

BATCH_SIZE = 32
EVERY = (1, 10, 100)
# Each model's flags and training steps per epoch (a multiple of every N). mlp's 500 steps make its
# default 32 steps per call; resnet's 100 steps (about 1 s an epoch here) make it 10.
MODELS = {"mlp": ([], 500), "resnet": (["--model=resnet"], 100)}
# epochs: of each run, `every_batch_epochs` for N = 1 (its epochs are several times longer);
# warm_up: epochs dropped from the start of each run (the first traces and compiles the step).
FULL = dict(rounds=3, epochs=7, every_batch_epochs=4, warm_up=2, quiet_wait_budget_s=30, reruns=0)
QUICK = dict(rounds=1, epochs=5, every_batch_epochs=3, warm_up=1, quiet_wait_budget_s=10, reruns=0,
             steps={"mlp": 100, "resnet": 100}, every=(10, 100), noise_run=False)


def backup_flags(every):
    return ["--backup_and_restore=True", f"--backup_and_restore_save_freq={every}"]


def steps_per_call(model_flags, flags, steps_per_epoch):
    """The steps per call train.py's --steps_per_execution auto picks for these flags and epoch."""
    return choose(resolve(["train.py", *model_flags, *flags]), steps_per_epoch).steps


def runs_of(model_flags, steps_per_epoch, every, noise_run):
    """Returns {name: (extra flags, expected steps per call, epochs key)} of one model's group.

    Names: "backup N" for each N; "off S" without a backup at S steps per
    call (S the default's or that of a "backup N" run); "default" and
    "default again", the defaults.
    """
    default = steps_per_call(model_flags, [], steps_per_epoch)
    runs = {"default": ([], default, "epochs")}
    if noise_run:
        runs["default again"] = ([], default, "epochs")
    for n in every:
        steps = steps_per_call(model_flags, backup_flags(n), steps_per_epoch)
        runs[f"backup {n}"] = (backup_flags(n), steps, "every_batch_epochs" if n == 1 else "epochs")
        if steps != default:
            runs.setdefault(f"off {steps}", ([f"--steps_per_execution={steps}"], steps, "epochs"))
    return runs, default


def reference_of(runs, default, name):
    """The run without a backup at the steps per call of `name`."""
    steps = runs[name][1]
    return "default" if steps == default else f"off {steps}"


def process_cpu_seconds(pid):
    """The CPU seconds process `pid` (all its threads) has used so far (Linux /proc), or 0.0."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime


def interleaved_epochs(bench, named_commands, first):
    """Runs the commands (which train with BackupTimer) at once, taking turns; returns their records by name.

    Like bench.py's Bench.interleaved_epochs, for any number of commands,
    except that the runs start up together (importing TensorFlow, loading
    the data, building the model: nothing timed) until each stops itself
    as its training begins (BackupTimer, $BACKUP_TIMER_STOP_AT_TRAIN_BEGIN).
    Then only one runs at any moment, the others stopped, each in turn for
    INTERLEAVE_SLICE_S seconds, starting with the one at index `first`,
    until all have ended. Each record is BackupTimer's, with "wall" (each
    epoch's seconds of its own process running), "cpu", "backup_seconds"
    (the backups' seconds, counting only the time the process ran) and
    "steps_line" (the line the run printed about its steps per execution).
    """
    bench.wait_for_quiet()
    names = list(named_commands)
    timings = [bench.scratch("epochs.json") for _ in names]
    logs = [open(bench.scratch("log.txt"), "wb") for _ in names]
    processes, turns, usage = [], [[] for _ in names], [None] * len(names)
    try:
        for index, name in enumerate(names):
            env = dict(bench.env, **{EPOCH_TIMER_FILE_ENV: timings[index], STOP_AT_TRAIN_BEGIN_ENV: "1"})
            processes.append(subprocess.Popen(named_commands[name], cwd=bench.workdir, env=env, stdout=logs[index],
                                              stderr=subprocess.STDOUT))
        for name, process in zip(names, processes):  # Each run's start-up, until it stops itself.
            _, status = os.waitpid(process.pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                process.returncode = os.waitstatus_to_exitcode(status)
                raise BenchError.of(named_commands[name], process.returncode, (0,), logs[names.index(name)].name)
        start_up_cpu = sum(process_cpu_seconds(process.pid) for process in processes)
        busy_before = busy_cpu_seconds()
        running = first
        turns[running].append([time.perf_counter(), None])
        os.kill(processes[running].pid, signal.SIGCONT)
        while None in usage:
            time.sleep(INTERLEAVE_SLICE_S)
            reap(processes, usage)
            if None not in usage:
                break
            following = next(index for index in [*range(running + 1, len(names)), *range(running + 1)]
                             if usage[index] is None)
            if following == running:
                continue  # The others have ended: this one runs on alone.
            turns[running][-1][1] = time.perf_counter()
            if usage[running] is None:
                os.kill(processes[running].pid, signal.SIGSTOP)
            os.kill(processes[following].pid, signal.SIGCONT)
            running = following
            turns[running].append([time.perf_counter(), None])
        for stretches in turns:  # The last one to end ran until now.
            if stretches and stretches[-1][1] is None:
                stretches[-1][1] = time.perf_counter()
    finally:
        end_group(processes, logs)
    own = sum(u.ru_utime + u.ru_stime for u in usage) - start_up_cpu
    seconds = max(end for stretches in turns for _, end in stretches) - min(t[0][0] for t in turns if t)
    if busy_before is not None:
        bench.others.append(("interleaved group", seconds, max(0.0, busy_cpu_seconds() - busy_before - own)))
    for name, process, log in zip(names, processes, logs):
        if process.returncode != 0:
            raise BenchError.of(named_commands[name], process.returncode, (0,), log.name)
    records = {}
    for name, path, stretches, log in zip(names, timings, turns, logs):
        with open(path) as stream:
            record = json.load(stream)
        marks = [record["train_begin_time"], *record["epoch_end_times"]]
        record["wall"] = [running_seconds(stretches, start, end) for start, end in zip(marks, marks[1:])]
        record["cpu"] = record["epoch_cpu_seconds"]
        # The backups' own seconds, less any time the process was stopped during them.
        record["backup_seconds"] = [sum(running_seconds(stretches, start, end) for start, end in epoch)
                                    for epoch in record.pop("backup_times")]
        with open(log.name, errors="replace") as stream:
            record["steps_line"] = next((line.strip() for line in stream if line.startswith("steps per execution")),
                                        None)
        records[name] = record
    return records


def check(name, record, expected_steps, backups_per_epoch, steps_per_epoch):
    """Raises BenchError unless the run used the steps per call expected and made the backups it should have."""
    line = record["steps_line"] or ""
    if not line.startswith(f"steps per execution: {expected_steps} "):
        raise BenchError(f"{name}: expected {expected_steps} steps per call, the run printed {line!r}")
    # The backup after an epoch's last batch is its end's, which falls in the next epoch's window (backup_timer.py).
    expected = [max(backups_per_epoch - 1, 0)] + [backups_per_epoch] * (len(record["backups"]) - 1)
    if record["backups"] != expected:
        raise BenchError(f"{name}: expected {expected} backups, epoch by epoch, counted {record['backups']}")
    if backups_per_epoch:
        last = steps_per_epoch - steps_per_epoch // backups_per_epoch  # the epoch's last backup inside it
        for epoch, disk in enumerate(record["backup_on_disk"]):
            # As the epoch ends: its last backup inside it, or (one backup an epoch) the last epoch's end's.
            where = (epoch, last) if last else (epoch, 0)
            if last == 0 and epoch == 0:
                if disk is not None:
                    raise BenchError(f"{name}: before the first epoch's end there was a backup: {disk}")
                continue
            if not disk or disk["weights_bytes"] <= 0 or (disk["metadata"]["epoch"], disk["metadata"]["step"]) != where:
                raise BenchError(f"{name}: after epoch {epoch} the backup on disk was {disk}")


def write_data(folder, steps_per_epoch):
    """Writes the bundled digits, repeated and cut to `steps_per_epoch` batches, to an npz; returns its path."""
    examples = steps_per_epoch * BATCH_SIZE
    once = len(load_digits()[0][0])
    (x, y), (x_val, y_val) = load_digits(-(-examples // once))
    path = os.path.join(folder, f"digits_{steps_per_epoch}_steps.npz")
    np.savez(path, x_train=x[:examples], y_train=y[:examples], x_val=x_val, y_val=y_val)
    return path


def steady(record, warm_up, clock="wall"):
    return statistics.median(record[clock][warm_up:])


def measure_model(bench, model, settings):
    """Runs one model's rounds; returns its figures and raw records."""
    model_flags, steps_per_epoch = MODELS[model]
    steps_per_epoch = settings.get("steps", {}).get(model, steps_per_epoch)
    every = settings.get("every", EVERY)
    runs, default = runs_of(model_flags, steps_per_epoch, every, settings.get("noise_run", True))
    data = write_data(bench.workdir, steps_per_epoch)
    commands = {name: bench.train_command(f"--dataset=npz:{data}", f"--batch_size={BATCH_SIZE}",
                                          f"--epochs={settings[epochs]}", f"--callbacks={BACKUP_TIMER}",
                                          "--save_model=False", *model_flags, *flags)
                for name, (flags, _, epochs) in runs.items()}
    rounds = []
    for number in range(settings["rounds"]):
        first = number % len(commands)
        progress(f"  {model}, round {number + 1}: {len(commands)} runs interleaved ({', '.join(commands)})")
        records = interleaved_epochs(bench, commands, first)
        for name, record in records.items():
            n = int(name.split()[1]) if name.startswith("backup ") else None
            check(f"{model} {name}", record, runs[name][1], steps_per_epoch // n if n else 0, steps_per_epoch)
        rounds.append(records)
    warm_up = settings["warm_up"]

    def pooled(name, clock="wall"):  # The median of a run's steady epochs over every round.
        return statistics.median(seconds for records in rounds for seconds in records[name][clock][warm_up:])

    def by_round(name, clock="wall"):
        return [steady(records[name], warm_up, clock) for records in rounds]

    figures = {"model": model, "flags": model_flags, "batch_size": BATCH_SIZE, "steps_per_epoch": steps_per_epoch,
               "training_examples": steps_per_epoch * BATCH_SIZE, "default_steps_per_call": default,
               "epochs": {name: settings[key] for name, (_, _, key) in runs.items()}, "warm_up": warm_up,
               "every": {}}
    figures["default_epoch_s"] = pooled("default")  # Epochs pooled over the rounds; differences and ratios by round.
    figures["default_epoch_cpu_s"] = pooled("default", "cpu")
    figures["default_step_ms"] = 1000 * figures["default_epoch_s"] / steps_per_epoch
    if "default again" in runs:
        figures["noise"] = {
            "rounds": [a / b - 1 for a, b in zip(by_round("default again"), by_round("default"))],
            "cpu_rounds": [a / b - 1 for a, b in zip(by_round("default again", "cpu"), by_round("default", "cpu"))]}
        figures["noise"].update(median=statistics.median(figures["noise"]["rounds"]),
                                cpu_median=statistics.median(figures["noise"]["cpu_rounds"]))
    figures["backups_counted"] = sum(sum(record["backups"]) for records in rounds for record in records.values())
    for n in every:
        name, reference = f"backup {n}", reference_of(runs, default, f"backup {n}")
        backups = steps_per_epoch // n
        inside = [seconds for records in rounds for seconds in records[name]["backup_seconds"][warm_up:]]
        inside_cpu = [seconds for records in rounds for seconds in records[name]["backup_cpu_seconds"][warm_up:]]
        rounds_of = {
            "seconds_per_backup": [(a - b) / backups for a, b in zip(by_round(name), by_round(reference))],
            "cpu_seconds_per_backup": [(a - b) / backups for a, b in zip(by_round(name, "cpu"),
                                                                         by_round(reference, "cpu"))],
            "overhead_same_steps_per_call": [a / b - 1 for a, b in zip(by_round(name), by_round(reference))],
            "overhead_vs_default": [a / b - 1 for a, b in zip(by_round(name), by_round("default"))],
            "cpu_overhead_vs_default": [a / b - 1 for a, b in zip(by_round(name, "cpu"), by_round("default", "cpu"))],
        }
        figures["every"][str(n)] = {
            "steps_per_call": runs[name][1], "reference": reference, "backups_per_epoch": backups,
            "epoch_with_backup_s": pooled(name), "epoch_without_s": pooled(reference),
            **{key: statistics.median(values) for key, values in rounds_of.items()},
            **{f"{key}_rounds": values for key, values in rounds_of.items()},
            "seconds_inside_save_per_backup": statistics.mean(inside) / backups,
            "cpu_seconds_inside_save_per_backup": statistics.mean(inside_cpu) / backups,
            "weights_file_bytes": rounds[0][name]["backup_on_disk"][-1]["weights_bytes"],
        }
    raw = [{name: {key: record[key] for key in ("wall", "cpu", "backups", "backup_seconds", "backup_cpu_seconds",
                                                "steps_line", "peak_rss_mib")}
            for name, record in records.items()} for records in rounds]
    return figures, raw


def format_table(results):
    lines = ["| model | N | steps per call | backups per epoch | epoch without backup | epoch with backup "
             "| seconds per backup | CPU seconds per backup | inside the save (CPU) "
             "| overhead, same steps per call | overhead vs default run | rounds' overhead vs default "
             "| CPU-time overhead vs default |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for figures in results:
        for n, f in figures["every"].items():
            rounds = f["overhead_vs_default_rounds"]
            spread = f"{min(rounds):+.1%} to {max(rounds):+.1%}" if len(rounds) > 1 else ""
            lines.append(f"| {figures['model']} | {n} | {f['steps_per_call']} | {f['backups_per_epoch']} "
                         f"| {f['epoch_without_s']:.3f} s | {f['epoch_with_backup_s']:.3f} s "
                         f"| {1000 * f['seconds_per_backup']:.1f} ms | {1000 * f['cpu_seconds_per_backup']:.1f} ms "
                         f"| {1000 * f['cpu_seconds_inside_save_per_backup']:.1f} ms "
                         f"| {f['overhead_same_steps_per_call']:+.1%} | {f['overhead_vs_default']:+.1%} | {spread} "
                         f"| {f['cpu_overhead_vs_default']:+.1%} |")
    return "\n".join(lines)


def describe(figures):
    noise = figures.get("noise")
    noise_text = (f"; the default run against itself: {noise['median']:+.1%} (rounds "
                  f"{', '.join(f'{value:+.1%}' for value in noise['rounds'])}), in CPU time "
                  f"{noise['cpu_median']:+.1%}" if noise else "")
    weights = next(iter(figures["every"].values()))["weights_file_bytes"]
    return (f"{figures['model']}: batch {figures['batch_size']}, {figures['steps_per_epoch']} steps per epoch "
            f"({figures['training_examples']} examples), default {figures['default_steps_per_call']} steps per call, "
            f"default epoch {figures['default_epoch_s']:.3f} s ({figures['default_step_ms']:.2f} ms per step), "
            f"backup file {weights / 1024:.0f} KiB, {figures['backups_counted']} backups counted and checked"
            f"{noise_text}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one round, 100-step epochs, N of 10 and 100 (under 2 minutes, and coarse)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="also write the figures and every epoch here")
    options = parser.parse_args(argv)
    settings = QUICK if options.quick else FULL
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    results, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="backup-cost-") as workdir:
        bench = Bench(workdir, settings)
        for model in MODELS:
            figures, raw[model] = measure_model(bench, model, settings)
            results.append(figures)
    wall = sum(seconds for _, seconds, _ in bench.others)
    others = sum(cpu for _, _, cpu in bench.others) / wall if wall else None
    report = {"machine": {**machine(), "load_average_at_start": load_at_start},
              "mode": "quick" if options.quick else "full", "settings": settings,
              "seconds": round(time.perf_counter() - started, 1), "other_processes_mean_cores": others,
              "waited_for_quiet_s": bench.waited_s, "other_processes_cpu_s_per_group": bench.others,
              "models": results, "raw": raw}
    m = report["machine"]
    print(f"{m['date']}, {m['cpu']}, {m['cores']} cores, TensorFlow {m['tensorflow']} / Keras {m['keras']}, "
          f"{report['mode']} run in {report['seconds']:.0f} s; other processes used "
          f"{others if others is not None else float('nan'):.2f} cores on average meanwhile\n")
    for figures in results:
        print(describe(figures))
    print()
    print(format_table(results))
    if options.json:
        with open(options.json, "w") as stream:
            json.dump(report, stream, indent=2)
        print(f"\nWritten to {options.json}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BenchError as error:
        sys.exit(f"backup_cost.py: a measurement failed: {error}")
