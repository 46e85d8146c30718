"""Our MLflow logger: a Keras callback that logs the run to MLflow from a thread of its own.

MLflow itself is imported by that thread, once training begins: loading this
module (the runner does, to tell callbacks apart) does not import it.
"""

import collections
import json
import logging
import os
import queue
import re
import sys
import threading
import time
import urllib.parse

import keras

from kerasrun.callbacks.mlflow import (RUN_FILE, SERVER_SCHEMES, bound_requests, experiment_id, open_client,
                                      parse_tags)
from kerasrun.core import files
from kerasrun.core.errors import first_line
from kerasrun.core.study import shown_url

# MLflow's run status for each of ours.
STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED",
          "failed": "FAILED", "nan": "FAILED"}
# What one log_batch request may hold (MLflow's limits).
PARAMS_PER_REQUEST = 100
METRICS_PER_REQUEST = 1000
# MLflow's longest param value (mlflow/utils/validation.py); longer ones are cut and say so.
LONGEST_PARAM = 6000
# A call the sender took from the queue: none.
_NOTHING = object()
# Seconds the run's end waits for MLflow before it says it is waiting.
SLOW_END = 3.0
# What results.json's mlflow.lost counts.
LOST_KINDS = ("params", "metric values", "artifacts", "models", "status")


class MLflowLogger(keras.callbacks.Callback):
    """Logs the run to MLflow: params, metrics, artifacts, the model and how the run ended.

    Every call to MLflow runs on a thread of its own, in order; training
    only hands it work. A call that fails after MLflow's retries is
    counted, by kind, in what the tracker lost, and warned about once; after
    a failure, each call first checks (once, quickly) that a server answers.
    `report`, when the run's results are written, waits up to `timeout`
    seconds for the calls left.

    Args:
        tracking_uri: The tracking server or store; empty for MLflow's default.
        experiment: The experiment's name; empty for MLflow's default.
        run_name: The MLflow run's name; empty for the run directory's.
        tags: "key=value" items.
        log_models: Whether to log the trained model.
        registered_model_name: The registry name to register it under, or empty.
        parent_run_id: The MLflow run to nest this one under, or empty.
        timeout: Seconds `report` waits for the calls left.
        run_dir: The run's directory, whose RUN_FILE names the MLflow run.
        hparams: The run's hyperparameters, {flag: value}: its params.
        batch_every: Log batch metrics every this many batches, or None.
    """

    def __init__(self, tracking_uri="", experiment="", run_name="", tags=(), log_models=False,
                 registered_model_name="", parent_run_id="", timeout=30.0, run_dir=".", hparams=None,
                 batch_every=None):
        super().__init__()
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.tags = parse_tags(tags)
        self.log_models = log_models
        self.registered_model_name = registered_model_name
        self.parent_run_id = parent_run_id
        self.timeout = timeout
        self.run_dir = run_dir
        self.hparams = dict(hparams or {})
        self.batch_every = batch_every
        # Batches of the epochs before the current one, and of the current one at its last batch hook.
        self._epoch_base = 0
        self._batches = 0
        self._sender = None

    def on_train_begin(self, logs=None):
        if self._sender is None:
            bound_requests(self.timeout)  # Here, on the main thread.
            self._sender = _Sender(self)

    def on_train_batch_end(self, batch, logs=None):
        if not self.batch_every:
            return
        self._batches = batch + 1
        done = self._epoch_base + self._batches
        if done % self.batch_every == 0:
            self._sender.metrics(logs, done, prefix="batch_")

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_base += self._batches
        self._batches = 0
        self._sender.metrics(logs, epoch)

    def report(self, record, paths):
        """Logs the run's end (final and test metrics, files, the model, the status); returns {"mlflow": ...}.

        Waits up to `timeout` seconds for what is left to log; what is then
        still unlogged is counted as lost.
        """
        if self._sender is None:  # Training never began: there is no MLflow run to end.
            return None
        return {"mlflow": self._sender.finish(record, paths)}


class _Call:
    """One call to MLflow: what it logs (`kind`, counted in `count` items when lost) and how (`action`).

    A call of metrics holds them instead (`metrics`: (values, step) pairs),
    so that the sender can send many such calls in one request.
    """

    def __init__(self, kind, count, action=None, metrics=None, what=None):
        self.kind = kind
        self.count = count
        self.action = action
        self.metrics = metrics
        self.what = what or f"logging {kind}"


