"""The run itself: data, model, compile, callbacks, `model.fit`, report.

This is the only module that imports TensorFlow, and only inside `run`, after
the configuration has been validated.
"""

import math
import os
import sys
import time

import datasets
import models
from callbacks.builder import build_callbacks, enabled_families
from runner import keras_names
from runner.errors import NAN_EXIT_CODE, RunError, UsageError, first_line

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
    # TensorFlow's C++ start-up chatter hides our own output; users who want it can set this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    train_data, validation_data = datasets.make_tf_datasets(data, batch_size=config.batch_size, seed=config.seed)
    model = models.build(
        config.model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        weights=config.model_weights,
        safe_mode=config.model_safe_mode,
    )
    model.compile(
        optimizer=make_optimizer(config),
        loss=choose_loss(config.loss, data.label_kind),
        metrics=list(config.metrics),
    )
    paths = claim_run_dir(config.tensorboard_log_dir, config.run_name)
    if config.run_name and paths.name != config.run_name:
        print(f"Run directory {config.run_name!r} exists already; this run writes to {paths.dir}")
    started = time.monotonic()
    try:
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            shuffle=False,  # The tf.data pipeline shuffles with the seed.
            verbose=resolve_verbosity(config.verbose),
            callbacks=build_callbacks(config, paths),
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


def make_optimizer(config):
    """Returns the optimizer, with what the enabled callbacks need of it (EMA, for one)."""
    import keras

    options = {"learning_rate": config.learning_rate}
    for family in enabled_families(config):
        if family.optimizer_options is not None:
            options.update(family.optimizer_options(family.values(config)))
    return getattr(keras.optimizers, keras_names.OPTIMIZERS[config.optimizer])(**options)


def choose_loss(name, label_kind):
    """Returns the loss to compile with: `name`, or for auto the one that fits the labels.

    Raises:
        UsageError: for a cross-entropy that expects the other kind of labels.
    """
    if name == "auto":
        return "categorical_crossentropy" if label_kind == "one_hot" else "sparse_categorical_crossentropy"
    if name.startswith("sparse_categorical") and label_kind == "one_hot":
        raise UsageError(f"--loss={name}: needs integer class labels, but the dataset's labels are one-hot; "
                         "use categorical_crossentropy (or auto)")
    if name.startswith("categorical") and label_kind == "int":
        raise UsageError(f"--loss={name}: needs one-hot labels, but the dataset's labels are integer "
                         "class ids; use sparse_categorical_crossentropy (or auto)")
    return name


def resolve_verbosity(verbose):
    """Returns Keras's verbosity: auto means a progress bar on a terminal, else one line per epoch."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def summary(history, seconds, paths):
    """Returns the lines printed after training: the last epoch's logs and the run directory."""
    epochs = len(history.get("loss", ()))
    final = "  ".join(f"{key}: {values[-1]:.4f}" for key, values in history.items() if values)
    return (
        f"Trained {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s.\n"
        f"Final {final}\n"
        f"Run directory: {paths.dir}"
    )
