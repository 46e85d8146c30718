"""The run's own directory under the logs root, claimed so that no two runs share it."""

import datetime
import os


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


def claim_run_dir(root, requested_name):
    """Creates and returns a fresh run directory.

    A directory that exists already is never reused: the new run gets a
    suffixed name instead (`name-2`, `name-3`, ...). `mkdir` is atomic, so runs
    started at the same moment cannot claim the same directory.

    Args:
        root: The logs root.
        requested_name: The user's --run_name, or None for a time stamp.

    Returns:
        The run's RunPaths.
    """
    base = requested_name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(root, exist_ok=True)
    attempt = 1
    while True:
        name = base if attempt == 1 else f"{base}-{attempt}"
        try:
            os.mkdir(os.path.join(root, name))
            return RunPaths(root, name)
        except FileExistsError:
            attempt += 1
