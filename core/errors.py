"""Errors shown to the user as one line, and the exit status each one means."""

import os
import re

# Terminal colour codes, which Keras puts around the message of an error raised inside a layer.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The node TensorFlow names before the message of an error raised in a graph: `{{function_node ...}} `.
_TF_NODE = re.compile(r"^\{\{[^}]*\}\}\s*")
# The op TensorFlow names after the message of an error raised eagerly: ` [Op:DecodeImage] name: `.
_TF_OP = re.compile(r"\s*\[Op:\w+\](\s*name:.*)?$")

USAGE_EXIT_CODE = 2
# Set to 1 to see the whole traceback of an error instead of its one line.
TRACEBACK_ENV = "KERASRUN_TRACEBACK"


class UsageError(Exception):
    """A mistake in the command line, a config file or a named input.

    The message is shown to the user as one line, without a traceback, and
    the process exits with status 2. It should name the flag or key, echo the
    bad value and say what would be accepted.
    """


RUN_FAILED_EXIT_CODE = 1
NAN_EXIT_CODE = 3
# Stopped by the pruner of the Optuna study the run reports to (the optuna family): a finish, told apart.
PRUNED_EXIT_CODE = 4
INTERRUPTED_EXIT_CODE = 130
# A run stopped by a signal exits 128 + its number, as shells report it: 130 for SIGINT, 143 for SIGTERM.
SIGNALLED_EXIT_CODES = (130, 143)


class RunError(Exception):
    """A run that cannot go on for a reason outside the command line.

    For example a Keras dataset that must be downloaded while offline. Shown
    as one line without a traceback; the process exits with status 1.
    """


class PluginError(RunError):
    """The user's own code (a loader, a model builder, a callback class) raised while being called.

    The run has started as far as the user is concerned: it is recorded as
    failed, with this message, in a run directory of its own.
    """


def shortened(text, longest=120):
    """Returns `text` for a one-line message: as it is, or its start and its length when longer than `longest`."""
    return text if len(text) <= longest else f"{text[:longest - 20]}... ({len(text)} characters)"


def wants_traceback():
    """Whether the user asked, with KERASRUN_TRACEBACK=1, for tracebacks instead of one-line errors."""
    return os.environ.get(TRACEBACK_ENV) == "1"


def one_line(error):
    """Returns `Type: first line` of an unexpected error, saying how to see its traceback."""
    return f"{type(error).__name__}: {first_line(error)}; set {TRACEBACK_ENV}=1 for the traceback"


def first_line(error):
    """Returns the first line of `error`'s message, or its type name if empty.

    TensorFlow's graph errors start with a generic line; their last line
    (before the node list) says what went wrong, so that one is used instead.
    Keras wraps an error raised inside a layer's `call` in lines naming the
    layer, then the error itself (in bold), which is the line used.

    Args:
        error: Any exception.
    """
    lines = [_TF_OP.sub("", _TF_NODE.sub("", _ANSI.sub("", line))).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return type(error).__name__
    while len(lines) > 1 and (lines[0].startswith("Exception encountered when calling")
                              or lines[0].endswith("Error encountered:")):
        lines = lines[1:]  # Keras's wrappers of an error raised in a layer's call(); the error comes next.
    if lines[0] == "Graph execution error:":
        meaningful = [line for line in lines if not line.startswith(("[[", "Detected at node", "File "))]
        return meaningful[-1]
    return lines[0]
