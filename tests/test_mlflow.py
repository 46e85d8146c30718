"""The MLflow family (--mlflow True): train.py and sweep.py against a real `mlflow server` on loopback.

The server is started by the tests with an SQLite store and an artifact root in a temporary directory;
everything is read back through MLflow's own client, as a user would.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import IMPORT_KERASRUN, REPO, TRAIN, mlflow_server, run_train
from kerasrun.callbacks.mlflow import uri_problem
from kerasrun.callbacks.subclasses.mlflow import _param_text
from kerasrun.cli.config import bookkeeping_flags

# A user's callback that makes each epoch end slowly, after MLflow has its metrics and before the backup.
SLOW = ("import time\n\nimport keras\n\n\nclass Slow(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n        time.sleep({seconds})\n")
KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def write_data(folder):
    """Writes blobs.npz: 3 classes of 20 features, with training, validation and test splits."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 20)) * 3

    def part(count):
        labels = rng.integers(0, 3, count)
        return (centers[labels] + rng.normal(size=(count, 20))).astype("float32"), labels

    (x, y), (x_val, y_val), (x_test, y_test) = part(240), part(60), part(60)
    np.savez(os.path.join(folder, "blobs.npz"), x_train=x, y_train=y, x_val=x_val, y_val=y_val,
             x_test=x_test, y_test=y_test)


def in_folder(tmp_path_factory, name, slow=None):
    folder = tmp_path_factory.mktemp(name)
    write_data(folder)
    if slow is not None:
        (folder / "slow.py").write_text(SLOW.format(seconds=slow))
    return folder


def steps(client, run_id, key):
    return sorted(point.step for point in client.get_metric_history(run_id, key))


def results(folder, name):
    with open(folder / "tensorboard_logs" / name / "results.json") as stream:
        return json.load(stream)