class _Sender:
    """The thread that makes every MLflow call of one run, in order, and counts what fails."""

    def __init__(self, logger):
        self.logger = logger
        self.uri = self.shown_uri = ""  # The tracking URI, and as it may be shown: its password (if any) hidden.
        self.client = None
        self.run_id = self.experiment_id = self.url = self.model_uri = self.model_version = None
        self.logged_steps = {}  # metric key -> the last step the MLflow run holds (a resumed run's first part).
        self.lost = collections.Counter()
        self.error = None  # The first failure's line.
        self.failing = False  # The last call failed: the next one checks the server first.
        self.abandoned = False
        self.current = None  # The call under way.
        self.lock = threading.Lock()
        self.calls = queue.Queue()
        self.calls.put(_Call("params", len(logger.hparams), self._start, what="starting the MLflow run"))
        self.thread = threading.Thread(target=self._run, name="MLflow", daemon=True)
        self.thread.start()

    # The training thread's side.

    def metrics(self, logs, step, prefix=""):
        values = {prefix + key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        if values:
            self.calls.put(_Call("metric values", len(values), metrics=[(values, step)]))

    def finish(self, record, paths):
        """Queues the run's end, waits for the calls left (up to the timeout), and returns the mlflow record."""
        if record["status"] != "interrupted":  # An interrupted run's are logged when the run that resumes it ends.
            step = record["epochs_completed"]
            for prefix, values in (("final/", record["final"]), ("test/", record["test"] or {})):
                self.metrics({key: value for key, value in values.items() if isinstance(value, float)}, step, prefix)
        self.calls.put(_Call("artifacts", 1, lambda: self.client.log_artifact(self.run_id, paths.path("config.yaml"))))
        if self.logger.log_models and record.get("model_file"):
            model_file = record["model_file"]
            self.calls.put(_Call("artifacts", 1, lambda: self.client.log_artifact(self.run_id, model_file)))
        if self.logger.log_models and self.logger.model is not None:
            self.calls.put(_Call("models", 1, self._log_model, what="logging the model"))
            if self.logger.registered_model_name:
                self.calls.put(_Call("models", 1, self._register_model, what="registering the model"))
        self.calls.put(_Call("artifacts", 1, lambda: self.client.log_text(
            self.run_id, json.dumps({**record, "mlflow": self.record()}, indent=2) + "\n", "results.json")))
        self.calls.put(_Call("status", 1, lambda: self._end(record["status"]), what="ending the MLflow run"))
        self.calls.put(None)
        waited = min(SLOW_END, self.logger.timeout)
        self.thread.join(waited)
        if self.thread.is_alive() and self.logger.timeout > waited:
            print(f"MLflow: logging what is left of the run (waiting up to {self.logger.timeout - waited:g} s more, "
                  "--mlflow_timeout)", flush=True)
            self.thread.join(self.logger.timeout - waited)
        with self.lock:
            if self.thread.is_alive():  # Still waiting on the tracker: what is left is lost.
                self.abandoned = True
                left = self._count_left()
                self._warn(f"it did not finish within --mlflow_timeout {self.logger.timeout:g} s: {left} "
                           "call(s) were not made", "logging what was left")
            return self.record()

    def record(self):
        """Returns results.json's `mlflow`: where the run was logged, the model, and what the tracker lost."""
        return {"run_id": self.run_id, "experiment_id": self.experiment_id, "tracking_uri": self.shown_uri,
                "url": self.url, "model_uri": self.model_uri, "registered_model_version": self.model_version,
                "lost": {kind: self.lost[kind] for kind in LOST_KINDS}, "error": self.error}

    # The thread's side.

    def _run(self):
        waiting = _NOTHING  # A call taken from the queue while gathering metrics, to make next (None: the end).
        while True:
            call, waiting = (waiting, _NOTHING) if waiting is not _NOTHING else (self.calls.get(), _NOTHING)
            if call is None:
                return
            if call.metrics is not None:
                call, waiting = self._gathered(call)
            self.current = call
            failure = self._attempt(call)
            with self.lock:
                if self.abandoned:
                    return
                self.current = None
                if failure:
                    self.lost[call.kind] += call.count
                    self._warn(failure, call.what)

    def _gathered(self, call):
        """Returns (one call of `call`'s metrics and those of the metric calls queued after it, the next other call
        taken from the queue (None, the end) or _NOTHING): a server that falls behind catches up in requests of
        many metrics."""
        metrics, count = list(call.metrics), call.count
        while count < METRICS_PER_REQUEST:
            try:
                following = self.calls.get_nowait()
            except queue.Empty:
                break
            if following is None or following.metrics is None:
                return _Call("metric values", count, metrics=metrics), following
            metrics += following.metrics
            count += following.count
        return _Call("metric values", count, metrics=metrics), _NOTHING

    def _attempt(self, call):
        """Makes one call; returns None, or the line that says why it failed."""
        if self.run_id is None and call.action != self._start:
            return "there is no MLflow run: it could not be started"
        if self.failing and not self._answers():
            return self.error
        try:
            call.action() if call.metrics is None else self._log_metrics(call.metrics)
        except Exception as error:  # MLflow's, requests', SQLAlchemy's and the OS's errors are many types.
            self.failing = True
            why = _why(error)
            return why.replace(self.uri, self.shown_uri) if self.uri else why
        self.failing = False
        return None

    def _answers(self):
        """Whether the tracking server answers its health check at once (not a server: whether to try at all)."""
        if urllib.parse.urlsplit(self.uri).scheme not in SERVER_SCHEMES:
            return True
        import requests

        try:
            return requests.get(self.uri.rstrip("/") + "/health", timeout=2).ok
        except requests.exceptions.RequestException:
            return False

    def _warn(self, failure, what):
        """Warns of the first failure only; every one is counted in `lost`."""
        if self.error is None:
            self.error = failure
            print(f"train.py: warning: MLflow at {self.shown_uri or 'its default store'}: {what} failed "
                  f"({failure}); training goes on, and results.json's mlflow.lost counts what was not logged",
                  file=sys.stderr, flush=True)

    def _count_left(self):
        """Counts the calls not made as lost (the one under way too); returns how many there were."""
        left = [self.current] if self.current is not None else []
        while True:
            try:
                call = self.calls.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                left.append(call)
        for call in left:
            self.lost[call.kind] += call.count
        return len(left)

    def _start(self):
        """Starts the MLflow run, or continues the one the run's directory names; logs the params it lacks."""
        import mlflow

        # MLflow's own lines (a store's creation, its engine's retries, "View run"): this run says what matters.
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logger = self.logger
        uri = self.uri = logger.tracking_uri or mlflow.get_tracking_uri()  # The environment's may hold a password.
        self.shown_uri = shown = shown_url(uri)
        mlflow.set_tracking_uri(uri)  # Logging a model goes through MLflow's global URI (train.py is one run).
        self.client = open_client(uri)
        run, verb, why_new = self._open_run(mlflow)
        self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        if urllib.parse.urlsplit(uri).scheme in SERVER_SCHEMES:
            self.url = f"{shown.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        print(f"MLflow: this run {verb} MLflow run {self.run_id} ({logger.run_name or run.info.run_name}) of "
              f"experiment {self.experiment_id} at {self.url or shown}{why_new}", flush=True)
        self._log_params_and_tags(run, continued=verb == "continues")

    def _open_run(self, mlflow):
        """Returns (the MLflow run, "continues" or "logs to", why a new run was started: '' or a clause)."""
        logger = self.logger
        earlier = files.read_json(os.path.join(logger.run_dir, RUN_FILE))
        run, why_new = (self._earlier_run(earlier, self.shown_uri, mlflow) if earlier else (None, ""))
        if run is not None:
            self.client.update_run(run.info.run_id, status="RUNNING",
                                   name=logger.run_name if logger.run_name not in ("", run.info.run_name) else None)
            for key in run.data.metrics:
                self.logged_steps[key] = max(point.step for point in self.client.get_metric_history(run.info.run_id,
                                                                                                     key))
            verb = "continues"
            why_new = self._moved(run)
        else:
            run = self.client.create_run(experiment_id(self.client, logger.experiment), run_name=logger.run_name or
                                         os.path.basename(os.path.normpath(logger.run_dir)), tags=self._tags())
            files.write_atomically(os.path.join(logger.run_dir, RUN_FILE), json.dumps(
                {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                 "tracking_uri": self.shown_uri}) + "\n")
            verb = "logs to"
        return run, verb, why_new

    def _log_params_and_tags(self, run, continued):
        """Logs the params the MLflow run lacks (all, unless it is continued), and a continued run's new tags."""
        from mlflow.entities import Param, RunTag

        params = [Param(key, _param_text(value)) for key, value in self.logger.hparams.items()
                  if key not in run.data.params]
        for start in range(0, len(params), PARAMS_PER_REQUEST):
            self.client.log_batch(self.run_id, params=params[start:start + PARAMS_PER_REQUEST])
        if continued and self.logger.tags:  # Tags added on the rerun's command line.
            self.client.log_batch(self.run_id, tags=[RunTag(key, value) for key, value in self.logger.tags.items()])

    def _earlier_run(self, earlier, uri, mlflow):
        """Returns (the MLflow run the interrupted part logged to, or None, why a new one is started: '' or a clause)."""
        if earlier.get("tracking_uri") != uri:
            return None, f" (the interrupted part logged to {earlier.get('tracking_uri')}, not here)"
        try:
            run = self.client.get_run(earlier["run_id"])
        except mlflow.exceptions.MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return None, f" (run {earlier['run_id']}, which the interrupted part logged to, is not there)"
        if run.info.lifecycle_stage != "active":
            return None, f" (run {earlier['run_id']}, which the interrupted part logged to, is deleted)"
        return run, ""

    def _moved(self, run):
        """Says, as a clause, that the run stays in its experiment when the rerun names another; else ''."""
        named = self.logger.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if not named:
            return ""
        experiment = self.client.get_experiment(run.info.experiment_id)
        if experiment.name == named:
            return ""
        return (f" (in experiment {experiment.name!r}, where the interrupted part started it: a run cannot move to "
                f"{named!r})")

    def _tags(self):
        logger = self.logger
        tags = {**logger.tags, "kerasrun.run_dir": os.path.abspath(logger.run_dir), "mlflow.source.name": "train.py"}
        user = _user()
        if user:
            tags["mlflow.user"] = user
        if logger.parent_run_id:
            tags["mlflow.parentRunId"] = logger.parent_run_id
        return tags

    def _log_metrics(self, pairs):
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, step) for values, step in pairs for key, value in values.items()
                   if step > self.logged_steps.get(key, -1)]  # A resumed run's first part may have logged it.
        for start in range(0, len(metrics), METRICS_PER_REQUEST):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + METRICS_PER_REQUEST])

    def _log_model(self):
        import mlflow
        from mlflow.models import Model

        model = self.logger.model
        info = Model.log(artifact_path=None, name="model", flavor=mlflow.keras, run_id=self.run_id, model=model,
                         signature=_signature(model), pip_requirements=_requirements(mlflow))
        self.model_uri = info.model_uri

    def _register_model(self):
        import mlflow

        if self.model_uri is None:
            raise RuntimeError("the model was not logged")
        version = mlflow.register_model(self.model_uri, self.logger.registered_model_name,
                                        await_registration_for=max(1, int(self.logger.timeout)))
        self.model_version = version.version

    def _end(self, status):
        self.client.set_tag(self.run_id, "kerasrun.status", status)
        self.client.set_terminated(self.run_id, STATUS[status])


