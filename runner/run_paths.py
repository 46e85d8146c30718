"""The run's own directory under the logs root: its name, claiming it, and finding one to resume.

Every run writes into `<logs root>/<run name>/`. A directory is claimed with
`mkdir`, which is atomic, so runs started at the same moment never share one;
a directory that exists already is never reused, except to resume a run that
was interrupted with --backup_and_restore and started again with the same
configuration.
"""

import datetime
import hashlib
import os
import re

from kerasrun.callbacks.backup_and_restore import BACKUP_DIR
from kerasrun.cli.config import bookkeeping_flags, changed_flags
from kerasrun.core import files

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.json"
MODEL_FILE = "model.keras"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")
_LONGEST_NAME = 120


class RunPaths:
    """Where one run writes.

    Args:
        root: The logs root (--tensorboard_log_dir).
        name: The run's directory name inside it.
    """

    def __init__(self, root, name):
        self.root = root
        self.name = name
        self.dir = os.path.join(root, name)

    def path(self, *parts):
        """Returns a path inside the run's directory."""
        return os.path.join(self.dir, *parts)


def default_run_name(changed, now=None):
    """Returns a readable name: a time stamp and the flags that differ from the defaults.

    Args:
        changed: {flag: value as typed} of the flags that differ from their defaults.
        now: The time to stamp; defaults to the current time.
    """
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    described = ",".join(f"{name}={value}" for name, value in changed.items() if name not in bookkeeping_flags())
    name = _UNSAFE.sub("-", f"{stamp}_{described}" if described else stamp)
    if len(name) > _LONGEST_NAME:  # Keep it a usable file name, still unique to the flags.
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:_LONGEST_NAME - 9]}~{digest}"
    return name


def planned_run(config):
    """Returns the RunPaths a new run of `config` starting now would write into (the name, or the next free one)."""
    base = config.run_name or default_run_name(changed_flags(config))
    return RunPaths(config.tensorboard_log_dir, next(
        name for name in _candidate_names(base) if not os.path.exists(os.path.join(config.tensorboard_log_dir, name))))


def _candidate_names(base):
    """Yields `base`, `base-2`, `base-3`, ...: the names a run tries, in order, until one is free."""
    yield base
    attempt = 2
    while True:
        yield f"{base}-{attempt}"
        attempt += 1


def claim_run_dir(root, base):
    """Creates and returns a fresh run directory named `base`, or `base-2`, `base-3`, ...

    Args:
        root: The logs root.
        base: The wanted directory name.

    Returns:
        The run's RunPaths.
    """
    os.makedirs(root, exist_ok=True)
    for name in _candidate_names(base):
        try:
            os.mkdir(os.path.join(root, name))
            return RunPaths(root, name)
        except FileExistsError:
            pass


def experiment_identity(saved_config):
    """Returns what must match for a run directory to be resumed: the config less its bookkeeping."""
    return {key: value for key, value in saved_config.items() if key not in bookkeeping_flags()}


def find_resumable(root, identity, name=None):
    """Returns the RunPaths of an interrupted run of the same experiment, or None.

    A run can be resumed when its saved config matches, it has not finished
    (no results, or results saying it was interrupted or failed: a worker of
    a multi-worker run that dies makes the others fail), it left a backup,
    and no process is running it now.

    Args:
        root: The logs root.
        identity: `experiment_identity` of the run about to start.
        name: The --run_name, if given: only that directory is considered.
    """
    if not os.path.isdir(root):
        return None
    candidates = sorted(os.listdir(root), reverse=True)
    if name:  # The name itself, or the suffixed one a run got when the name was taken.
        suffixed = re.compile(rf"{re.escape(name)}(-\d+)?")
        candidates = [c for c in candidates if suffixed.fullmatch(c)]
    for candidate in candidates:
        paths = RunPaths(root, candidate)
        if _resumable(paths, identity):
            return paths
    return None


def _resumable(paths, identity):
    saved = files.read_yaml(paths.path(CONFIG_FILE))
    if not isinstance(saved, dict) or experiment_identity(saved) != identity:
        return False
    results = files.read_json(paths.path(RESULTS_FILE))
    if results is not None and results.get("status") not in ("interrupted", "failed"):
        return False
    backup = backup_dir(saved, paths)
    if not os.path.isdir(backup) or not os.listdir(backup):
        return False
    return not files.is_locked(paths.path(files.LOCK_FILE))


def backup_dir(config, paths):
    """Returns where BackupAndRestore keeps the backup of the run in `paths`, given its config (a mapping)."""
    return config.get("backup_and_restore_backup_dir") or paths.path(BACKUP_DIR)
