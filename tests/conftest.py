"""Shared test helpers: running train.py as a user would."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "train.py")


def run_train(args, cwd, timeout=600, env=None):
    """Runs `python train.py ARGS` in `cwd` and returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, TRAIN, *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=full_env,
    )


@pytest.fixture
def train(tmp_path):
    """Runs train.py inside a fresh temporary directory."""

    def run(*args, **kwargs):
        return run_train(list(args), cwd=tmp_path, **kwargs)

    return run
