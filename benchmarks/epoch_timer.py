"""Callbacks for the benchmark: when each epoch ends, when the first step ends, the peak memory.

Used by benchmarks/bench.py on both sides of a comparison, as
`python train.py --callbacks benchmarks/epoch_timer.py:EpochTimer` and inside
benchmarks/bare_keras.py, so train.py and the bare script are timed alike.
"""

import json
import os
import time

import keras

# The file each callback writes its JSON record to.
EPOCH_TIMER_FILE_ENV = "EPOCH_TIMER_FILE"
TIME_MARK_FILE_ENV = "TIME_MARK_FILE"


def peak_rss_mib():
    """Returns this process's peak resident set size so far in MiB (VmHWM, Linux), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _write_json(env_name, record):
    path = os.environ.get(env_name)
    if path:
        with open(path, "w") as stream:
            json.dump(record, stream)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall and CPU time of every epoch in the JSON file named by $EPOCH_TIMER_FILE.

    CPU time (all the process's threads) is the steadier of the two when
    other work shares the machine, and shows work done in background threads.

    An epoch's time runs from the end of the previous epoch (or the start of
    training) to the end of this one, as this callback sees it. Whatever any
    other callback does at an epoch's begin or end therefore falls in some
    epoch's time, whichever order the callbacks run in; so does validation.

    It also records when training began and each epoch ended (time.perf_counter,
    the same clock in every process), so that bench.py can count only the
    time the process ran when it runs two at once, taking turns.
    It has no batch hooks: it adds nothing to the steps it times.
    """

    def on_train_begin(self, logs=None):
        self._last = time.perf_counter(), time.process_time()
        self._seconds, self._cpu_seconds = [], []
        self._begin, self._ends = self._last[0], []

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter(), time.process_time()
        self._seconds.append(now[0] - self._last[0])
        self._cpu_seconds.append(now[1] - self._last[1])
        self._ends.append(now[0])
        self._last = now

    def on_train_end(self, logs=None):
        _write_json(EPOCH_TIMER_FILE_ENV, {"epoch_seconds": self._seconds, "epoch_cpu_seconds": self._cpu_seconds,
                                           "peak_rss_mib": peak_rss_mib(), "train_begin_time": self._begin,
                                           "epoch_end_times": self._ends})


class FirstStepTimer(keras.callbacks.Callback):
    """Writes {"time": time.time()} when the first training step has finished to $TIME_MARK_FILE, then stops training.

    Stopping after that step keeps start-up measurements short; a runner
    reports such a run as stopped early, which is fine here.
    """

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0 and not getattr(self, "_done", False):
            self._done = True
            _write_json(TIME_MARK_FILE_ENV, {"time": time.time()})
            self.model.stop_training = True

