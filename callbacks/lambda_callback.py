"""LambdaCallback: call your own functions at points of the training loop."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.keras_names import CALLBACK_HOOKS
from kerasrun.core.options import Arg, Str
from kerasrun.core.plugins import load_plugin

# The hooks keras.callbacks.LambdaCallback takes a function for.
_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end", "on_train_batch_begin",
          "on_train_batch_end")


def _check(family, values, checker):
    named = [hook for hook in _HOOKS if values[hook] is not None]
    if not named:
        checker.fail(family.name, "names no function: set at least one --lambda_callback_on_* flag")
    for hook in named:
        checker.check_called_as(family.flag_name(hook), values[hook], CALLBACK_HOOKS[hook])


def _adapt(values, run, config):
    for hook in _HOOKS:
        if values[hook] is not None:
            values[hook] = load_plugin(f"--lambda_callback_{hook}", values[hook])
    return values


FAMILY = CallbackFamily(
    name="lambda_callback",
    title="LambdaCallback",
    summary="Call your own functions (module:function or path/file.py:function; never code typed "
            "on the command line) during training.",
    keras_class="LambdaCallback",
    args=tuple(
        Arg(hook, Str(optional=True), None, f"Function called as f{CALLBACK_HOOKS[hook]}.")
        for hook in _HOOKS
    ),
    check=_check,
    adapt=_adapt,
    batch_needs=lambda values: next(((1, f"--lambda_callback_{hook} runs on every batch")
                                     for hook in _HOOKS if "batch" in hook and values[hook] is not None), None),
)
