"""Keras's ModelCheckpoint, writing each file whole, keeping only the newest few, and the best model apart."""

import os
import shutil
import sys
import time

import keras
import numpy as np

from kerasrun.callbacks.model_checkpoint import template_pattern
from kerasrun.core import files

# File times come from a coarser clock than time.time(): a file written just after training
# started may carry a time a little before it. Files this much older still count as the run's own.
_CLOCK_SLACK_S = 1.0


class ModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint`, whose files are never half written, optionally only the newest.

    Three additions to Keras's class:

    * Every file (.keras, .h5, .weights.h5) is written under a temporary
      name in its directory and renamed into place, so a kill at any moment
      leaves the old file or the new one. Keras writes in place.
    * With `keep=N`, once a new file is in place, the files this run wrote
      from the same `filepath` template beyond the N newest (by modification
      time) are deleted. Files older than the run's start (another run's in a
      shared directory) are never touched; those of the interrupted first
      part of a resumed run count as the run's own.
    * With `best_model_path`, the whole model of the best epoch so far by
      `monitor` and `mode` is kept there, checked at each epoch's end, as
      a copy of the checkpoint just written when that is the same model.

    Arguments are those of `keras.callbacks.ModelCheckpoint`, plus:

    Args:
        keep: How many checkpoint files to keep, or None for all. Defaults to None.
        best_model_path: Where to keep the best epoch's model (a .keras
            file), or None for nowhere. Defaults to None.

    The private members of Keras's class this one overrides or calls are
    listed in keras_fixes/__init__.py (`CHECKPOINT_PRIVATE`), where a test
    fails when Keras drops one.
    """

    def __init__(self, *args, keep=None, best_model_path=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = keep
        self.best_model_path = best_model_path
        # Progress a resume restores (the family's resume_state): the best epoch's value, and when
        # the run's first part started training (its files count among the kept ones).
        self.best_model_value = None
        self.started = None
        self._pattern = template_pattern(os.path.basename(self.filepath))
        self._saved_at_epoch_end = None  # (epoch, path) of the last file written at an epoch's end
        self._said_not_kept = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # A resumed run gets its first part's start back after this (the state keeper runs last).
        self.started = time.time()
        self._remove_stale_temporaries()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_model_path is not None:
            self._keep_best_model(epoch, logs or {})

    def _save_model(self, epoch, batch, logs):
        """Saves like Keras's own method, but to a temporary file renamed into place, then prunes."""
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            files.replace_atomically(filepath, lambda path: self.model.save_weights(path, overwrite=True))
        else:
            files.replace_atomically(filepath, lambda path: self.model.save(path, overwrite=True))
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")
        self._saved_at_epoch_end = (epoch, filepath) if batch is None else None
        self._prune(filepath)

    def _prune(self, written):
        """Deletes this run's checkpoint files beyond the `keep` newest; never `written`, just put in place."""
        if self.keep is None or self._pattern is None:
            return
        since = (self.started or time.time()) - _CLOCK_SLACK_S
        ours = sorted((mtime, path) for path, mtime in self._template_files(os.path.dirname(written))
                      if mtime >= since)
        for _, path in ours[:-self.keep]:
            if os.path.abspath(path) != os.path.abspath(written):
                _remove(path)

    def _template_files(self, directory):
        """Yields (path, modification time) of the files in `directory` whose name the template could produce."""
        best = os.path.abspath(self.best_model_path) if self.best_model_path else None
        for entry in _entries(directory):
            if (entry.name.startswith(files.TEMPORARY_PREFIX) or not self._pattern.fullmatch(entry.name)
                    or os.path.abspath(entry.path) == best):
                continue
            try:
                yield entry.path, entry.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile
                continue

    def _remove_stale_temporaries(self):
        """Deletes the temporary files a killed process left behind, of this template's files and the best model."""
        targets = [(os.path.dirname(self.filepath), self._is_checkpoint_name)]
        if self.best_model_path is not None:
            best_name = os.path.basename(self.best_model_path)
            targets.append((os.path.dirname(self.best_model_path), lambda name: name == best_name))
        for directory, is_target in targets:
            for entry in _entries(directory):
                target = files.temporary_target(entry.name)
                if target is not None and is_target(target):
                    _remove(entry.path)

    def _is_checkpoint_name(self, name):
        """Whether `name` is one this callback's filepath could produce."""
        if self._pattern is None:
            return name == os.path.basename(self.filepath)
        return self._pattern.fullmatch(name) is not None

    def _keep_best_model(self, epoch, logs):
        """Writes the model to `best_model_path` when this epoch's monitored value is the best so far."""
        current = logs.get(self.monitor)
        if current is None or np.ndim(current) != 0:
            self._say_not_kept(logs)
            return
        if not np.isfinite(float(current)):
            return  # a NaN or infinite epoch is never the best
        current = float(current)
        if self.best_model_value is not None and not bool(self.monitor_op(current, self.best_model_value)):
            return
        source = self._epoch_checkpoint(epoch)
        if source is not None:
            files.replace_atomically(self.best_model_path, lambda path: shutil.copyfile(source, path))
        else:
            files.replace_atomically(self.best_model_path, lambda path: self.model.save(path, overwrite=True))
        self.best_model_value = current

    def _say_not_kept(self, logs):
        """Says once why there is no best model: the monitored quantity is not logged (no validation data)."""
        if self._said_not_kept:
            return
        self._said_not_kept = True
        why = " (there is no validation data)" if self.monitor.startswith("val_") and "val_loss" not in logs else ""
        print(f"train.py: warning: {os.path.basename(self.best_model_path)} is not kept: {self.monitor!r} "
              f"(--model_checkpoint_monitor) is not logged at epoch ends as one number{why}; logged: "
              f"{', '.join(sorted(logs)) or 'nothing'}", file=sys.stderr, flush=True)

    def _epoch_checkpoint(self, epoch):
        """Returns the whole-model .keras file written at this epoch's end, or None (weights, .h5, no save)."""
        if self._saved_at_epoch_end is None or self._saved_at_epoch_end[0] != epoch:
            return None
        path = self._saved_at_epoch_end[1]
        return path if path.endswith(".keras") and os.path.isfile(path) else None


def _entries(directory):
    """Returns the entries of `directory` ("" for the current one), none if it does not exist."""
    try:
        return list(os.scandir(directory or "."))
    except FileNotFoundError:
        return []


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
