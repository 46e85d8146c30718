"""Writing files so that a kill at any moment leaves the old content or the new, never half.

Whole files are written to a temporary file in the same directory and renamed
over the target (a rename is atomic); lines appended to a shared file are
written under an exclusive lock, in one write, and flushed to disk.
"""

import fcntl
import json
import os
import re
import uuid

import yaml

LOCK_FILE = ".running"
# A file (or folder) being written is named TEMPORARY_PREFIX + a random id + "-" + its final name.
TEMPORARY_PREFIX = ".tmp-"
_TEMPORARY = re.compile(re.escape(TEMPORARY_PREFIX) + r"[0-9a-f]{32}-(.+)")


def write_atomically(path, text):
    """Replaces the file at `path` with `text` in one step."""

    def write(temporary):
        # O_EXCL: never follow or reuse a file someone else put there; 0o666 and the
        # umask give the mode any other new file would get.
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())

    replace_atomically(path, write)


def replace_atomically(path, write):
    """Replaces the file at `path` with what `write(temporary_path)` writes, in one step.

    The temporary file is in the same directory and ends with the target's
    name (Keras picks the format of a model file by its ending); it is
    removed if `write` fails, and renamed over `path` once it succeeds.
    """
    temporary = temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def temporary_path(path):
    """Returns a new name, in the same directory, to write `path`'s content under before renaming it into place.

    It ends with the target's name (Keras picks the format of a model file by its ending).
    """
    directory = os.path.dirname(path) or "."
    return os.path.join(directory, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}-{os.path.basename(path)}")


def temporary_target(name):
    """Returns the final name a temporary file's `name` stands for, or None if it is no temporary file's."""
    found = _TEMPORARY.fullmatch(name)
    return found.group(1) if found else None


def append_line(path, line):
    """Appends one line to `path`; many processes may append at once."""
    with open(path, "a", encoding="utf-8") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            stream.write(line.rstrip("\n") + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def read_json(path):
    """Returns the JSON in `path`, or None if it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def read_yaml(path):
    """Returns the YAML in `path` (safe loader), or None if it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None


def hold_lock(path):
    """Takes an exclusive lock on `path` for as long as this process lives; returns the open file."""
    stream = open(path, "a")
    fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return stream


def release_lock(stream):
    """Releases a lock taken by `hold_lock` and removes its file."""
    try:
        os.unlink(stream.name)
    except FileNotFoundError:
        pass
    stream.close()


def is_locked(path):
    """Tells whether another process holds the lock on `path`."""
    if not os.path.exists(path):
        return False
    with open(path, "a") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(stream, fcntl.LOCK_UN)
        return False
