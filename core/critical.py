"""Work that a second Ctrl-C must not cut in half, such as writing the backup a resume starts from.

The runner's signal handler asks `must_wait()` before it stops training at
once; inside `uninterruptible()` the stop waits, and happens as the block ends.
"""

import contextlib

_state = {"depth": 0, "pending": False}


@contextlib.contextmanager
def uninterruptible():
    """Runs the block to its end; a stop asked for meanwhile (`must_wait`) raises KeyboardInterrupt after it."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    if _state["depth"] == 0 and _state["pending"]:
        _state["pending"] = False
        raise KeyboardInterrupt


def must_wait():
    """Whether an immediate stop must wait for the end of the block running now; if so, it happens there."""
    if _state["depth"] == 0:
        return False
    _state["pending"] = True
    return True
