"""The run's record: config.yaml at the start, results.json (and a results-file line) at the end."""

import json
import math

import yaml

from kerasrun.core import files
from kerasrun.core.errors import INTERRUPTED_EXIT_CODE, NAN_EXIT_CODE, PRUNED_EXIT_CODE, RUN_FAILED_EXIT_CODE
from kerasrun.runner.run_paths import CONFIG_FILE, RESULTS_FILE

# Exit status per outcome (SIGTERM's 143 comes from the signal); the README documents them.
EXIT_CODES = {
    "completed": 0, "early_stopped": 0, "failed": RUN_FAILED_EXIT_CODE, "nan": NAN_EXIT_CODE,
    "interrupted": INTERRUPTED_EXIT_CODE, "pruned": PRUNED_EXIT_CODE,
}


def write_config(paths, saved_config):
    """Writes config.yaml: every effective value, so `--config` on it reruns the experiment."""
    header = "# Every effective value of this run; rerun it with: python train.py --config <this file>\n"
    text = yaml.safe_dump(saved_config, sort_keys=False, allow_unicode=True)
    files.write_atomically(paths.path(CONFIG_FILE), header + text)


def best_epoch(history, epochs, monitor, mode):
    """Returns {"monitor", "mode", "value", "epoch"} for the best epoch of `monitor`, or None if never logged.

    Args:
        history: Keras's History.history: key -> one value per epoch run here.
        epochs: The epoch numbers (1-based) those values belong to.
        monitor: The quantity to rank epochs by.
        mode: "min" or "max".
    """
    values = [(value, epoch) for value, epoch in zip(history.get(monitor, ()), epochs) if math.isfinite(value)]
    if not values:
        return None
    pick = min if mode == "min" else max
    value, epoch = pick(values, key=lambda pair: pair[0])
    return {"monitor": monitor, "mode": mode, "value": value, "epoch": epoch}


def make_record(paths, status, exit_code, history, epochs, best, hparams, wall_time, message=None, model=None,
                task=None, products=None, interruptions=()):
    """Returns the results record as a dict.

    Args:
        paths: The run's RunPaths.
        status: completed, early_stopped, pruned, nan, interrupted or failed.
        exit_code: The process's exit status.
        history: key -> per-epoch values ({} when no epoch finished).
        epochs: The 1-based numbers of the epochs in `history`.
        best: What `best_epoch` returned.
        hparams: The effective flag values.
        wall_time: Seconds the run took.
        message: The line the run printed on stderr about its end (why it
            failed or stopped), or None. Defaults to None.
        model: What `describe_model` returned: the model's name and its
            number of trainable parameters (None when it was never built).
        task: What `describe_task` returned. Defaults to None (nothing recorded).
        products: What runner/final.py `leave_behind` returned: the saved
            model's path, the test metrics and the weights they were
            measured with, exports, warnings. Defaults to None (none).
        interruptions: Each stop the run resumed from or ended at, oldest
            first: {"epoch" (1-based), "batch" (batches of it done),
            "signal" (its name; None when no signal was seen, as with kill -9)}.
            Defaults to () (none).
    """
    products = products or {}
    return {
        "run_name": paths.name,
        "run_dir": paths.dir,
        "status": status,
        "exit_code": exit_code,
        "message": message,
        "epochs_completed": epochs[-1] if epochs else 0,
        "final": {key: _json_number(values[-1]) for key, values in history.items() if values},
        "best": best,
        "hparams": hparams,
        "wall_time_s": round(wall_time, 3),
        "interruptions": list(interruptions),
        **(model or describe_model(hparams.get("model"), None)),
        **(task or {}),
        "model_file": products.get("model_file"),
        "test": _json_numbers(products.get("test")),
        "test_weights": products.get("test_weights"),
        **({"exports": products["exports"]} if "exports" in products else {}),
        **({"warnings": products["warnings"]} if products.get("warnings") else {}),
    }


def describe_task(data):
    """Returns {"task", "outputs", "class_names"} of the loaded data (class ids index the names), or {} without data."""
    if data is None:
        return {}
    names = None if data.class_names is None else [str(name) for name in data.class_names]
    return {"task": data.head.task, "outputs": data.head.units, "class_names": names}


def describe_model(name, model):
    """Returns {"model": the --model value, "trainable_parameters": their count, or None if not built,
    "steps_per_execution": the steps it ran per call into the backend (what auto chose), or None}."""
    if model is None:
        return {"model": name, "trainable_parameters": None, "steps_per_execution": None}
    import numpy as np

    count = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    return {"model": name, "trainable_parameters": count, "steps_per_execution": model.steps_per_execution}


def write_results(paths, record, results_file=None):
    """Appends the record to `results_file` as one line, then writes results.json atomically.

    Returns:
        The record written to results.json: when the line cannot be appended,
        the run has failed, and results.json says so, and why.
    """
    if results_file:
        try:
            files.append_line(results_file, json.dumps(record))
        except OSError as error:
            record = {**record, "status": "failed", "exit_code": EXIT_CODES["failed"],
                      "message": f"error: --results_file={results_file}: cannot be written: "
                                 f"{error.strerror or error}"}
    files.write_atomically(paths.path(RESULTS_FILE), json.dumps(record, indent=2) + "\n")
    return record


def _json_numbers(metrics):
    return None if metrics is None else {key: _json_number(value) for key, value in metrics.items()}


def _json_number(value):
    number = float(value)
    return number if math.isfinite(number) else str(number)
