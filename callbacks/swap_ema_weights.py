"""SwapEMAWeights: evaluate (and checkpoint) with the exponential moving average of the weights."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Bool, Float, Int, at_least, fraction_below_one, optional


def _optimizer_options(values):
    return {
        "use_ema": True,
        "ema_momentum": values["ema_momentum"],
        "ema_overwrite_frequency": values["ema_overwrite_frequency"],
    }


FAMILY = CallbackFamily(
    name="swap_ema_weights",
    title="SwapEMAWeights",
    summary="Turn on the optimizer's exponential moving average (EMA) of the weights and "
            "evaluate with it; runs before ModelCheckpoint, so that with swap_on_epoch checkpoints "
            "hold the EMA weights.",
    keras_class="SwapEMAWeights",
    args=(
        Arg("swap_on_epoch", Bool(), False,
            "Also swap the EMA weights in at the end of every epoch, for the callbacks that follow."),
    ),
    settings=(
        Arg("ema_momentum", Float(), 0.99, "Momentum of the moving average.", fraction_below_one),
        Arg("ema_overwrite_frequency", Int(optional=True), None,
            "Every N steps overwrite the weights with their average (None: never).",
            optional(at_least(1))),
    ),
    optimizer_options=_optimizer_options,
)