def wait_for_step(client, experiment, step, process, key="val_accuracy"):
    """Waits until the experiment's run has logged `key` at `step`; returns the run's id."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id]) if found else []
        if runs and step in steps(client, runs[0].info.run_id, key):
            return runs[0].info.run_id
        time.sleep(0.05)
    raise AssertionError(f"the run ended or took too long before logging {key} at step {step}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(str(tmp_path_factory.mktemp("mlflow-server"))) as started:
        yield started


@pytest.fixture(scope="module")
def client(server):
    import mlflow

    return mlflow.MlflowClient(server.uri)


@pytest.fixture(scope="module")
def logged(server, client, tmp_path_factory):
    """One run that logs everything: (its folder, results, the MLflow run, its stdout)."""
    folder = in_folder(tmp_path_factory, "logged")
    done = run_train(["--dataset=npz:blobs.npz", "--epochs=3", "--batch_size=16", "--run_name=r1",
                      "--results_file=all.jsonl",
                      "--tensorboard=True", "--tensorboard_update_freq=5",
                      "--mlflow=True", f"--mlflow_tracking_uri={server.uri}", "--mlflow_experiment=everything",
                      "--mlflow_tags=team=vision,purpose=test", "--mlflow_log_models=True",
                      "--mlflow_registered_model_name=blobs"], cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    record = results(folder, "r1")
    return folder, record, client.get_run(record["mlflow"]["run_id"]), done.stdout


def test_a_run_is_one_finished_mlflow_run_with_the_hparams_as_params(logged, client):
    folder, record, run, stdout = logged
    assert run.info.status == "FINISHED" and run.info.run_name == "r1"
    assert run.data.tags["team"] == "vision" and run.data.tags["purpose"] == "test"
    assert run.data.tags["kerasrun.run_dir"] == str(folder / "tensorboard_logs" / "r1")
    assert run.data.tags["kerasrun.status"] == "completed"
    assert f"MLflow: this run logs to MLflow run {run.info.run_id} (r1)" in stdout
    assert record["mlflow"]["lost"] == {"params": 0, "metric values": 0, "artifacts": 0, "models": 0, "status": 0}
    assert record["mlflow"]["error"] is None
    assert json.loads((folder / "all.jsonl").read_text()) == record  # The results line has it too.
    with open(folder / "tensorboard_logs" / "r1" / "config.yaml") as stream:
        saved = yaml.safe_load(stream)
    hparams = {key: _param_text(value) for key, value in saved.items() if key not in bookkeeping_flags()}
    assert run.data.params == hparams  # The HParams tab's set: no bookkeeping flag (the mlflow ones included).
    assert run.data.params["epochs"] == "3" and "mlflow_tracking_uri" not in run.data.params
    with open(folder / "tensorboard_logs" / "r1" / "mlflow_run.json") as stream:
        assert json.load(stream)["run_id"] == run.info.run_id


def test_epochs_are_steps_and_batches_follow_tensorboards_update_freq(logged, client):
    folder, record, run, _ = logged
    for key in KEYS:
        assert steps(client, run.info.run_id, key) == [0, 1, 2]
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert max(history, key=lambda point: point.step).value == pytest.approx(record["final"]["val_accuracy"])
    # 15 batches of 16 an epoch: batch metrics every 5 batches of the run, numbered over the run.
    assert steps(client, run.info.run_id, "batch_loss") == list(range(5, 46, 5))


def test_final_and_test_metrics_and_the_run_files_are_logged(logged, client):
    folder, record, run, _ = logged
    metrics = run.data.metrics
    assert metrics["final/val_loss"] == pytest.approx(record["final"]["val_loss"])
    assert metrics["test/accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert steps(client, run.info.run_id, "test/loss") == [3]
    assert {item.path for item in client.list_artifacts(run.info.run_id)} == {
        "config.yaml", "results.json", "model.keras"}
    local = client.download_artifacts(run.info.run_id, "results.json", str(folder))
    with open(local) as stream:
        uploaded = json.load(stream)
    assert uploaded["mlflow"]["run_id"] == run.info.run_id and uploaded["final"] == record["final"]
    with open(client.download_artifacts(run.info.run_id, "config.yaml", str(folder))) as stream:
        assert yaml.safe_load(stream)["epochs"] == 3


def test_the_logged_model_predicts_like_model_keras_and_is_registered(logged, client, server):
    import keras
    import mlflow

    folder, record, run, _ = logged
    mlflow.set_tracking_uri(server.uri)
    served = mlflow.pyfunc.load_model(record["mlflow"]["model_uri"])
    x = np.random.default_rng(1).normal(size=(7, 20)).astype("float32")
    expected = keras.saving.load_model(folder / "tensorboard_logs" / "r1" / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(served.predict(x), expected, rtol=1e-5, atol=1e-6)
    signature = served.metadata.signature
    assert signature.inputs.inputs[0].shape == (-1, 20)
    versions = client.search_model_versions("name='blobs'")
    assert [(version.version, version.run_id) for version in versions] == [("1", run.info.run_id)]
    assert record["mlflow"]["registered_model_version"] == "1"


def test_kill_9_then_rerun_continues_the_same_mlflow_run_with_each_step_once(server, client, tmp_path_factory):
    folder = in_folder(tmp_path_factory, "killed", slow=1.5)
    args = [sys.executable, TRAIN, "--dataset=npz:blobs.npz", "--epochs=4", "--batch_size=16", "--run_name=k",
            "--backup_and_restore=True", "--callbacks=slow:Slow", "--mlflow=True",
            f"--mlflow_tracking_uri={server.uri}", "--mlflow_experiment=killed"]
    process = subprocess.Popen(args, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Epoch 2's metrics are logged; its backup waits for the slow callback: kill -9 between the two.
        run_id = wait_for_step(client, "killed", 1, process)
    finally:
        process.kill()
        process.communicate(timeout=60)
    assert steps(client, run_id, "val_accuracy") == [0, 1]
    assert client.get_run(run_id).info.status == "RUNNING"
    # MLflow flags are bookkeeping: the rerun may add tags, and still resumes.
    again = subprocess.run([*args, "--mlflow_tags=rerun=yes"], cwd=folder, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming the interrupted run in tensorboard_logs/k at epoch 2" in again.stdout  # Epoch 2 runs again.
    assert f"MLflow: this run continues MLflow run {run_id} (k)" in again.stdout
    experiment = client.get_experiment_by_name("killed")
    assert [run.info.run_id for run in client.search_runs([experiment.experiment_id])] == [run_id]
    for key in KEYS:
        assert steps(client, run_id, key) == [0, 1, 2, 3], key
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags["rerun"] == "yes"
    assert steps(client, run_id, "final/loss") == [4]
    assert results(folder, "k")["mlflow"]["run_id"] == run_id


def test_a_server_that_stops_mid_run_costs_one_warning_and_is_counted(tmp_path_factory):
    import mlflow

    folder = in_folder(tmp_path_factory, "stopped", slow=1.5)
    with mlflow_server(str(tmp_path_factory.mktemp("mlflow-doomed"))) as doomed:
        client = mlflow.MlflowClient(doomed.uri)
        # Given in the environment, with a password (the server takes no login and ignores it): never shown.
        with_login = doomed.uri.replace("http://", "http://me:hunter2@")
        process = subprocess.Popen(
            [sys.executable, TRAIN, "--dataset=npz:blobs.npz", "--epochs=4", "--batch_size=16", "--run_name=s",
             "--callbacks=slow:Slow", "--mlflow=True", "--mlflow_experiment=doomed", "--mlflow_log_models=True",
             "--mlflow_timeout=5"],
            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, MLFLOW_TRACKING_URI=with_login))
        try:
            wait_for_step(client, "doomed", 0, process)
            doomed.stop()
            stdout, stderr = process.communicate(timeout=300)
        finally:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert "Trained 4 epochs" in stdout
    warnings = [line for line in stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("train.py: warning: MLflow at http://me:***@127.0.0.1:")
    assert "hunter2" not in stdout + stderr + (folder / "tensorboard_logs" / "s" / "results.json").read_text()
    assert "the server cannot be reached" in warnings[0]
    tracked = results(folder, "s")["mlflow"]
    # At least epochs 3 and 4 (4 values each; epoch 2's may have been logged while the server stopped), the final
    # and test ones; the files, the model and the status.
    assert tracked["lost"]["metric values"] >= 2 * 4 + 4 + 2
    # config.yaml, model.keras and results.json; the MLflow model.
    assert tracked["lost"]["artifacts"] == 3 and tracked["lost"]["models"] == 1 and tracked["lost"]["status"] == 1
    assert tracked["lost"]["params"] == 0 and "cannot be reached" in tracked["error"]


def test_a_sweep_nests_its_trials_under_one_parent_run(server, client, tmp_path_factory):
    folder = in_folder(tmp_path_factory, "sweep")
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "sweep.py"), "--grid", "learning_rate=0.01,0.02",
         "--results_file=sweep.jsonl", "--", "--dataset=npz:blobs.npz", "--epochs=1", "--mlflow=True",
         f"--mlflow_tracking_uri={server.uri}", "--mlflow_experiment=swept"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    experiment = client.get_experiment_by_name("swept")
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and parents[0].info.run_name == "sweep" and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    assert f"the sweep logs to parent run {parent}" in done.stdout
    children = sorted((run.info.run_name, run.data.tags["mlflow.parentRunId"], run.info.status)
                      for run in runs if run.info.run_id != parent)
    assert children == [("sweep-0", parent, "FINISHED"), ("sweep-1", parent, "FINISHED")]
    best = min(json.loads(line)["best"]["value"] for line in (folder / "sweep.jsonl").read_text().splitlines())
    assert client.get_run(parent).data.metrics["best_val_loss"] == pytest.approx(best)


def test_mistakes_are_refused_before_tensorflow_or_mlflow_is_imported():
    code = (f"{IMPORT_KERASRUN}\nimport sys\nfrom kerasrun.cli.config import resolve\n"
            "from kerasrun.core.errors import UsageError\n"
            "resolve(['train.py', '--mlflow', 'True', '--mlflow_tags', 'a=1', '--dry_run'])\n"
            "for flag, value in (('--mlflow_tracking_uri', 'http//host:5000'), ('--mlflow_tags', 'team')):\n"
            "    try:\n        resolve(['train.py', '--mlflow', 'True', flag, value])\n"
            "    except UsageError as error:\n        print(error)\n"
            "print(*(name in sys.modules for name in ('tensorflow', 'keras', 'mlflow')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    uri, tags, imported = result.stdout.splitlines()
    assert uri.startswith("--mlflow_tracking_uri=http//host:5000: looks like a server's URL, mistyped")
    assert tags == "--mlflow_tags=team: item 1 ('team') must look like key=value"
    assert imported == "False False False"


@pytest.mark.parametrize("uri", ["", "sqlite:///mlflow.db", "postgresql+psycopg://db.example/mlflow",
                                 "http://127.0.0.1:5000", "https://mlflow.example.com", "databricks"])
def test_tracking_uris_mlflow_takes_pass(uri):
    assert uri_problem(uri) is None


@pytest.mark.parametrize("uri", ["mlruns", "./runs", "/srv/mlruns", "file:///srv/mlruns", "file:runs"])
def test_a_directory_is_refused_unless_mlflows_file_store_is_opened(uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    assert "MLFLOW_ALLOW_FILE_STORE=true" in uri_problem(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert uri_problem(uri) is None


@pytest.mark.parametrize("uri, problem", [
    ("htp://host:5000", "htp:// is no tracking store MLflow knows"),
    ("http://", "names no host"),
    ("http://host:port", "is not a URL MLflow can reach"),
    ("http://host:0", "has port 0"),
    ("localhost:5000", "is neither a URL (scheme://...) nor a directory"),
    ("http:/host:5000", "looks like a server's URL, mistyped"),
])
def test_malformed_tracking_uris_say_what_is_wrong(uri, problem):
    assert problem in uri_problem(uri)


def test_a_password_in_the_tracking_uri_is_refused_without_being_echoed():
    from kerasrun.cli.config import resolve
    from kerasrun.core.errors import UsageError

    with pytest.raises(UsageError) as refused:
        resolve(["train.py", "--mlflow", "True", "--mlflow_tracking_uri", "https://me:hunter2@mlflow.example.org"])
    assert "MLFLOW_TRACKING_PASSWORD" in str(refused.value) and "hunter2" not in str(refused.value)


def test_without_a_uri_a_table_run_goes_to_mlflows_default_store_and_its_model_takes_columns(tmp_path):
    import keras
    import mlflow

    rng = np.random.default_rng(2)
    sizes = rng.uniform(20, 120, 200)
    rows = [f"{city},{size:.1f},{int(size > 60)}" for city, size in zip(rng.choice(["lyon", "nice"], 200), sizes)]
    (tmp_path / "homes.csv").write_text("city,size,label\n" + "\n".join(rows) + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, TRAIN, "--dataset=csv:homes.csv", "--epochs=2", "--run_name=t",
                           "--mlflow=True", "--mlflow_log_models=True"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    tracked = results(tmp_path, "t")["mlflow"]
    assert tracked["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}" and (tmp_path / "mlflow.db").is_file()
    assert tracked["experiment_id"] == "0" and tracked["lost"]["models"] == 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        served = mlflow.pyfunc.load_model(tracked["model_uri"])
        columns = {"city": np.array(["nice", "lyon", "nice"], dtype=object),
                   "size": np.array([25.0, 70.0, 110.0], dtype="float32")}
        expected = keras.saving.load_model(tmp_path / "tensorboard_logs" / "t" / "model.keras").predict(columns,
                                                                                                    verbose=0)
        np.testing.assert_allclose(served.predict(columns), expected, rtol=1e-5, atol=1e-6)
    finally:
        mlflow.set_tracking_uri(None)


def test_runs_opening_one_new_sqlite_store_at_once_all_get_it(tmp_path):
    # MLflow's creation of an SQLite store's tables fails in all but one of several processes doing it at once.
    code = (f"{IMPORT_KERASRUN}\nimport sys, time\nimport mlflow\nfrom kerasrun.callbacks.mlflow import open_client\n"
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
            "client = open_client('sqlite:///store/mlflow.db')\n"
            "print(client.create_run('0').info.run_id)\n")
    start = str(time.time() + 8)  # Past every process's import of MLflow: they open the store together.
    processes = [subprocess.Popen([sys.executable, "-c", code, start], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [error[-1000:] for _, error in outputs]
    import mlflow

    runs = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}").search_runs(["0"])
    assert sorted(run.info.run_id for run in runs) == sorted(out.strip() for out, _ in outputs)


def test_metrics_queued_behind_a_slow_call_go_out_in_one_request():
    import threading

    from kerasrun.callbacks.subclasses import mlflow as ours

    class Client:
        def __init__(self):
            self.requests = []
            self.release = threading.Event()

        def log_batch(self, run_id, metrics=()):
            self.release.wait(30)  # A slow server: the calls queue up meanwhile.
            self.requests.append([(metric.key, metric.step) for metric in metrics])

    class Sender(ours._Sender):
        def _start(self):
            self.client, self.run_id = Client(), "run"

    logger = ours.MLflowLogger(hparams={"epochs": 3})
    sender = Sender(logger)
    for step in range(1, 51):
        sender.metrics({"loss": 1.0 / step, "accuracy": 0.5}, step, prefix="batch_")
    while sender.client is None:
        time.sleep(0.01)
    sender.client.release.set()
    sender.calls.put(None)
    sender.thread.join(30)
    assert not sender.thread.is_alive()
    assert sorted(step for request in sender.client.requests for _, step in request) == sorted(2 * list(range(1, 51)))
    assert len(sender.client.requests) <= 2  # The 50 calls: gathered, not one request each.
    assert sender.lost["metric values"] == 0


def test_a_server_that_never_answers_holds_nothing_up_and_is_waited_for_no_longer_than_the_timeout(tmp_path):
    import socket

    write_data(tmp_path)
    with socket.socket() as silent:  # Takes connections (the kernel's backlog) and never answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, TRAIN, "--dataset=npz:blobs.npz", "--epochs=2", "--run_name=h", "--mlflow=True",
             f"--mlflow_tracking_uri=http://127.0.0.1:{silent.getsockname()[1]}", "--mlflow_timeout=4"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    tracked = results(tmp_path, "h")["mlflow"]
    warnings = [line for line in done.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and "did not finish within --mlflow_timeout 4 s" in warnings[0], done.stderr
    assert tracked["run_id"] is None and tracked["error"].startswith("it did not finish within --mlflow_timeout 4 s")
    assert tracked["lost"]["params"] > 100 and tracked["lost"]["metric values"] >= 2 * 4 and tracked["lost"]["status"]
    assert "MLflow: logging what is left of the run (waiting up to 1 s more, --mlflow_timeout)" in done.stdout
    assert took < 60  # Training, plus at most the 4 s: not MLflow's minutes of retries.
