"""How much memory is free: what decides whether data is held in memory or copied there."""

import os

# Data is held in memory (decoded images, an epoch's copy of the training
# arrays) when it takes at most this share of the memory free.
FREE_MEMORY_SHARE = 0.25


def fits_in_free_memory(nbytes):
    """Whether `nbytes` take at most FREE_MEMORY_SHARE of the memory free now (False when that is unknown)."""
    memory = available_memory_bytes()
    return memory is not None and nbytes <= FREE_MEMORY_SHARE * memory


def available_memory_bytes():
    """Returns the memory free for this process now (the container's, if it has a lower limit); None if unknown.

    Free now rather than installed, so that runs started one after another
    (a sweep) see what the earlier ones already hold.
    """
    try:
        with open("/proc/meminfo") as stream:
            fields = dict(line.split(":", 1) for line in stream)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as stream, open("/sys/fs/cgroup/memory.current") as used:
            limit, current = stream.read().strip(), used.read().strip()
        if limit.isdigit() and current.isdigit():
            available = min(available, int(limit) - int(current))
    except OSError:
        pass
    return available
