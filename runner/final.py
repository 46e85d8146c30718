"""What a run leaves behind once training ends: the saved model, its score on the test split, its exports.

Each step is reported in one line. None of them can lose the run: a step
that fails says why in a warning and in results.json, and the run keeps its
status.
"""

import os
import sys

from kerasrun import datasets
from kerasrun.callbacks.model_checkpoint import BEST_MODEL_FILE
from kerasrun.core import files
from kerasrun.core.errors import first_line, wants_traceback
from kerasrun.datasets.arrays import part_size
from kerasrun.runner.run_paths import MODEL_FILE

# Outcomes after which the model is worth keeping, and those after which it is evaluated on the test split.
# A run the study's pruner stopped (pruned) ends as an early stop does.
SAVED_AFTER = ("completed", "early_stopped", "pruned", "interrupted")
EVALUATED_AFTER = ("completed", "early_stopped", "pruned")


def leave_behind(config, model, pipelines, paths, distribution, status, stop, early_stopping=None):
    """Saves the model, evaluates it on the test split and exports it, as the config says.

    Every worker of a multi-worker run evaluates (the evaluation is a
    collective step); only the chief writes. A signal (`stop`, the run's
    GracefulStop) ends the evaluation after its current batch and skips what
    is left; a second Ctrl-C stops at once. The model is saved first, and in
    one step, so neither loses it.

    Args:
        config: The run's Config.
        model: The trained model.
        pipelines: The run's Pipelines (their `data` holds the test split).
        paths: The run's RunPaths.
        distribution: The run's Distribution.
        status: How training ended (results' status).
        stop: The run's GracefulStop.
        early_stopping: The run's EarlyStopping callback, or None.

    Returns:
        {"model_file": path or None, "test": {metric: value} or None, "test_weights": str or None,
        "exports": {format: path or error} (only with --export), "warnings": [line, ...],
        "stopped": what a signal interrupted, or None}.
    """
    products = {"model_file": None, "test": None, "test_weights": None, "warnings": [], "stopped": None}
    try:
        if config.save_model and status in SAVED_AFTER and not stop.forced and distribution.is_chief:
            products["model_file"] = _attempt(products, "saving the model", lambda: save_final_model(model, paths))
        if status in EVALUATED_AFTER and pipelines.data.test is not None and not stop.received:
            evaluated = _attempt(products, "evaluating on the test split",
                                 lambda: evaluate_test(config, model, pipelines, paths, distribution.is_chief, stop,
                                                       early_stopping))
            if evaluated and not stop.received:
                products["test"], products["test_weights"] = evaluated
            elif stop.received:
                products["stopped"] = "the evaluation on the test split"
        if config.export and status in EVALUATED_AFTER and distribution.is_chief and not stop.received:
            from kerasrun.runner.export import export_model

            products["exports"] = export_model(model, paths, config.export)
            products["warnings"] += [f"exporting {name} {result}" for name, result in products["exports"].items()
                                     if result.startswith("failed: ")]
    except KeyboardInterrupt:  # The second Ctrl-C: files are written in one step, so none is torn.
        products["stopped"] = products["stopped"] or "what follows training"
    return products


def _attempt(products, what, step):
    """Runs `step()`; on an error, records a warning and returns None instead of failing the run."""
    try:
        return step()
    except Exception as error:  # A full disk, a model Keras cannot save or evaluate: the run's results still count.
        if wants_traceback():
            raise
        warning = f"{what} failed: {type(error).__name__}: {first_line(error)}"
        print(f"train.py: warning: {warning}", file=sys.stderr, flush=True)
        products["warnings"].append(warning)
        return None


def save_final_model(model, paths):
    """Saves the model as it ends training into the run directory's model.keras; returns its path."""
    from kerasrun.models.saved import save_model

    path = paths.path(MODEL_FILE)
    # What a kill while an earlier part of this run saved left behind; the run directory is this process's (locked).
    for name in os.listdir(paths.dir):
        if files.temporary_target(name) == MODEL_FILE:
            os.unlink(paths.path(name))
    save_model(model, path)
    print(f"Saved the trained model to {path}", flush=True)
    return path


def evaluate_test(config, model, pipelines, paths, is_chief, stop, early_stopping=None):
    """Evaluates the model once on the test split; returns ({metric: value}, the weights: last or best).

    With --evaluate_weights best, the weights are those early stopping
    restored (the run ends with them), else those of the best checkpoint
    (best.keras), given back afterwards: exports are of model.keras.
    """
    restored = restored_epoch(early_stopping)
    described, weights, last = "the weights training ended with", "last", None
    if restored:
        described += f" (early stopping restored those of epoch {restored})"
    if config.evaluate_weights == "best":
        last = model.get_weights()
        described, weights = use_best_weights(config, model, paths, restored)
    test = test_batches(config, pipelines)
    if is_chief:
        examples = getattr(test, "count", None) or part_size(pipelines.data.test)  # Data parallel on JAX may cut some.
        print(f"Evaluating {described} on the test split ({examples:,} examples)...", flush=True)
    try:
        logs = model.evaluate(test, verbose=0, return_dict=True, callbacks=[_stop_evaluating(stop)])
    except Exception as error:  # A streamed image that cannot be decoded: name it.
        explained = datasets.explain_failure(pipelines.data, error, f"--dataset={config.dataset!r}")
        if explained:
            raise RuntimeError(explained) from error
        raise
    finally:
        if last is not None:
            model.set_weights(last)
    return {name: float(value) for name, value in logs.items()}, weights


def test_batches(config, pipelines):
    """The test split's batches, as the training data's: NumPy batches when training took them (on JAX), else tf.data."""
    multiple = getattr(pipelines.train, "multiple", None)  # NumpyBatches (datasets/pipeline.py) have one.
    if multiple is not None:
        return datasets.numpy_test_batches(pipelines.data.test, batch_size=config.batch_size, multiple=multiple)
    return datasets.make_test_dataset(pipelines.data, batch_size=config.batch_size)


def _stop_evaluating(stop):
    """A callback that ends the evaluation after its current batch once a signal has arrived."""
    import keras

    class StopEvaluating(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            if stop.received is not None:
                self.model.stop_evaluating = True

    return StopEvaluating()


def restored_epoch(early_stopping):
    """The epoch (from 1) whose weights early stopping restored as training ended, or None if it restored none."""
    if early_stopping is None or not early_stopping.restore_best_weights or early_stopping.best_weights is None:
        return None  # Off, or it watched no epoch (--early_stopping_start_from_epoch beyond them).
    return early_stopping.best_epoch + 1


def use_best_weights(config, model, paths, restored):
    """Gives the model the run's best weights; returns (which they are, for the line printed; best or last).

    Those early stopping restored when it did; else best.keras's, when
    ModelCheckpoint kept one; else the weights stay those training ended
    with, and the line says why.
    """
    if restored:
        return (f"the best weights by {config.early_stopping_monitor} (epoch {restored}), as early stopping "
                "restored them", "best")
    path = paths.path(BEST_MODEL_FILE)
    if config.model_checkpoint and os.path.exists(path):
        import keras

        best = keras.saving.load_model(path, compile=False, safe_mode=False)  # Our own file, written by this run.
        model.set_weights(best.get_weights())
        return f"the best weights by {config.model_checkpoint_monitor}, from {BEST_MODEL_FILE}", "best"
    why = (f"no epoch logged {config.model_checkpoint_monitor}, so there is no {BEST_MODEL_FILE}"
           if config.model_checkpoint else "early stopping watched no epoch, see --early_stopping_start_from_epoch")
    return f"the weights training ended with (not the best: {why})", "last"
