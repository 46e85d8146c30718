"""Work that a second Ctrl-C must not cut in half, such as writing the backup a resume starts from.

The runner's signal handler asks `busy()` before it stops training at once;
while a block runs inside `uninterruptible()`, it does not, and training
stops after the current step instead, once the epoch's backup and records
are all written.
"""

import contextlib

_depth = [0]


@contextlib.contextmanager
def uninterruptible():
    """Marks the block as one a second Ctrl-C must let finish."""
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


def busy():
    """Whether a block that must finish is running now."""
    return _depth[0] > 0
