"""Telling the run's Optuna trial how the run ended (the optuna family, --optuna True).

The chief calls `tell` once the results are recorded. The trial gets the
run's record as user attributes, then its end:

- completed, early_stopped: COMPLETE, with the best value of the reported
  quantity over the run's epochs (a resumed run's included) in the study's
  direction; FAIL (status attribute "failed") when no epoch logged it as a
  finite number;
- pruned: PRUNED (Optuna takes the last value reported);
- nan, failed: FAIL (status attribute "nan" or "failed"), failures before
  training included;
- interrupted: nothing. The trial stays RUNNING, and scripts/sweep.py, seeing
  the exit status, queues it again; the heartbeat stops.

Telling never changes the run's outcome: results.json is written by then,
so a storage that fails (a database server down, a trial the sweep ended
already) is one warning on stderr, recorded nowhere else.
"""

import sys

from kerasrun.callbacks.monitor import ranked_monitor
from kerasrun.core import study as studies
from kerasrun.core.errors import first_line
from kerasrun.runner.results import best_epoch


def tell(config, record, history, epochs, reporter=None):
    """Tells the trial of --optuna_study/--optuna_trial how the run ended, when --optuna is on.

    Args:
        config: The run's Config.
        record: The results record as written (results.json).
        history: key -> one value per finished epoch, the run's earlier parts included.
        epochs: The 1-based numbers of those epochs.
        reporter: The run's optuna callback (callbacks/subclasses/optuna.py),
            whose storage is used and whose heartbeat is stopped; None when
            the run ended before it was built (the storage is opened here).
    """
    if not config["optuna"]:
        return
    try:
        if record["status"] != "interrupted":
            _tell(config, record, history, epochs, reporter)
    except Exception as error:  # SQLAlchemy's, the drivers' and Optuna's errors are many types.
        print(f"train.py: warning: trial {config.optuna_trial} of study {config.optuna_study!r} was not told how "
              f"the run ended: {type(error).__name__}: {first_line(error)}", file=sys.stderr, flush=True)
    finally:
        if reporter is not None:
            reporter.close()


def outcome(status, history, epochs, monitor, direction):
    """Returns (Optuna state name, value or None, status attribute, message or None) for a run's end.

    Args:
        status: The run's status (results.json), not interrupted.
        history, epochs: The run's epochs, as `tell` takes them.
        monitor: The quantity reported to the trial.
        direction: "min" or "max", the study's.
    """
    if status in ("completed", "early_stopped"):
        best = best_epoch(history, epochs, monitor, direction)
        if best is None:
            return "FAIL", None, "failed", f"no epoch logged {monitor} as a finite number, so the trial has no value"
        return "COMPLETE", best["value"], status, None
    if status == "pruned":
        return "PRUNED", None, status, None
    return "FAIL", None, status, None


def _tell(config, record, history, epochs, reporter):
    """Tells the trial through the reporter's storage, or one opened (and closed) here."""
    storage = getattr(reporter, "storage", None)
    if storage is not None:
        return _tell_through(storage, config, record, history, epochs)
    storage = studies.open_storage(config.optuna_storage, "optuna_storage")
    try:
        return _tell_through(storage, config, record, history, epochs)
    finally:
        studies.close_storage(storage)


def _tell_through(storage, config, record, history, epochs):
    import optuna

    study = optuna.load_study(study_name=config.optuna_study, storage=storage)
    trial_id = studies.trial_id(storage, config.optuna_study, config.optuna_trial)
    if trial_id is None:
        raise LookupError(f"the study has no trial {config.optuna_trial}")
    monitor = config.optuna_monitor or ranked_monitor(config, history)[0]
    direction = "max" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "min"
    state, value, status, message = outcome(record["status"], history, epochs, monitor, direction)
    attributes = {
        studies.RUN_NAME_ATTR: record["run_name"], studies.RUN_DIR_ATTR: record["run_dir"],
        studies.STATUS_ATTR: status, "epochs_completed": record["epochs_completed"], "final": record["final"],
        "test": record["test"], "exit_code": record["exit_code"], "message": message or record["message"],
    }
    for key, item in attributes.items():
        storage.set_trial_user_attr(trial_id, key, item)
    study.tell(config.optuna_trial, value, state=getattr(optuna.trial.TrialState, state))
    if message:
        print(f"train.py: warning: trial {config.optuna_trial} of study {config.optuna_study!r} failed: {message}",
              file=sys.stderr, flush=True)
