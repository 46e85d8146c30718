"""The run itself: data, model, compile, callbacks, `model.fit`, report.

This is the only module that imports TensorFlow, and only inside `run`, after
the configuration has been validated.
"""

import math
import sys
import time

import datasets
import models
from callbacks.builder import build_callbacks
from runner.compiling import check_metrics, choose_loss, make_optimizer
from runner.config import check_against_data
from runner.errors import NAN_EXIT_CODE, RunError, first_line

# How Keras's TerminateOnNaN(raise_error=True) says it stopped; tests/test_train_callbacks.py
# fails if a Keras upgrade changes it.
NAN_STOP_MESSAGE = "NaN or Inf loss encountered"
from runner.run_paths import claim_run_dir


def run(config):
    """Trains as `config` says and prints a summary.

    Args:
        config: The resolved Config.

    Returns:
        The process exit status.

    Raises:
        UsageError: when the data or the model named in the config turns out
            to be unusable (found only once it is loaded).
        RunError: when a download the run needs fails.
    """
    data = load_data(config)  # NumPy sources load without TensorFlow: their mistakes show at once.
    check_against_data(config, has_validation=data.val is not None)
    import keras

    keras.utils.set_random_seed(config.seed)
    train_data, validation_data = datasets.make_tf_datasets(data, batch_size=config.batch_size, seed=config.seed)
    model = build_and_compile(config, data)
    paths = claim_run_dir(config.tensorboard_log_dir, config.run_name)
    if config.run_name and paths.name != config.run_name:
        print(f"Run directory {config.run_name!r} exists already; this run writes to {paths.dir}")
    callbacks = build_callbacks(config, paths)
    started = time.monotonic()
    try:
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            shuffle=False,  # The tf.data pipeline shuffles with the seed.
            verbose=resolve_verbosity(config.verbose),
            callbacks=callbacks,
        ).history
    except RuntimeError as error:
        if NAN_STOP_MESSAGE not in str(error):
            raise RunError(f"training failed: RuntimeError: {first_line(error)}") from error
        print(f"train.py: stopped: {first_line(error)}", file=sys.stderr)
        return NAN_EXIT_CODE
    except Exception as error:  # Keras and TensorFlow raise many types; the user needs one line.
        raise RunError(f"training failed: {type(error).__name__}: {first_line(error)}") from error
    print(summary(history, time.monotonic() - started, paths))
    last_loss = history["loss"][-1]
    if not math.isfinite(last_loss):
        what = "NaN (not a number)" if math.isnan(last_loss) else "infinite"
        print(f"train.py: stopped: the loss became {what} in epoch {len(history['loss'])}", file=sys.stderr)
        return NAN_EXIT_CODE
    return 0


def load_data(config):
    """Loads the dataset the config names."""
    return datasets.load(
        config.dataset,
        seed=config.seed,
        validation_split=config.validation_split,
        label_column=config.dataset_label_column,
        image_size=config.dataset_image_size,
        color_mode=config.dataset_color_mode,
    )


def build_and_compile(config, data):
    """Builds the model the config names and compiles it for the data's labels."""
    model = models.build(
        config.model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        weights=config.model_weights,
        safe_mode=config.model_safe_mode,
    )
    outputs = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    check_metrics(config.metrics, data.label_kind, outputs)
    model.compile(
        optimizer=make_optimizer(config),
        loss=choose_loss(config.loss, data.label_kind, outputs),
        metrics=list(config.metrics),
    )
    return model


def resolve_verbosity(verbose):
    """Returns Keras's verbosity: auto means a progress bar on a terminal, else one line per epoch."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def summary(history, seconds, paths):
    """Returns the lines printed after training: the last epoch's logs and the run directory."""
    epochs = len(history.get("loss", ()))
    final = "  ".join(f"{key}: {values[-1]:.6g}" for key, values in history.items() if values)
    return (
        f"Trained {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s.\n"
        f"Final {final}\n"
        f"Run directory: {paths.dir}"
    )
