"""Options and checks shared by callbacks that watch a logged quantity."""

from kerasrun.core import losses_metrics
from kerasrun.core.options import Arg, Choice, Str

MODE = Arg(
    "mode", Choice("auto", "min", "max"), "auto",
    "Whether the monitored quantity should fall (min) or rise (max); auto: as Keras decides, min for "
    "the loss and a compiled metric's own direction.",
)


def monitor_arg(default="val_loss"):
    """Returns the `monitor` Arg with `default` as its default."""
    return Arg("monitor", Str(), default, "Quantity to watch, as logged (loss, val_loss, val_accuracy, ...).")


def check_monitor(family, values, checker):
    """Refuses a monitored quantity that will never be logged.

    Raises:
        UsageError: if the monitored quantity will never be logged.
    """
    checker.check_log_key(family.flag_name("monitor"), values["monitor"])


def check_monitor_direction(family, values, checker):
    """Refuses mode auto where Keras's monitor callbacks cannot tell the direction.

    EarlyStopping, ModelCheckpoint and ReduceLROnPlateau infer it only for the loss and compiled
    metrics; anything else (learning_rate, say) fails when training starts.

    Raises:
        UsageError: naming the mode flag and asking for min or max.
    """
    monitor = values["monitor"]
    if values["mode"] == "auto" and compiled_direction(monitor, checker.metric_names) is None:
        checker.fail(family.flag_name("mode"),
                     f"Keras cannot tell whether {monitor!r} should fall or rise; set min or max")


def check_monitor_and_direction(family, values, checker):
    """The `check` hook of EarlyStopping: a logged monitor with a known direction."""
    check_monitor(family, values, checker)
    check_monitor_direction(family, values, checker)


def ranked_monitor(config, logged):
    """Returns (quantity, min or max) a run's results rank its epochs by.

    The quantity early stopping (or else the checkpoint) watches, so that the
    best epoch is the one those callbacks chose; otherwise val_loss when it is
    logged, else loss. runner/fit.py ranks the results by it, and the optuna
    family reports it to the study unless told another.

    Args:
        config: The resolved config (a mapping of flag names to values).
        logged: The keys logged (a history or an epoch's logs).
    """
    for group in ("early_stopping", "model_checkpoint"):
        if config[group]:
            monitor, mode = config[f"{group}_monitor"], config[f"{group}_mode"]
            break
    else:
        monitor, mode = ("val_loss" if "val_loss" in logged else "loss"), "min"
    if mode == "auto":  # Validation refused an auto that Keras cannot decide.
        mode = compiled_direction(monitor)
    return monitor, mode


def compiled_direction(monitor, metrics=None):
    """Returns "min" or "max" for `monitor` as Keras's mode auto decides it with the metrics logged as
    `metrics` compiled (None: any catalogued metric), or None."""
    return losses_metrics.direction(monitor, metrics)
