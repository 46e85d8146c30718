"""Reads `npz:PATH`: a numpy archive of x_train, y_train and optional x_val, y_val and x_test, y_test."""

import zipfile
import zlib

import numpy as np

from kerasrun.core.errors import UsageError

REQUIRED_ARRAYS = ("x_train", "y_train")
# Optional pairs: both arrays of a pair, or neither.
OPTIONAL_PAIRS = (("x_val", "y_val"), ("x_test", "y_test"))
OPTIONAL_ARRAYS = tuple(name for pair in OPTIONAL_PAIRS for name in pair)

_HOW_TO_SAVE = ("write one with numpy.savez(path, x_train=..., y_train=..., x_val=..., y_val=...), "
                "x_test and y_test optional too")


def read(path, context):
    """Returns `((x_train, y_train), (x_val, y_val) or None, (x_test, y_test) or None)` from an .npz file.

    Pickled (object) arrays are refused: loading them could run code.

    Args:
        path: The .npz file.
        context: The flag and value, as a message prefix; it names the file.

    Raises:
        UsageError: if the file is not a readable .npz archive, an array is
            missing or unexpected, or only one array of an optional pair
            (x_val and y_val, x_test and y_test) is present.
    """
    arrays = _read_arrays(path, context)
    _check_names(arrays, context)
    val, test = ((arrays[x], arrays[y]) if x in arrays else None for x, y in OPTIONAL_PAIRS)
    return (arrays["x_train"], arrays["y_train"]), val, test


def check_archive(path, context):
    """Checks, reading only the archive's directory, that the file is an .npz holding the right array names.

    Raises:
        UsageError: as `read` does, for the file and the names.
    """
    with _open(path, context) as archive:
        _check_names(archive.files, context)


def _check_names(names, context):
    accepted = REQUIRED_ARRAYS + OPTIONAL_ARRAYS
    unexpected = sorted(set(names) - set(accepted))
    if unexpected:
        raise UsageError(
            f"{context}: unexpected array {unexpected[0]!r}; accepted: {', '.join(accepted)}"
        )
    for name in REQUIRED_ARRAYS:
        if name not in names:
            raise UsageError(f"{context}: no array {name!r}; the file needs x_train and y_train")
    for pair in OPTIONAL_PAIRS:
        present = [name for name in pair if name in names]
        if len(present) == 1:
            missing = next(name for name in pair if name not in names)
            raise UsageError(
                f"{context}: has array {present[0]!r} but no {missing!r}; give both or neither"
            )


def has_validation(path):
    """Returns whether the archive holds x_val, or None if it cannot be read (read() says why)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        return None
    with archive:
        return "x_val" in archive.files


def _open(path, context):
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        # numpy's own message guesses at a pickle and suggests allow_pickle,
        # which is the wrong advice here.
        raise UsageError(f"{context}: the file is not an .npz archive; {_HOW_TO_SAVE}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UsageError(
            f"{context}: the file holds a single array, not an .npz archive; {_HOW_TO_SAVE}"
        )
    return archive


def _read_arrays(path, context):
    with _open(path, context) as archive:
        return {name: _read_member(archive, name, context) for name in archive.files}


def _read_member(archive, name, context):
    try:
        return archive[name]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise UsageError(
                f"{context}: array {name!r} is pickled (object) data, which is refused "
                "because loading it could run code; save numeric or string arrays"
            ) from None
        raise UsageError(f"{context}: array {name!r} cannot be read ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise UsageError(f"{context}: array {name!r} cannot be read ({error})") from None
