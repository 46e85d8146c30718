"""Shared test helpers: running train.py as a user would."""

import contextlib
import json
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A line of Python that makes our package importable as `kerasrun`, for code run in a child process.
IMPORT_KERASRUN = f"import runpy; runpy.run_path({os.path.join(REPO, '__init__.py')!r})"
runpy.run_path(os.path.join(REPO, "__init__.py"))
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


@contextlib.contextmanager
def tensorboard_server(logdir):
    """Starts a real `tensorboard` on 127.0.0.1 and yields a function that GETs JSON from it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def get(path, body=None):
        """GETs `path`, or POSTs `body` as JSON to it; returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/data/runs")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield get
    finally:
        server.terminate()
        server.wait(timeout=30)


def write_images(root, counts, size=(10, 12)):
    """Writes tiny random PNGs, one sub-folder per class."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for class_name, count in counts.items():
        os.makedirs(os.path.join(root, class_name))
        for index in range(count):
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            png = tf.io.encode_png(pixels).numpy()
            with open(os.path.join(root, class_name, f"{index}.png"), "wb") as file:
                file.write(png)
    return str(root)
