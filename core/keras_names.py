"""Names Keras accepts for optimizers and callback hooks, known without importing Keras.

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

# The losses and metrics, with their aliases, arguments and directions: core/losses_metrics.py.


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
