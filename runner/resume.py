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
        # Where each stop the run resumed from, or is stopping at, was: {epoch (1-based), batch (done), signal}.
        self.interruptions = []
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
        return {"epochs": self.epochs, "history": self.history, "seconds": self.seconds(),
                "interruptions": self.interruptions}

    def restore(self, state):
        self.epochs, self.history = state["epochs"], state["history"]
        self.interruptions = state.get("interruptions", [])
        self.earlier_seconds = state["seconds"]
        self.started = time.monotonic()


def callback_state_keeper(callbacks, epoch_log, epoch_counter=None):
    """Returns a Keras callback that keeps the run's state with the backup, or None without one.

    It must run last: it restores the others' state once their own
    `on_train_begin` has reset it, and writes each backup once the others
    have done their work for the step or the epoch (the backup is then due:
    callbacks/subclasses/backup_and_restore.py). A backup made inside an
    epoch holds where (the epoch, the batches of it done) and Keras's running
    means of the epoch's metrics so far; a resume continues the epoch from
    there (keras_fixes/mid_epoch.py), so that the epoch's metrics are those of
    the whole epoch. `epoch_counter` (datasets.EpochCounter), if given, is
    told how many of that epoch's batches are dropped.
    """
    import keras

    backups = [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    if not backups:
        return None
    # Each callback with the attributes that hold its progress, as its family declares them.
    stateful = [(callback, family.resume_state) for callback in callbacks
                if (family := family_of(callback)) is not None and family.resume_state]
    # Each callback that drops, on resume, what it wrote after the backup.
    resumers = [(callback, family.on_resume) for callback in callbacks
                if (family := family_of(callback)) is not None and family.on_resume]
    return _keeper_class()(backups[0], stateful, epoch_log, epoch_counter, resumers)


def resume_point(backup_dir):
    """Returns (epochs finished, batches of the next epoch done) of the backup in `backup_dir`, or None."""
    metadata = files.read_json(os.path.join(backup_dir, BACKUP_METADATA_FILE))
    if metadata is None or "epoch" not in metadata:
        return None
    return metadata["epoch"], metadata.get("step", 0)


_KEEPER = []


def _keeper_class():
    if _KEEPER:
        return _KEEPER[0]
    import keras

    from kerasrun.keras_fixes import mid_epoch

    class KeepState(keras.callbacks.Callback):
        """Saves the run's state with every backup and restores it on resume; see `callback_state_keeper`."""

        def __init__(self, backup, stateful, epoch_log, epoch_counter=None, resumers=()):
            super().__init__()
            self.backup, self.stateful, self.epoch_log = backup, stateful, epoch_log
            self.epoch_counter, self.resumers = epoch_counter, resumers
            self.epoch = self.step = 0  # where training is: the epoch, and the batches of it done
            self.resuming = None  # the saved state of a backup made inside an epoch, until that epoch begins

        def idle_hooks(self):
            # Backups every N batches are written after a step; with one an epoch, never.
            return ("on_train_batch_end",) if self.backup.save_freq == "epoch" else ()

        def on_train_begin(self, logs=None):
            self.backup.keeper = self
            backup_dir = self.backup.backup_dir
            saved = files.read_json(os.path.join(backup_dir, STATE_FILE))
            point = resume_point(backup_dir)
            if saved is None or point is None or _position(saved) != list(point):
                return
            for (callback, _), attributes in zip(self.stateful, saved["callbacks"]):
                for name, value in attributes.items():
                    setattr(callback, name, value)
            for variable in _seed_states(self.model):
                if variable.path in saved["seed_states"]:
                    variable.assign(saved["seed_states"][variable.path])
            self.epoch_log.restore(saved["epoch_log"])
            _restore_best_weights(backup_dir, self.stateful)
            for callback, drop_after in self.resumers:
                drop_after(callback, point[0])
            self.epoch, self.step = point
            stops = self.epoch_log.interruptions
            if not stops or [stops[-1]["epoch"] - 1, stops[-1]["batch"]] != list(point):
                # Stopped with no signal the runner saw (kill -9, a crash, a lost machine): resumed from the last backup.
                stops.append({"epoch": point[0] + 1, "batch": point[1], "signal": None})
            self.resuming = saved if point[1] else None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.step = epoch, 0
            saved, self.resuming = self.resuming, None
            if saved is not None and _position(saved)[0] == epoch:
                # Keras has just zeroed the epoch's running means: they go on from the backup's.
                for variable, value in zip(self.model.metrics_variables, saved["metrics"]):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
                self.step = _position(saved)[1]
                self.backup.resume_inside(self.step)
                mid_epoch.start_next_epoch_at(self.step)
                if self.epoch_counter is not None:
                    self.epoch_counter.skip(self.step)

        def on_train_batch_end(self, batch, logs=None):
            if self.backup.due:
                steps = (self.params or {}).get("steps")
                self.step = min(batch + 1, steps) if steps else batch + 1
                if self.step != steps:  # After an epoch's last step, the backup of its end follows: it stays due.
                    self.save()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch, self.step = epoch + 1, 0
            if self.backup.due:
                self.save()

        def on_train_end(self, logs=None):
            mid_epoch.disarm()

        def save_before_stop(self, step):
            """Writes a backup at `step` of the current epoch (a call begins there), as training stops on a signal."""
            self.step = step
            self.save()

        def save(self):
            """Writes the backup, with the state of every callback, the random generators and the epoch's means."""
            self.backup.sync()
            inside = self.step > 0
            state = {
                "position": [self.epoch, self.step],
                "callbacks": [{name: plain(getattr(c, name, None)) for name in names} for c, names in self.stateful],
                "seed_states": {v.path: np.asarray(v).tolist() for v in _seed_states(self.model)},
                "metrics": [np.asarray(v).tolist() for v in self.model.metrics_variables] if inside else [],
                "epoch_log": self.epoch_log.state(),
            }
            self.backup.write(self.epoch, self.step, json.dumps(state), STATE_FILE,
                              also=lambda: _save_best_weights(self.backup.backup_dir, self.stateful))

    _KEEPER.append(KeepState)
    return KeepState


def _position(saved):
    """[epochs finished, batches of the next epoch done] a saved state was made at (older ones: after an epoch)."""
    return saved.get("position") or [saved["epoch"], 0]


def _seed_states(model):
    """The state variables of the model's random generators (Dropout's, for one)."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


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
