"""`--export`: the trained model written for serving, through Keras's `model.export`, into export/<format>/.

The formats are checked before TensorFlow is imported (cli/export_options.py).
Writing them runs after training; a format that fails
inside Keras or TensorFlow is reported and recorded, and the run keeps its
outcome and its model.
"""

import os
import shutil
import sys

from kerasrun.core import files
from kerasrun.core.errors import first_line, shortened, wants_traceback

EXPORT_DIR = "export"
# The file each format writes inside its directory; None: the directory itself is the artifact (a SavedModel).
_FILES = {"tf_saved_model": None, "litert": "model.tflite", "onnx": "model.onnx"}


def export_model(model, paths, formats):
    """Writes the model in each format into export/<format>/ of the run's directory; prints a line per format.

    Each format is written into a temporary sibling directory renamed into
    place once complete, so a kill never leaves half an export under its
    final name. A format that fails is reported as a warning on stderr and
    recorded; the others are still written.

    Args:
        model: The trained (called) Keras model.
        paths: The run's RunPaths.
        formats: The --export value, checked by `check_formats`.

    Returns:
        {format: the path written (as `paths.path` gives it, like results.json's model_file), or
        "failed: <reason>"}, for results.json.
    """
    exports = {}
    for name in formats:
        directory = paths.path(EXPORT_DIR, name)
        try:
            artifact = write_export(model, name, directory)
        except Exception as error:  # Keras and TensorFlow raise many types; the run is done all the same.
            if wants_traceback():
                raise
            reason = shortened(f"{type(error).__name__}: {first_line(error)}", 200)
            print(f"train.py: warning: exporting {name} failed, nothing written for it: {reason}",
                  file=sys.stderr, flush=True)
            exports[name] = f"failed: {reason}"
            continue
        print(f"Exported {name}: {artifact}", flush=True)
        exports[name] = artifact
    return exports


def write_export(model, name, directory):
    """Exports `model` in format `name` into `directory`, replacing it in one rename; returns the artifact's path."""
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    temporary = files.temporary_path(os.path.join(parent, name))
    file_name = _FILES[name]
    try:
        os.mkdir(temporary)
        target = temporary if file_name is None else os.path.join(temporary, file_name)
        model.export(target, format=name, verbose=False, input_signature=_input_signature(model, name))
        _move_into_place(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return directory if file_name is None else os.path.join(directory, file_name)


def _input_signature(model, name):
    """Returns the input signature to give `model.export`, or None to let Keras work it out.

    Keras's onnx export refuses a model that was never called (one loaded from
    a .keras file, such as a best checkpoint) unless given a signature; a
    model of one input tensor gets its own.
    """
    inputs = getattr(model, "inputs", None)  # Subclassed models may have none.
    if name != "onnx" or not isinstance(inputs, list) or len(inputs) != 1:
        return None
    import keras

    return [keras.InputSpec(shape=inputs[0].shape, dtype=inputs[0].dtype)]


def _move_into_place(temporary, directory):
    """Renames the finished `temporary` directory to `directory`, which an earlier export may hold."""
    if not os.path.exists(directory):
        os.rename(temporary, directory)
        return
    # A directory cannot be renamed over a full one: the old moves aside first, and goes once the new is in.
    old = f"{temporary}-old"
    os.rename(directory, old)
    os.rename(temporary, directory)
    shutil.rmtree(old, ignore_errors=True)
