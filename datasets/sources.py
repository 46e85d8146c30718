"""Tells the kinds of `--dataset` values apart, without importing TensorFlow.

A value is one of: a built-in name (`digits`), a file or folder with a
format prefix (`npz:PATH`, `csv:PATH`, `images:DIR`), or a user's plug-in
(`module:function`, `path/to/file.py:function`).
"""

import collections
import os

from kerasrun.core import plugins
from kerasrun.core.errors import UsageError

# Prefix -> whether its argument names a file or a directory.
FORMAT_PREFIXES = {"npz": "file", "csv": "file", "images": "directory"}

ACCEPTED_FORMS = "npz:PATH, csv:PATH, images:DIR, module:function or path/to/file.py:function"

Source = collections.namedtuple("Source", ["kind", "argument"])
Source.__doc__ = """A parsed `--dataset` value.

`kind` is "builtin", "plugin" or one of the keys of FORMAT_PREFIXES;
`argument` is the name, the path or the plug-in spec."""


def parse(value, builtin_names):
    """Splits a `--dataset` value into its kind and argument.

    Format prefixes are tried before plug-in specs because `images:photos`
    would otherwise also read as "function `photos` of module `images`".

    Args:
        value: The value as the user typed it.
        builtin_names: The names of the built-in datasets.

    Returns:
        A `Source`, or None if the value has none of the accepted forms.
    """
    if value in builtin_names:
        return Source("builtin", value)
    prefix, separator, rest = value.partition(":")
    if separator and prefix in FORMAT_PREFIXES:
        return Source(prefix, rest)
    if plugins.is_plugin_spec(value):
        return Source("plugin", value)
    return None


def check(value, builtin_names, flag):
    """Checks that a `--dataset` value names something that exists.

    Args:
        value: The value as the user typed it.
        builtin_names: The names of the built-in datasets.
        flag: The flag the value came from, for messages.

    Returns:
        The parsed `Source`.

    Raises:
        UsageError: naming the flag and value and saying what is accepted.
    """
    source = parse(value, builtin_names)
    if source is None:
        raise UsageError(
            f"{flag}={value!r}: unknown dataset; known: {', '.join(builtin_names)}; "
            f"or {ACCEPTED_FORMS}"
        )
    if source.kind == "plugin":
        plugins.check_plugin_spec(flag, value)
    elif source.kind in FORMAT_PREFIXES:
        _check_path(source, value, flag)
    return source


def _check_path(source, value, flag):
    wanted = FORMAT_PREFIXES[source.kind]
    if not source.argument:
        raise UsageError(f"{flag}={value!r}: expected a {wanted} path after '{source.kind}:'")
    exists = os.path.isdir if wanted == "directory" else os.path.isfile
    if not exists(source.argument):
        raise UsageError(f"{flag}={value!r}: {wanted} {source.argument!r} does not exist")
