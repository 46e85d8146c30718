"""SIGINT and SIGTERM stop training after the steps under way (one call into the backend), so that nothing is lost.

The first signal ends training after the step it is in; the epoch in
progress is dropped (the backup of the last finished one stays, to resume
from; a signal during an epoch's last step lets that epoch end first) and
the results record the run as interrupted. A second Ctrl-C stops
at once.
"""

import signal
import sys

from kerasrun.core.critical import busy


class StopRequested(Exception):
    """Ends `model.fit` after the current step, once a signal has asked for it."""


class GracefulStop:
    """Catches SIGINT and SIGTERM for the duration of a run."""

    def __init__(self):
        self.received = None
        self.forced = False  # a second Ctrl-C stopped training at once

    def install(self):
        """Installs the handlers."""
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def reason(self):
        """Returns the line that says which signal stopped the run, for stderr and the results' message."""
        name = signal.Signals(self.received).name
        return f"stopped by {name}" + (" (Ctrl-C)" if self.received == signal.SIGINT else "")

    def exit_code(self):
        """Returns 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received

    def callback(self):
        """Returns a Keras callback that ends `fit` with StopRequested once a signal has arrived.

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
            def on_train_batch_begin(self, batch, logs=None):
                if stopper.received is not None:
                    raise StopRequested()

        return StopOnSignal()

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
