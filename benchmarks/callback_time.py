"""Times each callback's own work inside one train.py run: what benchmarks/bench.py reports per callback.

    python benchmarks/callback_time.py OUT.json [train.py flags ...]

Runs train.py in this process with the flags given, after wrapping every
hook (on_epoch_end, on_train_batch_begin, ...) of every callback Keras's
`fit` gets with a clock, and adding benchmarks/epoch_timer.py:EpochTimer to
its `--callbacks=` plug-ins. Writes to OUT.json the seconds each callback
class spent in its hooks, per hook and epoch, and the wall time of each epoch.

Unlike comparing two runs, this does not depend on the machine being equally
fast for both, so it shows costs of a few milliseconds per epoch. It sees
only the work done inside the hooks: a cost a callback causes elsewhere
(in a thread of its own, or in TensorFlow's step) is not in it. Hooks a
callback leaves as Keras's do-nothing defaults, or says have nothing to do,
are not timed: the runner does not call them (runner/dispatch.py), and a
clock round each call would cost several times the call. (A clock is set on
the instance; for ModelCheckpoint and BackupAndRestore that would make the
runner call a batch hook it skips otherwise.)

In OUT.json, hook_seconds[class][hook][epoch] is the time the callbacks of
that class spent in that hook in that epoch (numbered from 0; "-1" is
before the first epoch, where on_train_begin runs).
"""

import collections
import json
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(os.path.dirname(HERE), "train.py")
EPOCH_TIMER = f"{os.path.join(HERE, 'epoch_timer.py')}:EpochTimer"
# Where EpochTimer writes its record (not imported from epoch_timer.py: that would load Keras).
EPOCH_TIMER_FILE_ENV = "EPOCH_TIMER_FILE"

runpy.run_path(os.path.join(os.path.dirname(TRAIN), "__init__.py"))

from kerasrun.core.keras_names import CALLBACK_HOOKS  # noqa: E402

# The hooks fit calls (evaluate's for validation included), each timed where it is called.
HOOKS = tuple(hook for hook in CALLBACK_HOOKS if not hook.startswith("on_predict"))


def time_hooks(spent):
    """Makes every CallbackList Keras builds wrap its callbacks' hooks with a clock.

    `spent[name][hook][epoch]` adds up the seconds the callbacks of class
    `name` spent in `hook` during epoch `epoch` (counted from 0 by the
    list's on_epoch_begin; -1 before the first epoch).
    """
    from keras.src.callbacks import callback_list

    from kerasrun.runner.dispatch import defines, idle_hooks

    epoch = [-1]
    original_init = callback_list.CallbackList.__init__
    original_epoch_begin = callback_list.CallbackList.on_epoch_begin

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        for callback in members(self.callbacks):
            if getattr(callback, "_hooks_timed", False):
                continue  # fit's list is reused by evaluate for validation.
            callback._hooks_timed = True
            idle = idle_hooks(callback)
            for hook in HOOKS:
                if not defines(callback, hook) or hook in idle:
                    continue  # Does nothing, and the runner does not call it.
                setattr(callback, hook, timed(getattr(callback, hook), spent[type(callback).__name__][hook], epoch))

    def on_epoch_begin(self, number, logs=None):
        epoch[0] = number
        return original_epoch_begin(self, number, logs)

    callback_list.CallbackList.__init__ = init
    callback_list.CallbackList.on_epoch_begin = on_epoch_begin


def members(callbacks):
    """The callbacks in a CallbackList, with the runner's one combined callback (runner/dispatch.py) opened."""
    for callback in callbacks:
        yield from callback.callbacks if type(callback).__name__ == "RunCallbacks" else [callback]


def timed(method, seconds_by_epoch, epoch):
    clock = time.perf_counter

    def call(*args, **kwargs):
        started = clock()
        try:
            return method(*args, **kwargs)
        finally:
            seconds_by_epoch[epoch[0]] += clock() - started

    return call


def with_epoch_timer(flags):
    """Returns train.py's flags with EpochTimer among the `--callbacks=` plug-ins."""
    if not any(flag.startswith("--callbacks=") for flag in flags):
        return [*flags, f"--callbacks={EPOCH_TIMER}"]
    return [f"{flag},{EPOCH_TIMER}" if flag.startswith("--callbacks=") and "EpochTimer" not in flag else flag
            for flag in flags]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    out, flags = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spent = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(float)))
    time_hooks(spent)
    epoch_file = os.path.join(os.path.dirname(os.path.abspath(out)), f".epochs-{os.getpid()}.json")
    os.environ[EPOCH_TIMER_FILE_ENV] = epoch_file
    sys.argv = [TRAIN, *with_epoch_timer(flags)]
    try:
        runpy.run_path(TRAIN, run_name="__main__")
    except SystemExit as end:
        if end.code not in (0, None):
            raise
    with open(epoch_file) as stream:
        epochs = json.load(stream)["epoch_seconds"]
    os.unlink(epoch_file)
    with open(out, "w") as stream:
        json.dump({"epoch_seconds": epochs,
                   "hook_seconds": {name: {hook: {str(epoch): seconds for epoch, seconds in by_epoch.items()}
                                           for hook, by_epoch in hooks.items()}
                                    for name, hooks in spent.items()}}, stream, indent=1)


if __name__ == "__main__":
    main()
