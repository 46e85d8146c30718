"""Models built by the user's own function, named as a plug-in spec."""

import inspect
import reprlib

from kerasrun.core.errors import UsageError
from kerasrun.core.plugins import call_plugin, load_plugin
from kerasrun.models.compatibility import check_model_fits_data
from kerasrun.models.model_args import requires_message


def build_from_plugin(spec, input_shape, head, model_args=None, flag="--model"):
    """Calls the user's `fn(input_shape=..., num_classes=...)` for a model.

    `num_classes` is the width the model's output must have (the classes, the
    labels or the targets); a function that also takes `task` (or `**kwargs`)
    is told the task too: classification, binary, multilabel or regression.

    Args:
        spec: `module:function` or `path/to/file.py:function`.
        input_shape: The shape of one example, without the batch axis.
        head: The `Head` the task needs.
        model_args: More keyword arguments for the function (--model_args),
            checked with the config. Defaults to None.
        flag: The flag the spec was given with, for messages. Defaults to
            "--model".

    Returns:
        The `keras.Model` the function returned, as it returned it.

    Raises:
        UsageError: if the spec names nothing callable, the function does not
            take `input_shape` and `num_classes` as keywords, returns something
            other than a `keras.Model`, or returns a model that does not fit
            the dataset.
        PluginError: when the function itself raises (core.plugins.call_plugin).
    """
    source = f"{flag}={spec!r}"
    function = load_builder(spec, flag, model_args)
    arguments = {"input_shape": tuple(input_shape), "num_classes": head.units}
    if _accepts(function, "task"):
        arguments["task"] = head.task
    if model_args:  # Checked from the source before; a function defined elsewhere is checked here.
        arguments.update(model_args)
        _check_takes_model_args(function, arguments, model_args, source)
    model = call_plugin(flag, spec, function, **arguments)
    import keras

    if not isinstance(model, keras.Model):
        raise UsageError(f"{source}: the function returned {_describe(model)}, not a keras.Model")
    check_model_fits_data(model, input_shape, head, source)
    return model


def load_builder(spec, flag="--model", model_args=None):
    """Imports and returns the function a plug-in spec names, checked to accept our keywords; calls nothing.

    Args:
        spec: `module:function` or `path/to/file.py:function`.
        flag: The flag the spec was given with, for messages.
        model_args: --model_args, which may give parameters the runner does
            not pass. Defaults to None.

    Raises:
        UsageError: if the spec names nothing callable, or a function that
            does not take `input_shape` and `num_classes` as keywords, or
            requires an argument that neither the runner nor --model_args gives.
    """
    function = load_plugin(flag, spec)
    source = f"{flag}={spec!r}"
    if not callable(function):
        raise UsageError(
            f"{source}: names a {type(function).__name__}, not a function that returns a model"
        )
    _check_accepts(function, model_args or {}, source)
    return function


def _check_accepts(function, model_args, source):
    # Checked before the call so that a TypeError raised deep inside the
    # user's code is not mistaken for a wrong signature. The runner passes
    # input_shape and num_classes, and task to a function that takes it.
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # Some builtins have no signature; just call.
        return
    parameters = signature.parameters.values()
    by_keyword = {parameter.name for parameter in parameters
                  if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}
    any_keyword = any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters)
    lacking = [name for name in ("input_shape", "num_classes") if name not in by_keyword and not any_keyword]
    if lacking:
        positional = [name for name in lacking if name in signature.parameters]
        absent = [name for name in lacking if name not in positional]
        why = "; ".join(part for part in (
            f"{' and '.join(positional)} {'is' if len(positional) == 1 else 'are'} positional-only" if positional else "",
            f"it has no parameter {' or '.join(absent)}" if absent else "") if part)
        raise UsageError(
            f"{source}: the function must accept the keyword arguments input_shape "
            f"and num_classes; {why}; its signature is {signature}"
        )
    given = {"input_shape", "num_classes", "task", *model_args}
    required = [parameter.name for parameter in parameters if parameter.default is parameter.empty
                and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                and not (parameter.name in given and parameter.name in by_keyword)]
    if required:
        raise UsageError(f"{source}: {requires_message(required)}; its signature is {signature}")


def _check_takes_model_args(function, arguments, model_args, source):
    try:
        signature = inspect.signature(function)
        signature.bind(**arguments)
    except (TypeError, ValueError) as error:
        shown = ",".join(f"{name}={value!r}" for name, value in model_args.items())
        raise UsageError(f"--model_args={shown}: {source} does not take them ({error}); its signature is "
                         f"{signature}") from None


def _accepts(function, name):
    """Whether `function` takes the keyword `name` (by name or through **kwargs)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(parameter.name == name and parameter.kind != parameter.POSITIONAL_ONLY
               or parameter.kind == parameter.VAR_KEYWORD for parameter in parameters)


def _describe(value):
    if value is None:
        return "None"
    return f"a {type(value).__name__} ({reprlib.repr(value)})"
