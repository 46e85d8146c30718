"""SIGINT and SIGTERM stop training after the steps under way (one call into the backend), so that nothing is lost.

The first signal ends training after the step it is in (a signal during an
epoch's last step lets that epoch end first). With --backup_and_restore, a
backup is written at that step, whatever its save frequency, and the same
command resumes there, inside the epoch (runner/resume.py); without, the
epoch in progress is lost. The results record the run as interrupted, and
where it stopped. A second Ctrl-C stops at once, unless a backup is being
written: then it lets the backup finish. A second SIGTERM changes nothing.
"""

import signal
import sys

from kerasrun.core.critical import busy


def _quiet_about_a_second_ctrl_c(hook):
    """Returns an unraisable-exception hook that says nothing of a KeyboardInterrupt, and passes the rest to `hook`.

    A second Ctrl-C raises KeyboardInterrupt wherever Python is: inside a
    garbage-collection callback or a finalizer (JAX, which Keras imports
    on either backend, registers one), Python cannot raise it, and would
    print "Exception ignored in ..." with a traceback. The run stops anyway,
    after the step, on the first signal.
    """
    if getattr(hook, "quiet_about_ctrl_c", False):
        return hook

    def quiet(unraisable):
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            hook(unraisable)

    quiet.quiet_about_ctrl_c = True
    return quiet


class StopRequested(Exception):
    """Ends `model.fit` after the current step, once a signal has asked for it."""


class GracefulStop:
    """Catches SIGINT and SIGTERM for the duration of a run."""

    def __init__(self):
        self.received = None
        self.forced = False  # a second Ctrl-C stopped training at once
        self.elsewhere = False  # the signal reached another worker of the cluster, not this one

    def install(self):
        """Installs the handlers."""
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        sys.unraisablehook = _quiet_about_a_second_ctrl_c(sys.unraisablehook)

    def reason(self):
        """Returns the line that says which signal stopped the run, for stderr and the results' message."""
        name = signal.Signals(self.received).name
        if self.elsewhere:
            return f"stopped: another worker of the cluster received {name}"
        return f"stopped by {name}" + (" (Ctrl-C)" if self.received == signal.SIGINT else "")

    def exit_code(self):
        """Returns 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received

    def callback(self, epoch_log, before_stop=None, agree=None):
        """Returns a Keras callback that ends `fit` with StopRequested once a signal has arrived.

        It records where in `epoch_log.interruptions` (the epoch, the batches
        of it done, the signal), then calls `before_stop(batch)` if given (the
        keeper of state writes a backup there, runner/resume.py), so that the
        same command resumes at that step. With `agree` (a worker of a
        multi-worker run: runner/distribution.py `agree_on_stop`), the
        workers agree before each step whether any was signalled, and all
        stop at that step together, each writing its backup there.

        Raising, rather than setting `model.stop_training`, keeps Keras from
        ending the cut-short epoch like a finished one: no callback logs,
        checkpoints or backs it up, and BackupAndRestore does not delete its
        backup (its `on_train_end` never runs), which the next run resumes from.

        It looks before each call into the backend rather than after one, which
        stops at the same place (a signal during an epoch's last call lets that
        epoch end, with its records and backup: its work is done), and leaves
        the run's callbacks without a batch-end hook, so that Keras can queue
        the next call on JAX while one still runs (runner/dispatch.py).
        """
        import keras

        stopper = self

        class StopOnSignal(keras.callbacks.Callback):
            epoch = 0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_begin(self, batch, logs=None):
                if agree is not None:
                    stopper.agreed(agree(None if stopper.received is None else signal.Signals(stopper.received).name))
                if stopper.received is not None:
                    epoch_log.interruptions.append(
                        {"epoch": self.epoch + 1, "batch": batch, "signal": signal.Signals(stopper.received).name})
                    if before_stop is not None:
                        before_stop(batch)
                    raise StopRequested()

        return StopOnSignal()

    def agreed(self, name):
        """Takes the signal the workers of a cluster agreed to stop on (None: none), if this one received none."""
        if name is not None and self.received is None:
            self.received = signal.Signals[name]
            self.elsewhere = True

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            self.forced = True
            if busy():  # Writing the backup a resume starts from: training stops after the next step instead.
                print("\ntrain.py: stopping once the backup being written and the epoch's records are complete",
                      file=sys.stderr, flush=True)
                return
            raise KeyboardInterrupt  # The second Ctrl-C: stop now.
        self.received = signum
        name = signal.Signals(signum).name
        print(f"\ntrain.py: {name} received: stopping after the steps under way "
              f"(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
