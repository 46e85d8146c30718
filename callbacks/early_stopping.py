"""EarlyStopping: stop training when a monitored quantity has stopped improving."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.callbacks.monitor import MODE, check_monitor_and_direction, monitor_arg
from kerasrun.core.options import Arg, Bool, Float, Int, at_least

FAMILY = CallbackFamily(
    name="early_stopping",
    title="EarlyStopping",
    summary="Stop training when a monitored quantity has stopped improving.",
    keras_class="EarlyStopping",
    args=(
        monitor_arg(),
        Arg("min_delta", Float(), 0.0, "Smallest change that counts as an improvement.", at_least(0)),
        Arg("patience", Int(), 0, "Epochs without improvement before stopping.", at_least(0)),
        Arg("verbose", Int(), 0, "1 prints a message when training stops.", at_least(0)),
        MODE,
        Arg("baseline", Float(optional=True), None,
            "Value the monitored quantity must beat within `patience` epochs (None: no baseline)."),
        Arg("restore_best_weights", Bool(), False,
            "Restore the weights of the best epoch when training ends."),
        Arg("start_from_epoch", Int(), 0, "Epochs to wait before watching for improvement.",
            at_least(0)),
    ),
    check=check_monitor_and_direction,
    resume_state=("wait", "stopped_epoch", "best", "best_epoch"),
)
