"""The record of finished epochs, and the training state that survives a restart.

BackupAndRestore brings back the weights, the optimizer and the epoch, but
the other callbacks start afresh (early stopping forgets its patience,
ReduceLROnPlateau its plateau, ModelCheckpoint its best value), and so do the
random generators of layers such as Dropout, whose state is not among the
saved weights, and the record of the epochs before the restart. The keeper
saves all of it with every backup and restores it when a run resumes, so that
the run continues, and is reported, exactly as if it had never stopped.
"""

import json
import os
import time

import numpy as np

from kerasrun.callbacks.builder import family_of
from kerasrun.core import files
from kerasrun.keras_fixes import BACKUP_METADATA_FILE

STATE_FILE = "runner_state.json"
BEST_WEIGHTS_FILE = "early_stopping_best.npz"


def plain(value):
    """Returns a number (NumPy, tensor or Python) as a Python float or int, for JSON."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return float(value) if hasattr(value, "numpy") else value


class EpochLog:
    """Every finished epoch's number (1-based) and logs, and the seconds spent, across restarts."""

    def __init__(self):
        self.epochs = []
        self.history = {}
        self.earlier_seconds = 0.0  # spent by the processes before a resume
        self.started = time.monotonic()

    def seconds(self):
        """Returns the wall time of the run so far, this process and the ones before."""
        return self.earlier_seconds + time.monotonic() - self.started

    def callback(self):
        """Returns the Keras callback that records each finished epoch; it must run after the others."""
        import keras

        log = self

        class RecordEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                log.epochs.append(epoch + 1)
                for key, value in (logs or {}).items():
                    log.history.setdefault(key, []).append(plain(value))

        return RecordEpoch()

    def state(self):
        return {"epochs": self.epochs, "history": self.history, "seconds": self.seconds()}

    def restore(self, state):
        self.epochs, self.history = state["epochs"], state["history"]
        self.earlier_seconds = state["seconds"]
        self.started = time.monotonic()


def callback_state_keeper(callbacks, epoch_log):
    """Returns a Keras callback that keeps the run's state with the backup, or None without one.

    It must run last: it restores the others' state once their own
    `on_train_begin` has reset it, and saves it once the backup is written.
    """
    import keras

    backups = [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    if not backups or backups[0].save_freq != "epoch":
        return None  # Per-batch backups resume mid-epoch, where this state is not kept.
    # Each callback with the attributes that hold its progress, as its family declares them.
    stateful = [(callback, family.resume_state) for callback in callbacks
                if (family := family_of(callback)) is not None and family.resume_state]
    backup_dir = backups[0].backup_dir

    class KeepState(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            saved = files.read_json(os.path.join(backup_dir, STATE_FILE))
            if saved is None or saved["epoch"] != _backup_epoch(backup_dir):
                return
            for (callback, _), attributes in zip(stateful, saved["callbacks"]):
                for name, value in attributes.items():
                    setattr(callback, name, value)
            for variable in _seed_states(self.model):
                if variable.path in saved["seed_states"]:
                    variable.assign(saved["seed_states"][variable.path])
            epoch_log.restore(saved["epoch_log"])
            _restore_best_weights(backup_dir, stateful)

        def on_epoch_end(self, epoch, logs=None):
            state = {
                "epoch": epoch + 1,
                "callbacks": [{name: plain(getattr(c, name, None)) for name in names} for c, names in stateful],
                "seed_states": {v.path: np.asarray(v).tolist() for v in _seed_states(self.model)},
                "epoch_log": epoch_log.state(),
            }
            _save_best_weights(backup_dir, stateful)
            files.write_atomically(os.path.join(backup_dir, STATE_FILE), json.dumps(state))

    return KeepState()


def _seed_states(model):
    """The state variables of the model's random generators (Dropout's, for one)."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def _backup_epoch(backup_dir):
    metadata = files.read_json(os.path.join(backup_dir, BACKUP_METADATA_FILE))
    return None if metadata is None else metadata.get("epoch")


def _save_best_weights(backup_dir, stateful):
    for callback, _ in stateful:
        if getattr(callback, "best_weights", None) is not None:
            path = os.path.join(backup_dir, BEST_WEIGHTS_FILE)
            temporary = path + ".tmp.npz"
            np.savez(temporary, *[np.asarray(weight) for weight in callback.best_weights])
            os.replace(temporary, path)


def _restore_best_weights(backup_dir, stateful):
    path = os.path.join(backup_dir, BEST_WEIGHTS_FILE)
    if not os.path.exists(path):
        return
    with np.load(path) as archive:
        weights = [archive[f"arr_{index}"] for index in range(len(archive.files))]
    for callback, _ in stateful:
        if hasattr(callback, "best_weights"):
            callback.best_weights = weights
