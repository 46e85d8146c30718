"""Shared test helpers: running train.py as a user would."""

import contextlib
import glob
import json
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


@contextlib.contextmanager
def mlflow_server(root, timeout=90):
    """Runs a real `mlflow server` on a free 127.0.0.1 port, with an SQLite store and artifacts under `root`.

    Artifacts go through the server (its default), as a team's server takes them. The server and the
    processes it starts are stopped at the end.

    Yields:
        A `Server` with its `uri` (http://127.0.0.1:PORT) and `stop()`, which stops it at once.
    """
    port = _free_loopback_port()
    log_path = os.path.join(root, "mlflow-server.log")
    with open(log_path, "w") as log_stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{os.path.join(root, 'mlflow.db')}",
             "--artifacts-destination", os.path.join(root, "artifacts")],
            cwd=root, stdout=log_stream, stderr=subprocess.STDOUT, start_new_session=True,
            # Its job runner (a dozen processes) serves GenAI jobs, which runs and sweeps never start.
            env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))

    def stop():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):  # Its workers, should they outlive it.
            os.killpg(process.pid, signal.SIGKILL)

    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                with open(log_path, encoding="utf-8", errors="replace") as stream:
                    pytest.fail(f"mlflow server did not answer on {uri} (exit {process.poll()}):\n"
                                f"{stream.read()[-3000:]}")
            time.sleep(0.3)
        yield Server(uri, stop)
    finally:
        stop()


class Server:
    """A server a test started: its address and how to stop it."""

    def __init__(self, uri, stop):
        self.uri = uri
        self.stop = stop


def _free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_binaries():
    """Returns the newest /usr/lib/postgresql/<version>/bin (Debian's layout), failing the test if there is none."""
    found = [path for path in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(path, "postgres"))]
    if not found:
        pytest.fail("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/postgres): "
                    "apt-get install postgresql, as .ci/run does")
    return max(found, key=lambda path: [int(part) for part in re.findall(r"\d+", os.path.basename(os.path.dirname(path)))])


@contextlib.contextmanager
def postgres(database="sweeps", timeout=60):
    """Runs a real PostgreSQL server on a free 127.0.0.1 port in a temporary directory, stopped and removed after.

    The server trusts every local and loopback connection, and its superuser is `postgres`. As root it runs
    as the `postgres` user (the server refuses root), in a directory under /tmp that user owns.

    Yields:
        The SQLAlchemy URL of `database`, created empty:
        postgresql://postgres@127.0.0.1:PORT/sweeps.
    """
    import psycopg

    binaries = _postgres_binaries()
    directory = tempfile.mkdtemp(prefix="kerasrun-postgres-", dir="/tmp")  # pytest's tmp_path is root's alone.
    as_user = {}
    if os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, log_path = os.path.join(directory, "data"), os.path.join(directory, "server.log")
    server = None

    def log():
        with contextlib.suppress(OSError), open(log_path, encoding="utf-8", errors="replace") as stream:
            return stream.read()[-4000:]
        return ""

    try:
        initdb = subprocess.run(
            [os.path.join(binaries, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            cwd=directory, capture_output=True, text=True, timeout=120, **as_user)
        if initdb.returncode:
            pytest.fail(f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        port = _free_loopback_port()
        with open(log_path, "w") as log_stream:
            # fsync off: a test's database need not survive a crash of the machine.
            server = subprocess.Popen(
                [os.path.join(binaries, "postgres"), "-D", data, "-k", directory, "-h", "127.0.0.1",
                 "-p", str(port), "-c", "fsync=off", "-c", "synchronous_commit=off"],
                cwd=directory, stdout=log_stream, stderr=subprocess.STDOUT, **as_user)
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                              connect_timeout=2)
                break
            except psycopg.OperationalError as error:
                if server.poll() is not None:
                    pytest.fail(f"PostgreSQL exited with status {server.returncode} before accepting "
                                f"connections; its log:\n{log()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"PostgreSQL accepted no connection on 127.0.0.1:{port} within {timeout}s "
                                f"({str(error).strip()}); its log:\n{log()}")
                time.sleep(0.2)
        try:
            connection.autocommit = True  # CREATE DATABASE runs outside a transaction.
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # Fast shutdown: disconnects clients, rolls back their work.
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The SQLAlchemy URL of a database on a real PostgreSQL server shared by the session's tests.

    postgresql://postgres@127.0.0.1:PORT/sweeps; tests sharing it use study names of their own.
    """
    with postgres() as url:
        yield url


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
