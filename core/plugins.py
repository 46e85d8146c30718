"""Loads user code named as `module:attribute` or `path/to/file.py:attribute`.

Nothing is ever evaluated: the user names an importable module (or a Python
file) and an attribute in it, and that attribute is what we call.
"""

import importlib
import importlib.util
import os
import re
import sys
import traceback

from kerasrun.core.errors import TRACEBACK_ENV, PluginError, UsageError, first_line, wants_traceback

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_SPEC = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}$")
_FILE_SPEC = re.compile(rf"^(?P<path>.+\.py):{_IDENTIFIER}$")


def is_plugin_spec(value):
    """Returns True if `value` looks like `module:attr` or `file.py:attr`."""
    return bool(_MODULE_SPEC.match(value) or _FILE_SPEC.match(value))


def check_plugin_spec(flag, value):
    """Checks the form of a plug-in spec and that its module or file exists.

    This does not import anything, so it is cheap enough for validation.

    Args:
        flag: The flag or key the value came from, for messages.
        value: The spec, `module:attr` or `path/file.py:attr`.

    Raises:
        UsageError: if the spec is malformed or names nothing that exists.
    """
    file_match = _FILE_SPEC.match(value)
    if file_match:
        if not os.path.isfile(file_match.group("path")):
            raise UsageError(f"{flag}={value!r}: file {file_match.group('path')!r} does not exist")
        return
    if not _MODULE_SPEC.match(value):
        raise UsageError(
            f"{flag}={value!r}: expected module:function or path/to/file.py:function"
        )
    module_name = value.split(":")[0]
    if _find_spec(module_name) is None:
        raise UsageError(f"{flag}={value!r}: no module named {module_name!r}")


def plugin_file(value):
    """Returns the Python file a plug-in spec names (found without importing it), or None."""
    file_match = _FILE_SPEC.match(value)
    if file_match:
        return file_match.group("path")
    if not _MODULE_SPEC.match(value):
        return None
    spec = _find_spec(value.split(":")[0])
    return spec.origin if spec is not None and spec.has_location else None


def _find_spec(module_name):
    _ensure_cwd_importable()
    try:
        return importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None


def _ensure_cwd_importable():
    # `python train.py` puts the script's folder on sys.path, not the folder
    # the user runs from; user modules live in the latter.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def load_plugin(flag, value):
    """Imports and returns the attribute a plug-in spec names.

    Args:
        flag: The flag or key the value came from, for messages.
        value: The spec, `module:attr` or `path/file.py:attr`.

    Raises:
        UsageError: if the module, file or attribute cannot be found, or the
            module fails to import.
    """
    check_plugin_spec(flag, value)
    target, attribute = value.rsplit(":", 1)
    try:
        module = _import_file(target) if target.endswith(".py") else _import_module(target)
    except UsageError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # A user's module may raise anything on import, even SystemExit.
        raise UsageError(f"{flag}={value!r}: importing {target!r} failed: {type(error).__name__}: "
                         f"{first_line(error)}{where_in_users_code(error)}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UsageError(f"{flag}={value!r}: {target!r} has no attribute {attribute!r}") from None


def call_plugin(flag, value, function, **arguments):
    """Calls a plug-in's function; an error it raises becomes one line naming the plug-in and where.

    Args:
        flag: The flag or key the plug-in was given with.
        value: The spec, for messages.
        function: What `load_plugin` returned.
        **arguments: Passed to the function.

    Raises:
        PluginError: when the function raises: the exception's type and first
            line, and the file:line of the user's code it came from. With the
            environment variable KERASRUN_TRACEBACK=1 the exception itself
            propagates, traceback and all.
    """
    try:
        return function(**arguments)
    except (Exception, SystemExit) as error:  # sys.exit() in a plug-in fails the run like any error.
        if wants_traceback():
            raise
        raise PluginError(f"{flag}={value!r} raised {type(error).__name__}: {first_line(error)}"
                          f"{where_in_users_code(error)}; set {TRACEBACK_ENV}=1 for the traceback") from None


def where_in_users_code(error):
    """Returns " (at file:line)" of the innermost frame of the user's code in `error`'s traceback, or "".

    The user's code is what is not ours, Python's or an installed package's.
    """
    others = (os.path.dirname(os.__file__), *(path for path in sys.path if path.endswith("-packages")))
    where = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        filename = frame.f_code.co_filename
        ours = frame.f_globals.get("__name__", "").startswith("kerasrun.")
        if not ours and not filename.startswith(("<", *others)):
            where = f"{os.path.relpath(filename) if filename.startswith(os.getcwd()) else filename}:{line}"
    return f" (at {where})" if where else ""


def _import_module(name):
    _ensure_cwd_importable()
    return importlib.import_module(name)


def _import_file(path):
    name = "_plugin_" + re.sub(r"\W", "_", os.path.abspath(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
