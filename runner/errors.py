"""The one exception type that turns into a one-line usage error and exit status 2."""

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    """A mistake in the command line, a config file or a named input.

    The message is shown to the user as one line, without a traceback, and
    the process exits with status 2. It should name the flag or key, echo the
    bad value and say what would be accepted.
    """


RUN_FAILED_EXIT_CODE = 1
NAN_EXIT_CODE = 3
INTERRUPTED_EXIT_CODE = 130


class RunError(Exception):
    """A run that cannot go on for a reason outside the command line.

    For example a Keras dataset that must be downloaded while offline. Shown
    as one line without a traceback; the process exits with status 1.
    """


def first_line(error):
    """Returns the first line of `error`'s message, or its type name if empty.

    TensorFlow's graph errors start with a generic line; their last line
    (before the node list) says what went wrong, so that one is used instead.

    Args:
        error: Any exception.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if lines[0] == "Graph execution error:":
        meaningful = [line for line in lines if not line.startswith(("[[", "Detected at node", "File "))]
        return meaningful[-1]
    return lines[0]
