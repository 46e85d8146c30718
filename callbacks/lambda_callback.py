"""LambdaCallback: call your own functions at points of the training loop."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Str
from kerasrun.core.plugins import load_plugin

_HOOKS = (
    ("on_epoch_begin", "(epoch, logs)"),
    ("on_epoch_end", "(epoch, logs)"),
    ("on_train_begin", "(logs)"),
    ("on_train_end", "(logs)"),
    ("on_train_batch_begin", "(batch, logs)"),
    ("on_train_batch_end", "(batch, logs)"),
)


def _check(family, values, checker):
    named = [hook for hook, _ in _HOOKS if values[hook] is not None]
    if not named:
        checker.fail(family.name, "names no function: set at least one --lambda_callback_on_* flag")
    for hook in named:
        checker.load_function(family.flag_name(hook), values[hook])


def _adapt(values, run, config):
    for hook, _ in _HOOKS:
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
        Arg(hook, Str(optional=True), None, f"Function called as f{signature}.")
        for hook, signature in _HOOKS
    ),
    check=_check,
    adapt=_adapt,
)
