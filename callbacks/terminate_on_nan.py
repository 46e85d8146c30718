"""TerminateOnNaN: stop as soon as the loss becomes NaN or infinite."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Bool

FAMILY = CallbackFamily(
    name="terminate_on_nan",
    title="TerminateOnNaN",
    summary="Stop at the first batch whose loss is NaN or infinite; the run exits with status 3.",
    keras_class="TerminateOnNaN",
    args=(
        Arg("raise_error", Bool(), False,
            "Stop at once, skipping the other callbacks' end-of-training work (a backup is kept)."),
    ),
    batch_needs=lambda values: (1, "--terminate_on_nan checks the loss of every batch"),
)
