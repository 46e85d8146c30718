"""`--export`: the trained model written for serving, through Keras's `model.export`, into export/<format>/.

Checking the formats imports nothing heavy: a format's optional package is
looked up with `importlib.util.find_spec`, so a missing one is refused before
TensorFlow is imported. Writing them runs after training; a format that fails
inside Keras or TensorFlow is reported and recorded, and the run keeps its
outcome and its model.
"""

import difflib
import importlib.util
import os
import shutil
import sys
import uuid

from kerasrun.core.errors import UsageError, first_line, shortened, wants_traceback
from kerasrun.datasets import sources
from kerasrun.datasets.tabular import INTEGER_CODES, TEXT

EXPORT_DIR = "export"
FORMATS = ("tf_saved_model", "litert", "onnx")
# The packages (module, what to pip install) Keras 3's `model.export` imports for a format on the TensorFlow
# backend, beyond TensorFlow itself: keras/src/export/onnx.py calls tf2onnx and its patch imports onnx.
# litert converts with tf.lite, part of TensorFlow.
_PACKAGES = {"onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"))}
# The file each format writes inside its directory; None: the directory itself is the artifact (a SavedModel).
_FILES = {"tf_saved_model": None, "litert": "model.tflite", "onnx": "model.onnx"}
# A table's column kinds whose FeatureSpace layers compile to ops outside LiteRT's built-in set
# (DenseBincount): the .tflite needs TensorFlow's Flex delegate, which TensorFlow 2.21's
# tf.lite.Interpreter lacks ("Select TensorFlow op(s) ... are not supported by this interpreter").
_FLEX_KINDS = (TEXT, INTEGER_CODES)


def check_formats(formats):
    """Returns why `--export` cannot be honoured, or None: an unknown format, one twice, a missing package.

    Used as the option's check, before TensorFlow is imported.

    Args:
        formats: The --export value, a tuple of format names.
    """
    for index, name in enumerate(formats):
        if name not in FORMATS:
            close = difflib.get_close_matches(name.lower(), FORMATS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            return f"{name!r} is not an export format; formats: {', '.join(FORMATS)}{hint}"
        if name in formats[:index]:
            return f"names {name!r} twice"
        missing = missing_packages(name)
        if missing:
            return (f"{name} needs the package{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
                    f"which {'are' if len(missing) > 1 else 'is'} not installed: pip install {' '.join(missing)}")
    return None


def missing_packages(name):
    """Returns the pip names of the packages format `name` needs that are not installed, importing none."""
    return [pip_name for module, pip_name in _PACKAGES.get(name, ()) if importlib.util.find_spec(module) is None]


def check_dataset(formats, dataset, label):
    """Refuses onnx for a CSV dataset at once, before its file is read (see `check_table`).

    Args:
        formats: The --export value.
        dataset: The --dataset value.
        label: How messages name --export.

    Raises:
        UsageError: for onnx with a csv: dataset.
    """
    # Only the csv: prefix matters here: no built-in dataset is a table.
    source = sources.parse(dataset, builtin_names=())
    if source is not None and source.kind == "csv" and "onnx" in formats:
        raise UsageError(_onnx_table_message(label))


def check_table(formats, table, label):
    """Refuses the formats that cannot serve a model of a table (its first layer Keras's FeatureSpace).

    tf2onnx turns the FeatureSpace's normalisation constants into extra inputs
    of the ONNX graph, which then cannot be fed the table's columns alone; a
    .tflite of a table with text or integer-coded columns needs the Flex
    delegate (see `_FLEX_KINDS`). A table of numbers exports to LiteRT.

    Args:
        formats: The --export value.
        table: The data's {column: kind}, or None for data that is no table.
        label: How messages name --export.

    Raises:
        UsageError: naming --export, the format and what to use instead.
    """
    if not table:
        return
    if "onnx" in formats:
        raise UsageError(_onnx_table_message(label))
    flex = [column for column, kind in table.items() if kind in _FLEX_KINDS]
    if "litert" in formats and flex:
        raise UsageError(
            f"{label}=litert: the model of a table with text or integer-coded columns ({', '.join(flex[:3])}"
            f"{', ...' if len(flex) > 3 else ''}) compiles to TensorFlow ops that LiteRT runs only with the Flex "
            "delegate, which tf.lite.Interpreter lacks; export tf_saved_model instead")


def _onnx_table_message(label):
    return (f"{label}=onnx: tf2onnx cannot export a table's model (its FeatureSpace's constants become inputs "
            "the columns cannot feed); export tf_saved_model instead")


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
    temporary = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{name}")
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