def _user():
    """Returns the user's login name, which MLflow shows as the run's user, or None."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _signature(model):
    """Returns the model's MLflow signature: its inputs' and outputs' dtypes and shapes (any batch size)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def schema(tensors):
        named = len(tensors) > 1
        return Schema([TensorSpec(_numpy_dtype(tensor.dtype), _shape(tensor, named),
                                  name=_input_name(tensor) if named else None) for tensor in tensors])

    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    return ModelSignature(inputs=schema(list(inputs)), outputs=schema(list(outputs)))


def _shape(tensor, named):
    """Returns a tensor's shape for MLflow: any batch size (-1); a named column of one value (a table's) as a
    column, (-1,), which is how Keras takes a table's words from NumPy."""
    sizes = tuple(-1 if size is None else size for size in tensor.shape[1:])
    return (-1,) if named and sizes == (1,) else (-1, *sizes)


def _numpy_dtype(dtype):
    """Returns the NumPy dtype of a Keras tensor's: text (a table's column of words) is NumPy's object."""
    import numpy as np

    return np.dtype(object) if dtype == "string" else np.dtype(dtype)


def _input_name(tensor):
    return getattr(tensor, "name", None) or str(id(tensor))


def _requirements(mlflow):
    """Returns what serving the model needs: Keras, its backend and MLflow, as installed (nothing is inferred)."""
    from importlib import metadata

    backend = {"tensorflow": "tensorflow", "jax": "jax"}.get(keras.backend.backend(), keras.backend.backend())
    return [f"mlflow=={mlflow.__version__}", f"keras=={keras.__version__}", f"{backend}=={metadata.version(backend)}"]


def _why(error):
    """Says in a few words why a call failed: a server that cannot be reached, or the error's first line."""
    text = first_line(error)
    unreachable = re.search(r"\[Errno -?\d+\] ([^\"')]+)|(Read timed out)", text)
    if unreachable:
        return f"the server cannot be reached: {unreachable.group(1) or unreachable.group(2)}"
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def _param_text(value):
    text = ",".join(str(item) for item in value) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= LONGEST_PARAM else text[:LONGEST_PARAM - 3] + "..."


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
