"""Keras's BackupAndRestore, writing each backup whole or not at all."""

import json
import os
import shutil

import keras

from kerasrun.core.critical import uninterruptible

# The new backup is written beside the old one under these names, then takes its place.
_PARTIAL = ".partial-"


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore`, whose backup is never left half written.

    Keras writes the weights over the previous backup in place, then its
    epoch: a stop in between (a second Ctrl-C, `kill -9`, a preemption)
    leaves a damaged file, or new weights beside the old epoch, and every
    later resume fails or starts from the wrong epoch. This class writes both
    files under temporary names and renames them into place, so a backup is
    the old one or the new one; a second Ctrl-C lets it finish (the run then
    stops after the next step, its first Ctrl-C's stop, with the epoch recorded).

    It also counts the first call of each epoch right under several steps
    per call (`on_epoch_begin`), so that a backup every `save_freq` batches
    is made at those batches, and with a `save_freq` of batches it backs up
    at the end of each epoch too, so that a resume never redoes an epoch's end
    (its validation, its records).

    The runner's keeper of state (runner/resume.py) sets `keeper`: the backup
    is then due when Keras would write it, and the keeper writes it, with the
    runner's state and the position in the epoch (`write`), once every other
    callback has done its work for the step or the epoch.

    Arguments are those of `keras.callbacks.BackupAndRestore`. The private
    members of Keras's class this one uses are listed in keras_fixes/__init__.py
    (`BACKUP_PRIVATE`), where a test fails when Keras drops one.
    """

    keeper = None
    due = False

    def on_epoch_begin(self, epoch, logs=None):
        # Keras counts the batches of a call as its last batch's number minus the last one seen, which it
        # starts at 0 each epoch: a first call of N steps (ending at batch N - 1) would count N - 1. As if
        # batch -1 had been seen, it counts N (and 1 with one step per call, as Keras does).
        self._last_batch_seen = -1

    def resume_inside(self, step):
        """Counts the batches of a call as in the whole epoch, when the epoch resumes after its first `step` batches."""
        self._last_batch_seen = step - 1

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._save_model()

    def _save_model(self):
        if self.keeper is not None:
            self.due = True
        else:
            self.write()

    def sync(self):
        """Brings the model's variables up to date; on JAX, Keras holds them apart from the model during an epoch."""
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def write(self, epoch=None, step=0, state=None, state_file=None, also=None):
        """Writes the backup: the weights, then the runner's state, then the metadata that says where it was made.

        Args:
            epoch: Epochs finished when it was made; the epoch a resume
                begins (Keras's `epoch`). Defaults to None: Keras's count.
            step: Batches of that epoch finished. Defaults to 0.
            state: Text of the runner's state, written to `state_file`
                in the backup's folder with it. Defaults to None (none).
            state_file: Its file name.
            also: A function that writes more files into the backup's
                folder, called before the metadata is; None for none.
        """
        self.due = False
        epoch = self._current_epoch if epoch is None else epoch
        with uninterruptible():
            os.makedirs(self.backup_dir, exist_ok=True)
            if self.double_checkpoint:
                for current, previous in ((self._weights_path, self._prev_weights_path),
                                          (self._training_metadata_path, self._prev_training_metadata_path)):
                    if os.path.exists(current):
                        shutil.copyfile(current, previous)
            weights, metadata = (os.path.join(self.backup_dir, _PARTIAL + os.path.basename(path))
                                 for path in (self._weights_path, self._training_metadata_path))
            self.model.save_weights(filepath=weights, overwrite=True)
            with open(metadata, "w") as stream:
                json.dump({"epoch": epoch, "batch": self._last_batch_seen, "step": step}, stream)
            os.replace(weights, self._weights_path)
            if state is not None:
                own = os.path.join(self.backup_dir, state_file)
                with open(own + ".partial", "w") as stream:
                    stream.write(state)
                os.replace(own + ".partial", own)
            if also is not None:
                also()
            os.replace(metadata, self._training_metadata_path)
