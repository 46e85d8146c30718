"""Reads a user's dataset function named as `module:function` or `file.py:function`."""

import inspect

from kerasrun.core import plugins
from kerasrun.core.errors import UsageError

EXPECTED = "((x_train, y_train), (x_val, y_val) or None), optionally a third pair (x_test, y_test)"


def read(spec, flag):
    """Calls a user's dataset function and returns what it returned.

    The function is called with no arguments. An exception it raises becomes a
    PluginError naming the plug-in and the line of the user's code it came from
    (core.plugins.call_plugin).

    Args:
        spec: `module:function` or `path/to/file.py:function`.
        flag: The flag the spec came from, for messages.

    Returns:
        `((x_train, y_train), (x_val, y_val) or None, (x_test, y_test) or None)`:
        a function returning two pairs has no test split.

    Raises:
        UsageError: if the spec cannot be loaded, names something that is not
            a function taking no arguments, or the function returns anything
            but the expected nesting of pairs.
        PluginError: when the function itself raises.
    """
    context = f"{flag}={spec!r}"
    function = plugins.load_plugin(flag, spec)
    _check_callable_without_arguments(function, context)
    result = plugins.call_plugin(flag, spec, function)
    if not _has_expected_structure(result):
        raise UsageError(
            f"{context}: the function returned {_describe(result)}; expected {EXPECTED}"
        )
    return result[0], result[1], (result[2] if len(result) == 3 else None)


def check_loadable(spec, flag):
    """Imports the plug-in's module and checks that it names a function taking no arguments; calls nothing.

    Raises:
        UsageError: as `read` does, for a spec that cannot be loaded or names the wrong thing.
    """
    _check_callable_without_arguments(plugins.load_plugin(flag, spec), f"{flag}={spec!r}")


def _check_callable_without_arguments(function, context):
    if not callable(function):
        raise UsageError(
            f"{context}: names a value of type {_describe(function)}, not a function; "
            f"expected a function that takes no arguments and returns {EXPECTED}"
        )
    try:
        inspect.signature(function).bind()
    except TypeError:
        raise UsageError(
            f"{context}: the function needs arguments; it is called with none "
            f"and must return {EXPECTED}"
        ) from None
    except ValueError:
        pass  # Some built-in callables have no signature; just call them.


def _has_expected_structure(result):
    return (
        isinstance(result, (tuple, list)) and len(result) in (2, 3)
        and _is_pair(result[0])
        and (result[1] is None or _is_pair(result[1]))
        and (len(result) == 2 or result[2] is None or _is_pair(result[2]))
    )


def _is_pair(value):
    return isinstance(value, (tuple, list)) and len(value) == 2


def _describe(value):
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(item) for item in value[:3])
        more = ", ..." if len(value) > 3 else ""
        return f"{type(value).__name__} of {len(value)} ({inner}{more})"
    if value is None:
        return "None"
    return type(value).__name__
