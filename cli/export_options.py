"""`--export`'s checks, before TensorFlow is imported: known formats, their optional packages, what a table allows.

A format's optional package is looked up with `importlib.util.find_spec`, so
nothing heavy is imported. runner/export.py writes the formats after training.
"""

import difflib
import importlib.util

from kerasrun.core.errors import UsageError
from kerasrun.datasets import sources
from kerasrun.datasets.tabular import INTEGER_CODES, TEXT

FORMATS = ("tf_saved_model", "litert", "onnx")
# The packages (module, what to pip install) Keras 3's `model.export` imports for a format on the TensorFlow
# backend, beyond TensorFlow itself: keras/src/export/onnx.py calls tf2onnx and its patch imports onnx.
# litert converts with tf.lite, part of TensorFlow.
_PACKAGES = {"onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"))}
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
