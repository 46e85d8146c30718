"""The one exception type that turns into a one-line usage error and exit status 2."""

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    """A mistake in the command line, a config file or a named input.

    The message is shown to the user as one line, without a traceback, and
    the process exits with status 2. It should name the flag or key, echo the
    bad value and say what would be accepted.
    """


RUN_FAILED_EXIT_CODE = 1


class RunError(Exception):
    """A run that cannot go on for a reason outside the command line.

    For example a Keras dataset that must be downloaded while offline. Shown
    as one line without a traceback; the process exits with status 1.
    """
