"""EpochTimer that also counts and times the backups BackupAndRestore writes: used by benchmarks/backup_cost.py.

    python train.py --backup_and_restore True --backup_and_restore_save_freq N \
        --callbacks benchmarks/backup_timer.py:BackupTimer

Adds to EpochTimer's record (the JSON file named by $EPOCH_TIMER_FILE), per
epoch (from the last epoch's end to this one's, EpochTimer's window): how
many backups the runner's BackupAndRestore wrote (calls of its `write`; the
backup of an epoch's end is written after every callback's `on_epoch_end`,
so it falls in the next epoch's window), the seconds and the CPU seconds (the process's, all threads)
spent inside them, when each began and ended (time.perf_counter, so that a
benchmark that stops and resumes the process can count only the time it
ran), and what the backup directory
held at the epoch's end (the weights file's size and the epoch and batch its
metadata records). That shows the backups happened and landed on disk; the
time inside them is the save alone, which no noise between runs blurs (the
benchmark's main figure, the difference between runs with and without the
backup, also counts what the save costs outside itself, such as batch-end
hooks run in line with the steps).

With $BACKUP_TIMER_STOP_AT_TRAIN_BEGIN set, the process stops itself
(SIGSTOP) when training begins, before its first mark: benchmarks/backup_cost.py
lets its runs start up together and then runs their training in turns.

Like EpochTimer it has no batch hooks, so `--steps_per_execution auto`
picks the same number of steps per call with it as without it. The clock
wraps the class's method, not the instance: the runner still calls the
callback's hooks as it would (runner/dispatch.py, `idle_hooks`).
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # train.py loads this file by its path.
from epoch_timer import EPOCH_TIMER_FILE_ENV, EpochTimer, _write_json  # noqa: E402

STOP_AT_TRAIN_BEGIN_ENV = "BACKUP_TIMER_STOP_AT_TRAIN_BEGIN"

# Backups written since the last epoch's end: [count, seconds, CPU seconds, [[start, end], ...]], and the
# callback that wrote the last one.
_SINCE_EPOCH_END = [0, 0.0, 0.0, []]
_LAST_SAVER = [None]


def _clock_backups():
    """Wraps the runner's BackupAndRestore.write (once per process) with a counter and a clock."""
    from kerasrun.callbacks.subclasses.backup_and_restore import BackupAndRestore

    original = BackupAndRestore.write
    if getattr(original, "_clocked", False):
        return

    def write(self, *args, **kwargs):
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            ended = time.perf_counter()
            _SINCE_EPOCH_END[0] += 1
            _SINCE_EPOCH_END[1] += ended - started
            _SINCE_EPOCH_END[2] += time.process_time() - cpu_started
            _SINCE_EPOCH_END[3].append([started, ended])
            _LAST_SAVER[0] = self

    write._clocked = True
    BackupAndRestore.write = write


def _on_disk(saver):
    """What the backup directory of `saver` holds now: {"weights_bytes", "metadata"} (None when nothing)."""
    if saver is None or not os.path.exists(saver._weights_path):
        return None
    with open(saver._training_metadata_path) as stream:
        metadata = json.load(stream)
    return {"weights_bytes": os.path.getsize(saver._weights_path), "metadata": metadata}


class BackupTimer(EpochTimer):
    """EpochTimer, plus each epoch's backups: their number, their seconds, and the backup left on disk."""

    def on_train_begin(self, logs=None):
        _clock_backups()
        _SINCE_EPOCH_END[:] = [0, 0.0, 0.0, []]
        self._backups, self._backup_seconds, self._backup_cpu_seconds, self._backup_times = [], [], [], []
        self._on_disk = []
        if os.environ.get(STOP_AT_TRAIN_BEGIN_ENV):
            os.kill(os.getpid(), signal.SIGSTOP)  # Until the benchmark lets this run's training start.
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # The epoch's time first: what follows is not the run's work.
        self._backups.append(_SINCE_EPOCH_END[0])
        self._backup_seconds.append(_SINCE_EPOCH_END[1])
        self._backup_cpu_seconds.append(_SINCE_EPOCH_END[2])
        self._backup_times.append(_SINCE_EPOCH_END[3])
        _SINCE_EPOCH_END[:] = [0, 0.0, 0.0, []]
        self._on_disk.append(_on_disk(_LAST_SAVER[0]))

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        path = os.environ.get(EPOCH_TIMER_FILE_ENV)
        if not path:
            return
        with open(path) as stream:
            record = json.load(stream)
        record.update(backups=self._backups, backup_seconds=self._backup_seconds,
                      backup_cpu_seconds=self._backup_cpu_seconds, backup_times=self._backup_times,
                      backup_on_disk=self._on_disk)
        _write_json(EPOCH_TIMER_FILE_ENV, record)
