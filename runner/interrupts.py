"""SIGINT and SIGTERM stop training after the current step, so that nothing is lost.

The first signal asks Keras to stop after the step it is in; the callbacks
then finish the epoch as usual (a backup is written when enabled) and the
results record the run as interrupted. A second Ctrl-C stops at once.
"""

import signal
import sys


class GracefulStop:
    """Catches SIGINT and SIGTERM for the duration of a run."""

    def __init__(self):
        self.received = None
        self.partial_epoch = False  # True when the stop cut an epoch short.

    def install(self):
        """Installs the handlers."""
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def exit_code(self):
        """Returns 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received

    def callback(self, others):
        """Returns a Keras callback that stops training once a signal has arrived.

        Args:
            others: The run's other callbacks. A BackupAndRestore among them
                would delete its backup when training ends; after a signal the
                backup is what the next run resumes from, so it is kept.
        """
        import keras

        stopper = self

        class StopOnSignal(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if stopper.received is not None and not self.model.stop_training:
                    self.model.stop_training = True
                    steps = self.params.get("steps")
                    stopper.partial_epoch = steps is None or batch + 1 < steps

            def on_epoch_end(self, epoch, logs=None):
                # Keras ends a cut-short epoch like a finished one; backing it up
                # would make a resumed run skip the rest of it.
                if stopper.partial_epoch:
                    for callback in others:
                        if isinstance(callback, keras.callbacks.BackupAndRestore):
                            callback.save_freq = None

            def on_train_end(self, logs=None):
                if stopper.received is not None:
                    for callback in others:
                        if isinstance(callback, keras.callbacks.BackupAndRestore):
                            callback.delete_checkpoint = False

        return StopOnSignal()

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # The second Ctrl-C: stop now.
        self.received = signum
        name = signal.Signals(signum).name
        print(f"\ntrain.py: {name} received: stopping after the current step "
              f"(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
