"""Options and checks shared by callbacks that watch a logged quantity."""

from runner.options import Arg, Choice, Str

MODE = Arg(
    "mode", Choice("auto", "min", "max"), "auto",
    "Whether the monitored quantity should fall (min) or rise (max); auto infers it from the name.",
)


def monitor_arg(default="val_loss"):
    """Returns the `monitor` Arg with `default` as its default."""
    return Arg("monitor", Str(), default, "Quantity to watch, as logged (loss, val_loss, val_accuracy, ...).")


def check_monitor(family, values, checker):
    """The `check` hook of families whose only cross-check is the monitor.

    Raises:
        UsageError: if the monitored quantity will never be logged.
    """
    checker.check_log_key(family.flag_name("monitor"), values["monitor"])
