"""Turns an exception from Keras or user code into text for a one-line message."""


def first_line(error):
    """Returns the first line of `error`'s message, or its type name if empty.

    Args:
        error: Any exception.
    """
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
