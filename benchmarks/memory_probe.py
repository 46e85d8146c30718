"""A callback for the memory benchmark: records the process's resident memory after every epoch."""

import json
import os

import keras


def resident_mib():
    """Returns this process's resident set size in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class MemoryProbe(keras.callbacks.Callback):
    """Appends {"epoch", "rss_mib"} to the JSON-lines file named by $MEMORY_PROBE_FILE."""

    def on_epoch_end(self, epoch, logs=None):
        with open(os.environ["MEMORY_PROBE_FILE"], "a") as stream:
            stream.write(json.dumps({"epoch": epoch + 1, "rss_mib": resident_mib()}) + "\n")


def epoch_hook(epoch, logs):
    """A LambdaCallback hook, so that group is on too; it does nothing."""


def keep_rate(epoch, lr):
    """A LearningRateScheduler schedule that keeps the rate it is given, so ReduceLROnPlateau can run beside it."""
    return lr
