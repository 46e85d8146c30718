"""Training state that survives a restart, beside Keras's BackupAndRestore backup.

BackupAndRestore brings back the weights, the optimizer and the epoch, but
the other callbacks start afresh (early stopping forgets its patience,
ReduceLROnPlateau its plateau, ModelCheckpoint its best value), and so do the
random generators of layers such as Dropout, whose state is not among the
saved weights. This callback saves both with every backup and restores them
when a run resumes, so that it continues exactly as if never stopped.
"""

import json
import os

import numpy as np

from runner import files

STATE_FILE = "runner_state.json"
BEST_WEIGHTS_FILE = "early_stopping_best.npz"
# Attributes that hold each Keras callback's progress, by class name.
_STATEFUL = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "ModelCheckpoint": ("best",),
}


def callback_state_saver(callbacks, skip_epoch=lambda: False):
    """Returns a Keras callback that keeps `callbacks`' state with the backup, or None without one.

    It must run after the others: it restores their state once their own
    `on_train_begin` has reset it, and saves it once the backup is written.

    Args:
        callbacks: The run's callbacks.
        skip_epoch: Tells, at an epoch's end, that the epoch was cut short and
            not backed up, so its state must not be saved either.
    """
    import keras

    backups = [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    if not backups or backups[0].save_freq != "epoch":
        return None  # Per-batch backups resume mid-epoch, where this state is not kept.
    stateful = [c for c in callbacks if type(c).__name__ in _STATEFUL]
    backup_dir = backups[0].backup_dir

    class KeepCallbackState(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            saved = files.read_json(os.path.join(backup_dir, STATE_FILE))
            if saved is not None and saved["epoch"] == _backup_epoch(backup_dir):
                for callback, attributes in zip(stateful, saved["callbacks"]):
                    for name, value in attributes.items():
                        setattr(callback, name, value)
                for variable in _seed_states(self.model):
                    if variable.path in saved["seed_states"]:
                        variable.assign(saved["seed_states"][variable.path])
                _restore_best_weights(backup_dir, stateful)

        def on_epoch_end(self, epoch, logs=None):
            if skip_epoch():
                return
            state = {
                "epoch": epoch + 1,
                "callbacks": [_state_of(c) for c in stateful],
                "seed_states": {v.path: np.asarray(v).tolist() for v in _seed_states(self.model)},
            }
            _save_best_weights(backup_dir, stateful)
            files.write_atomically(os.path.join(backup_dir, STATE_FILE), json.dumps(state))

    return KeepCallbackState()


def _seed_states(model):
    """The state variables of the model's random generators (Dropout's, for one)."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def _state_of(callback):
    return {name: _plain(getattr(callback, name, None)) for name in _STATEFUL[type(callback).__name__]}


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return float(value) if hasattr(value, "numpy") else value


def _backup_epoch(backup_dir):
    metadata = files.read_json(os.path.join(backup_dir, "training_metadata.json"))
    return None if metadata is None else metadata.get("epoch")


def _save_best_weights(backup_dir, stateful):
    for callback in stateful:
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
    for callback in stateful:
        if hasattr(callback, "best_weights"):
            callback.best_weights = weights
