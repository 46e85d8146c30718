"""ReduceLROnPlateau: lower the learning rate when a monitored quantity stops improving."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.callbacks.monitor import MODE, check_monitor_and_direction, monitor_arg
from kerasrun.core.options import Arg, Float, Int, at_least


def _below_one(factor):
    if 0 < factor < 1:
        return None
    return "must be above 0 and below 1.0 (the learning rate is multiplied by it)"


FAMILY = CallbackFamily(
    name="reduce_lr",
    title="ReduceLROnPlateau",
    summary="Multiply the learning rate by `factor` when a monitored quantity stops improving.",
    keras_class="ReduceLROnPlateau",
    args=(
        monitor_arg(),
        Arg("factor", Float(), 0.1, "Factor the learning rate is multiplied by.", _below_one),
        Arg("patience", Int(), 10, "Epochs without improvement before the rate is reduced.",
            at_least(0)),
        Arg("verbose", Int(), 0, "1 prints a message when the rate is reduced.", at_least(0)),
        MODE,
        Arg("min_delta", Float(), 0.0001, "Smallest change that counts as an improvement.",
            at_least(0)),
        Arg("cooldown", Int(), 0, "Epochs to wait after a reduction before watching again.",
            at_least(0)),
        Arg("min_lr", Float(), 0.0, "Lower bound on the learning rate.", at_least(0)),
    ),
    check=check_monitor_and_direction,  # Keras 3's ReduceLROnPlateau decides mode auto as EarlyStopping does.
    logged_keys=("learning_rate",),
    resume_state=("wait", "cooldown_counter", "best"),
)
