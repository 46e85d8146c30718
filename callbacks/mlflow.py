"""MLflow: log the run to an MLflow tracking server or store: params, metrics, artifacts, the model, its end.

Nothing here imports MLflow: `--help`, `--dry_run` and usage errors do not
pay for it. The callback (callbacks/subclasses/mlflow.py) imports it once it
is built, and talks to the tracker from a thread of its own, so that a slow
or lost server never holds up training.
"""

import fcntl
import math
import os
import re
import urllib.parse

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.errors import UsageError
from kerasrun.core.options import Arg, Bool, Float, Str, StrList, positive, when

# The file in the run's directory that names its MLflow run, so that a resumed run continues it.
RUN_FILE = "mlflow_run.json"
# Schemes MLflow's tracking stores take: a server, a database (SQLAlchemy's names, with a +driver), Databricks.
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
OTHER_SCHEMES = ("databricks", "databricks-uc", "uc")
# Tag keys MLflow (mlflow.runName, mlflow.parentRunId, ...) and this runner set themselves.
RESERVED_TAG_PREFIXES = ("mlflow.", "kerasrun.")
# The longest experiment name an MLflow server takes.
LONGEST_EXPERIMENT_NAME = 500
# MLflow's rule for tag and param keys: letters, digits, and _ - . space / (mlflow/utils/validation.py).
_KEY = re.compile(r"^[\w\-. /]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# MLflow's HTTP client tries a request 8 times over about four minutes by default (7 retries, backoff factor 2,
# 120 s timeout); a run or a sweep bounds that, unless the user's environment sets them.
BOUNDED_REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                    # MLflow prints a run's address when it ends; ours print it once, when it starts.
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def bound_requests(timeout=None):
    """Bounds MLflow's HTTP retries and each request's time (to `timeout` s at most), where the environment
    does not set them. Call it on the main thread: setting the environment is not thread-safe."""
    for name, value in BOUNDED_REQUESTS.items():
        if name == "MLFLOW_HTTP_REQUEST_TIMEOUT" and timeout is not None:  # MLflow reads a whole number.
            value = str(max(1, math.ceil(min(float(value), timeout))))
        os.environ.setdefault(name, value)


def uri_problem(uri):
    """Says what is wrong with a tracking URI (empty: MLflow's default), or returns None when MLflow can take it."""
    if not uri or uri.lower() in OTHER_SCHEMES:  # "databricks": the workspace of Databricks' own configuration.
        return None
    if "://" not in uri and not uri.lower().startswith("file:"):
        if re.match(r"^https?:?/", uri, re.IGNORECASE):
            return "looks like a server's URL, mistyped: give http://host:port (a server) or sqlite:///file.db"
        if re.match(r"^[A-Za-z][\w+.-]*:", uri):
            return "is neither a URL (scheme://...) nor a directory; a server is http://host:port"
        return _file_store_problem()
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "file":
        return _file_store_problem()
    if scheme.split("+", 1)[0] in DATABASE_SCHEMES or scheme in OTHER_SCHEMES:
        return None
    if scheme not in SERVER_SCHEMES:
        return (f"{scheme}:// is no tracking store MLflow knows: give http(s)://host:port (a server), "
                "sqlite:///file.db, postgresql://..., mysql://..., file:///dir or a directory")
    try:
        parsed = urllib.parse.urlsplit(uri)
        port = parsed.port  # Raises ValueError on a port that is not a number below 65536.
    except ValueError as error:
        return f"is not a URL MLflow can reach: {error}"
    if not parsed.hostname:
        return "names no host: give http(s)://host:port"
    if port == 0:
        return "has port 0: give the server's port"
    return None


def open_client(uri):
    """Returns an `mlflow.MlflowClient` of the tracking store at `uri`, the store made ready.

    MLflow creates an SQLite store's tables when it first opens it, and two
    processes doing so at once fail (one finds a table the other has just
    made): runs started together on MLflow's default store would. Opening
    such a file is done under a lock on it (flock, which SQLite's own locks
    do not see), so the first creates the tables and the others wait.
    """
    import mlflow

    database = _sqlite_file(uri)
    if database is None:
        return mlflow.MlflowClient(uri)
    os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    with open(database, "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            client = mlflow.MlflowClient(uri)
            client.search_experiments(max_results=1)  # Opens the store, creating its tables.
            return client
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def experiment_id(client, name):
    """Returns the id of the experiment `name` (its environment's, MLflow's Default when empty), created if missing.

    Raises:
        ValueError: the experiment is deleted.
        mlflow.exceptions.MlflowException: the tracker's own errors.
    """
    import mlflow

    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        return os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"  # MLflow's Default experiment.
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except mlflow.exceptions.MlflowException:  # Another run (or sweep) created it a moment ago.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise ValueError(f"experiment {name!r} is deleted: restore it (mlflow experiments restore) or name "
                         "another with --mlflow_experiment")
    return experiment.experiment_id


def _sqlite_file(uri):
    """Returns the file of an SQLite tracking URI, or None for any other store."""
    if not uri.lower().startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return None if database in (None, "", ":memory:") else database


def _file_store_problem():
    """Refuses a directory (MLflow's file store), which MLflow 3 opens only when MLFLOW_ALLOW_FILE_STORE says so."""
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1"):
        return None
    return ("is a directory, MLflow's file store, which MLflow 3 keeps closed (set MLFLOW_ALLOW_FILE_STORE=true to "
            "open it anyway); give sqlite:///path/mlflow.db or a server's http://host:port")


def has_password(uri):
    """Whether a URI holds a password (user:password@), which config.yaml and the params would keep."""
    try:
        return bool(urllib.parse.urlsplit(uri).password)
    except ValueError:
        return False


def parse_tags(items):
    """Returns {key: value} from "key=value" items, each stripped of the spaces around it."""
    return {key.strip(): value.strip() for key, value in (item.split("=", 1) for item in items)}


def _check(family, values, checker):
    _check_uri(family, values, checker)
    _check_tags(family, values, checker)
    _check_names(family, values, checker)


def _check_uri(family, values, checker):
    uri_flag = family.flag_name("tracking_uri")
    problem = uri_problem(values["tracking_uri"])
    if problem:
        checker.fail(uri_flag, problem)
    if has_password(values["tracking_uri"]):  # The value itself is not echoed: it holds the password.
        raise UsageError(f"{checker.flag_label(uri_flag)}: holds a password, which config.yaml and the run's record "
                         "would keep; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (a server), or "
                         "MLFLOW_TRACKING_URI (a database) in the environment instead")


def _check_tags(family, values, checker):
    tags_flag = family.flag_name("tags")
    for number, item in enumerate(values["tags"], start=1):
        key, equals, _ = item.partition("=")
        key = key.strip()
        if not equals or not key:
            checker.fail(tags_flag, f"item {number} ({item!r}) must look like key=value")
        if not _KEY.match(key):
            checker.fail(tags_flag, f"tag key {key!r} may hold only letters, digits, and _ - . / and spaces "
                                    "(MLflow's rule)")
        if key.startswith(RESERVED_TAG_PREFIXES):
            checker.fail(tags_flag, f"tag key {key!r}: keys starting with mlflow. or kerasrun. are set by MLflow and "
                                    "the runner (the run's name: --mlflow_run_name)")
    keys = [item.partition("=")[0].strip() for item in values["tags"]]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        checker.fail(tags_flag, f"tag {repeated[0]!r} is given twice")


def _check_names(family, values, checker):
    """Refuses names MLflow would refuse only once training is over: the experiment's, the registry's, the parent's."""
    experiment = values["experiment"]
    if experiment and not experiment.strip():
        checker.fail(family.flag_name("experiment"), "is blank: give a name, or leave it out for MLflow's Default")
    if len(experiment) > LONGEST_EXPERIMENT_NAME:
        checker.fail(family.flag_name("experiment"), f"is {len(experiment)} characters long; an MLflow server takes "
                                                     f"at most {LONGEST_EXPERIMENT_NAME}")
    registered = values["registered_model_name"]
    if registered and (not registered.strip() or "/" in registered or ":" in registered):
        checker.fail(family.flag_name("registered_model_name"), "must be a name without / or : (MLflow's registry "
                                                                "refuses them), not blank")
    if values["parent_run_id"] and not _RUN_ID.match(values["parent_run_id"]):
        checker.fail(family.flag_name("parent_run_id"), "must be an MLflow run id: 32 lowercase hexadecimal digits")


def _run_kwargs(values, run, config):
    """Gives the callback the run's directory, the HParams set (its params) and TensorBoard's batch logging."""
    update = config["tensorboard_update_freq"] if config["tensorboard"] else "epoch"
    return {"run_dir": run.dir, "hparams": config.hparams(),
            "batch_every": None if update == "epoch" else 1 if update == "batch" else update}


def _idle_hooks(callback):
    return () if callback.batch_every else ("on_train_batch_end",)


def _report(callback, record, paths):
    return callback.report(record, paths)


FAMILY = CallbackFamily(
    name="mlflow",
    title="MLflow",
    summary="Log the run to MLflow: every flag of the HParams set as a param, each epoch's metrics (step: the "
            "epoch; batch ones too when --tensorboard_update_freq writes them), the final and test metrics, "
            "config.yaml, results.json, the model (with --mlflow_log_models), the run's end as its status. A "
            "resumed run continues its MLflow run. Logging runs beside training: a server that does not answer "
            "costs a warning, and results.json says what it lost.",
    subclass="kerasrun.callbacks.subclasses.mlflow:MLflowLogger",
    args=(
        Arg("tracking_uri", Str(), "",
            "Where runs go: http(s)://host:port of a tracking server, or a database (sqlite:///mlflow.db, "
            "postgresql://host/db); empty: MLFLOW_TRACKING_URI when set, else MLflow's default "
            "(sqlite:///mlflow.db in the working directory).", bookkeeping=True),
        Arg("experiment", Str(), "",
            "The MLflow experiment, created if missing; empty: MLFLOW_EXPERIMENT_NAME when set, else MLflow's "
            "Default.", bookkeeping=True),
        Arg("run_name", Str(), "", "The MLflow run's name; empty: the run directory's name.", bookkeeping=True),
        Arg("tags", StrList(), (), "Tags of the run, as key=value items separated by commas.", bookkeeping=True),
        Arg("log_models", Bool(), False,
            "Log the trained model: model.keras, and an MLflow model with an input signature (mlflow models "
            "serve, mlflow.pyfunc.load_model).", bookkeeping=True),
        Arg("registered_model_name", Str(), "",
            "Register the logged model under this name in MLflow's model registry (a new version per run).",
            bookkeeping=True, applies=when("mlflow_log_models", (True,), "--mlflow_log_models True")),
        Arg("parent_run_id", Str(), "",
            "The MLflow run this one is nested under; scripts/sweep.py passes its sweep's to each trial.",
            bookkeeping=True),
        Arg("timeout", Float(), 30.0,
            "Seconds the run waits at its end for what is still to be logged; what a server that does not answer "
            "by then leaves unlogged is counted in results.json.", positive, bookkeeping=True),
    ),
    check=_check,
    run_kwargs=_run_kwargs,
    idle_hooks=_idle_hooks,
    report=_report,
    # The run's batches before the current epoch and in it, which batch metrics are numbered by: a resumed run
    # goes on counting.
    resume_state=("_epoch_base", "_batches"),
    worker_overrides={"mlflow": False},  # The chief alone logs the run.
    switch_bookkeeping=True,
)
