"""Names Keras accepts for optimizers, losses and metrics, known without importing Keras.

Flags are checked against these before TensorFlow loads; a test keeps the
lists in step with the installed Keras.
"""

OPTIMIZERS = {
    "adadelta": "Adadelta",
    "adafactor": "Adafactor",
    "adagrad": "Adagrad",
    "adam": "Adam",
    "adamax": "Adamax",
    "adamw": "AdamW",
    "ftrl": "Ftrl",
    "lamb": "Lamb",
    "lion": "Lion",
    "muon": "Muon",
    "nadam": "Nadam",
    "rmsprop": "RMSprop",
    "schedule_free_adamw": "ScheduleFreeAdamW",
    "sgd": "SGD",
}

# The names `compile(loss=...)` accepts, Keras's short aliases included.
LOSSES = (
    "binary_crossentropy",
    "bce",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "log_cosh",
    "mean_absolute_error",
    "mae",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_error",
    "mse",
    "mean_squared_logarithmic_error",
    "msle",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
)

# Losses and metrics that compare values rather than read the labels as classes:
# any labels and any number of outputs suit them (a regression, say).
VALUE_COMPARISONS = (
    "cosine_similarity", "huber", "log_cosh", "mean_absolute_error", "mae", "mean_absolute_percentage_error",
    "mape", "mean_squared_error", "mse", "mean_squared_logarithmic_error", "msle", "poisson",
)

METRICS = (
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "kl_divergence",
    "mean_absolute_error",
    "mae",
    "mean_squared_error",
    "mse",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
)

# Whether each metric Keras compiles from a name (and logs under that name)
# should rise ("up") or fall ("down"): the `_direction` Keras gives it, which its
# monitoring callbacks read. Metrics without one (counts like true_positives) are left out.
METRIC_DIRECTIONS = {
    "accuracy": "up", "acc": "up", "auc": "up", "binary_accuracy": "up", "binary_io_u": "up",
    "categorical_accuracy": "up", "concordance_correlation": "up", "cosine_similarity": "up", "f1_score": "up",
    "f_beta_score": "up", "pearson_correlation": "up", "precision": "up", "r2_score": "up", "recall": "up",
    "sparse_categorical_accuracy": "up", "sparse_top_k_categorical_accuracy": "up",
    "top_k_categorical_accuracy": "up",
    "binary_crossentropy": "down", "bce": "down", "categorical_crossentropy": "down",
    "categorical_hinge": "down", "hinge": "down", "kl_divergence": "down", "log_cosh_error": "down",
    "mean_absolute_error": "down", "mae": "down", "mean_absolute_percentage_error": "down", "mape": "down",
    "mean_squared_error": "down", "mse": "down", "mean_squared_logarithmic_error": "down", "msle": "down",
    "poisson": "down", "root_mean_squared_error": "down", "sparse_categorical_crossentropy": "down",
    "squared_hinge": "down",
}


def direction(monitor, compiled=METRIC_DIRECTIONS):
    """Returns "min" or "max" for a logged quantity, as Keras's mode "auto" decides it, or None.

    Keras's monitoring callbacks (EarlyStopping, ModelCheckpoint) minimise the
    loss and follow a compiled metric's direction, and refuse anything else;
    this is that rule, the one every "which way is better" question here asks.

    Args:
        monitor: A logged name: loss, val_accuracy, ...
        compiled: Metric name -> "up" or "down", for the metrics compiled.
    """
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    if name in compiled:
        return "max" if compiled[name] == "up" else "min"
    return None


# Every hook of keras.callbacks.Callback that fit, evaluate and predict call, with its arguments.
CALLBACK_HOOKS = {
    "on_train_begin": "(logs)", "on_train_end": "(logs)",
    "on_epoch_begin": "(epoch, logs)", "on_epoch_end": "(epoch, logs)",
    "on_train_batch_begin": "(batch, logs)", "on_train_batch_end": "(batch, logs)",
    "on_test_begin": "(logs)", "on_test_end": "(logs)",
    "on_test_batch_begin": "(batch, logs)", "on_test_batch_end": "(batch, logs)",
    "on_predict_begin": "(logs)", "on_predict_end": "(logs)",
    "on_predict_batch_begin": "(batch, logs)", "on_predict_batch_end": "(batch, logs)",
}
# The legacy names Keras's default on_train_batch_begin and on_train_batch_end call.
LEGACY_HOOKS = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}
