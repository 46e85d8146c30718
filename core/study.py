"""An Optuna study shared by a sweep and its trials: storage, pruner, trial outcomes.

scripts/sweep.py creates the study and asks it for trials; each trial is a
run of train.py that reports to the study through the `optuna` callback
family and records its outcome there. Both sides open the storage and build
the pruner here, so that they agree. Optuna is imported only when a study is
used.
"""

import os
import re
import time
import warnings

from kerasrun.core.errors import UsageError, first_line

# The user attrs of the study and of its trials (what summarize.py reads).
SWEEP_ATTR = "kerasrun"
RUN_NAME_ATTR = "run_name"
RUN_DIR_ATTR = "run_dir"
STATUS_ATTR = "status"
# On a failed trial's copy queued by sweep.py --retry_failed: the failed trial, and the first of its line.
RETRIES_ATTR = "retries"
RETRY_OF_ATTR = "retry_of"
# A running trial's process records a heartbeat this often; one silent for
# GRACE_SECONDS has died (a machine lost, a kill -9 of everything) and is queued again.
HEARTBEAT_SECONDS = 5
# Above SQLite's wait for its lock (60 s): a trial whose process waits on the database is not taken for dead.
GRACE_SECONDS = 120
# A trial stopped more often than this (a run the machine kills each time, out of memory) fails for good.
MAX_RETRIES = 3
# train.py's statuses that end a trial for good as FAIL; it counts as finished.
FINAL_FAILURES = ("nan", "failed")
# What the sweep writes on a FAIL trial that does not count: one stopped and
# queued again, one asked beyond --trials by a process that lost the race.
INTERRUPTED = "interrupted"
SURPLUS = "surplus"
PRUNERS = ("median", "hyperband", "none")
# Connecting to a database server is retried this many times, this far apart, before giving up.
CONNECT_ATTEMPTS = 3
CONNECT_PAUSE_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 10


def shown_url(url):
    """Returns a storage URL as it may be printed: its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # Not a URL SQLAlchemy reads: whatever looks like `user:password@` is hidden all the same.
        return _PASSWORD.sub(r"\1***@", url)


def has_password(url):
    """Whether a storage URL holds a password (one that printing it in full would show)."""
    return shown_url(url) != url


_PASSWORD = re.compile(r"([^:/@\s]+:)[^@\s]*@")


def open_storage(url, flag, resumes=True):
    """Returns Optuna's RDBStorage on `url`, with heartbeats, retrying a server that does not answer.

    Args:
        url: A database URL Optuna takes: sqlite:///path, postgresql://user@host/db, ...
        flag: The option that gave it (`storage`, `optuna_storage`), for errors.
        resumes: Whether a trial queued again resumes its run (from a backup), and so
            keeps the epochs the stopped one reported (see `requeue_callback`).

    Raises:
        UsageError: The URL is malformed, names a driver that is not
            installed, or the database cannot be reached after
            CONNECT_ATTEMPTS tries.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--{flag}={shown_url(url)}: not a database URL; give one such as sqlite:///sweep.db or "
                         "postgresql://user@host:5432/db") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = os.path.dirname(os.path.abspath(parsed.database))
        if not os.path.isdir(folder):
            raise UsageError(f"--{flag}={url}: the folder {folder} does not exist")
    if parsed.get_backend_name() == "postgres":
        raise UsageError(f"--{flag}={shown_url(url)}: write postgresql://, the name SQLAlchemy knows")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and the retry of stopped trials are marked experimental; they are what we rely on, knowingly.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # The heartbeat is recorded by train.py's callback, not by Study.optimize, which we do not use.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # SQLite shares one file between the sweep and its trials: wait for its lock rather than fail.
    if parsed.get_backend_name() == "sqlite":
        engine = {"connect_args": {"timeout": 60}}
    elif parsed.get_backend_name() == "postgresql":  # Seconds to connect to a host that does not answer.
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    else:
        engine = {"pool_pre_ping": True}
    last = None
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=requeue_callback(resumes))
        except NoSuchModuleError:
            raise UsageError(f"--{flag}={shown_url(url)}: SQLAlchemy has no database called "
                             f"{parsed.get_backend_name()!r}; use sqlite:///, postgresql://, mysql://, ...") from None
        except ImportError as error:  # The URL's driver (psycopg2, pymysql, ...) is not installed.
            raise UsageError(f"--{flag}={shown_url(url)}: its database driver is not installed "
                             f"({first_line(error)})") from None
        except Exception as error:  # SQLAlchemy's and the drivers' errors are many types.
            last = error  # A server down, or two processes creating the tables of a new file at once.
            if attempt + 1 < CONNECT_ATTEMPTS:
                time.sleep(CONNECT_PAUSE_SECONDS * (attempt + 1))
    raise UsageError(f"--{flag}={shown_url(url)}: cannot be opened after {CONNECT_ATTEMPTS} attempts: "
                     f"{reason(last)}")


def close_storage(storage):
    """Closes the connections an RDBStorage holds (a check that opened it is done with it)."""
    storage.remove_session()
    storage.engine.dispose()


def reason(error):
    """The driver's own line of a SQLAlchemy error (which wraps it in lines of its own)."""
    original = getattr(error, "orig", None)
    return first_line(original if original is not None else error)


def requeue_callback(resumes=True):
    """Returns what queues a stopped trial again, with its parameters, at most MAX_RETRIES times.

    Optuna's own callback for trials whose heartbeat stopped: the copy waits
    in the study (the next `ask` takes it) and remembers the first trial's
    number (`original_number`), which names the run it resumes. The epochs
    the stopped trial reported go with it only when its run resumes from
    its backup (`resumes`); a run that starts over reports its own.
    """
    import optuna

    return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES,
                                                             inherit_intermediate_values=resumes)


def retries(trial):
    """Returns how many times the trial's parameters were stopped and queued again before it (a FrozenTrial)."""
    return len(retry_history(trial))


def retry_history(trial):
    """Returns the numbers of the trials a FrozenTrial stands in for (stopped, or failed and queued again)."""
    first = trial.system_attrs.get("failed_trial")
    history = trial.system_attrs.get("retry_history") or ([] if first is None else [first])
    return history + ([trial.user_attrs[RETRIES_ATTR]] if RETRIES_ATTR in trial.user_attrs else [])


def superseded(trials):
    """Returns the numbers of the trials another trial stands in for: they count no more."""
    return {number for trial in trials for number in retry_history(trial)}


def original_number(trial):
    """Returns the number of the trial that `trial` (a FrozenTrial) retries, or its own."""
    first = trial.system_attrs.get("failed_trial", trial.user_attrs.get(RETRY_OF_ATTR))
    return trial.number if first is None else first


def make_pruner(kind, startup_trials, warmup_epochs):
    """Returns Optuna's pruner for `kind` (median, hyperband or none)."""
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_epochs))
    return optuna.pruners.NopPruner()


def counts(trial):
    """Whether a FrozenTrial counts towards --trials: it ended on its own, with or without a value."""
    import optuna

    state = trial.state
    if state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
        return True
    return state == optuna.trial.TrialState.FAIL and trial.user_attrs.get(STATUS_ATTR) in FINAL_FAILURES


def trial_id(storage, study_name, number):
    """Returns the storage's id of trial `number` of the study, or None when there is no such trial."""
    try:
        return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
    except KeyError:
        return None
