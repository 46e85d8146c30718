"""The optuna family's callback, which is ours alone: Keras has no class for it.

Optuna is imported when training begins, never when this module is loaded
(the builder loads it to tell the families' callbacks apart).
"""

import math
import sys
import threading

import keras

from kerasrun.core import study as studies
from kerasrun.core.errors import first_line

# How long closing waits for a heartbeat under way (a database that does not answer); the thread is a daemon.
_CLOSE_SECONDS = 2.0


class OptunaTrial(keras.callbacks.Callback):
    """Reports the monitored quantity after every epoch to a RUNNING trial of an Optuna study.

    When training begins it opens the study with the pruner its arguments
    name, and from a daemon thread of its own records the trial's heartbeat
    every core/study.py HEARTBEAT_SECONDS, until `close()` (which
    runner/trial.py calls once it has told the study how the run ended, or
    left the trial RUNNING for the sweep to queue again). After each epoch
    it reports the monitored value as the epoch's step, then asks the
    study's pruner whether to stop; if so, training stops after this epoch,
    `pruned_epoch` says which (from 1), and `pruned_line` says why (printed, capitalised).

    A step the trial holds already (a retried trial inherits the steps of the
    run it resumes) is not reported again. A value that is not a finite
    number is not reported and asks no pruning (Optuna's median pruner would
    prune on NaN at once): the run's own NaN check ends such a run.
    Bookkeeping never stops training: a storage that fails (a database
    server down) prints one warning on stderr, and the run goes on without
    being pruned.

    Args:
        storage: The study's database URL.
        study: The study's name.
        trial: The trial's number in the study.
        monitor: The logged quantity to report; empty: val_loss when it is
            logged, else loss.
        pruner: median, hyperband or none (core/study.py make_pruner).
        pruner_startup_trials: Finished trials the median pruner waits for.
        pruner_warmup_epochs: Epochs never pruned.
    """

    def __init__(self, storage, study, trial, monitor="", pruner="none", pruner_startup_trials=5,
                 pruner_warmup_epochs=0):
        super().__init__()
        self.storage_url = storage
        self.study_name = study
        self.trial_number = trial
        self.monitor = monitor
        self.pruner = pruner
        self.pruner_startup_trials = pruner_startup_trials
        self.pruner_warmup_epochs = pruner_warmup_epochs
        self.pruned_epoch = self.pruned_line = None
        self.storage = self.trial_id = self._trial = None
        self._reported = set()
        self._stop = self._heartbeat = None
        self._warned = set()

    def on_train_begin(self, logs=None):
        self.pruned_epoch = self.pruned_line = None
        if self._trial is not None:
            return  # Opened already (a second fit of the same callback).
        try:
            self._open()
        except Exception as error:  # SQLAlchemy's and the drivers' errors are many types; UsageError from opening.
            self._warn(f"cannot open trial {self.trial_number} of study {self.study_name!r}: {_reason(error)}")
            return
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(self._stop,), name="OptunaHeartbeat",
                                           daemon=True)
        self._heartbeat.start()

    def _open(self):
        import optuna

        storage = studies.open_storage(self.storage_url, "optuna_storage")
        study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=studies.make_pruner(
            self.pruner, self.pruner_startup_trials, self.pruner_warmup_epochs))
        trial_id = studies.trial_id(storage, self.study_name, self.trial_number)
        if trial_id is None:
            raise LookupError(f"the study has no trial {self.trial_number}")
        self._reported = set(storage.get_trial(trial_id).intermediate_values)
        self.storage, self.trial_id = storage, trial_id
        self._trial = optuna.trial.Trial(study, trial_id)

    def _beat(self, stop):
        """Records the trial's heartbeat now, then every HEARTBEAT_SECONDS until `stop` is set."""
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as error:  # The database is down: the epochs' reports say so too; keep trying.
                self._warn(f"cannot record the heartbeat of trial {self.trial_number}: {_reason(error)}")
            if stop.wait(studies.HEARTBEAT_SECONDS):
                return

    def reported_monitor(self, logs):
        """Returns the quantity reported, given an epoch's logs (or the run's history)."""
        return self.monitor or ("val_loss" if "val_loss" in logs else "loss")

    def on_epoch_end(self, epoch, logs=None):
        if self._trial is None:
            return
        logs = logs or {}
        monitor = self.reported_monitor(logs)
        if monitor not in logs:
            self._warn(f"{monitor} is not logged, so nothing is reported to trial {self.trial_number}", "unlogged")
            return
        value = float(logs[monitor])
        if not math.isfinite(value):
            return
        try:
            if epoch not in self._reported:
                self._trial.report(value, step=epoch)
                self._reported.add(epoch)
            # After the last epoch there is nothing left to save: the run completes, with its value.
            prune = epoch + 1 < (self.params or {}).get("epochs", epoch + 2) and self._trial.should_prune()
        except Exception as error:  # A database down: training goes on.
            self._warn(f"cannot report epoch {epoch + 1} to trial {self.trial_number}: {_reason(error)}")
            return
        if prune:
            self.model.stop_training = True
            self.pruned_epoch = epoch + 1
            self.pruned_line = (f"pruned by the study's {self.pruner} pruner at epoch {epoch + 1}: {monitor} "
                                f"{value:.6g} (trial {self.trial_number} of study {self.study_name!r})")
            print(self.pruned_line[0].upper() + self.pruned_line[1:], flush=True)

    def close(self):
        """Stops the heartbeat; the trial is told, or left RUNNING, by then. Safe to call more than once."""
        if self._stop is not None:
            self._stop.set()
            self._heartbeat.join(_CLOSE_SECONDS)
            self._stop = self._heartbeat = None

    def _warn(self, what, kind="storage"):
        """Prints the first warning of each kind on stderr; the others would only repeat it."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        consequence = ("not pruned while the study cannot be reached" if kind == "storage"
                       else "it cannot be pruned")
        print(f"train.py: warning: {what}; training goes on, {consequence}", file=sys.stderr, flush=True)


def _reason(error):
    """One line on an error of the storage: its type and first line."""
    return f"{type(error).__name__}: {first_line(error)}"
