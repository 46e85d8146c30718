"""--mode evaluate and --mode predict: the saved model they use, and their checks before TensorFlow.

`--model` names a `.keras` file or a run directory (meaning its model.keras).
A model inside a run directory (its model.keras, or a checkpoint in its
checkpoints/) comes with the run's config.yaml and results.json: how the run
read its data and compiled, and its class names. The model's inputs are read
from the `config.json` inside the `.keras` zip, so data that does not fit is
refused before TensorFlow is imported.
"""

import collections
import json
import os
import zipfile

import numpy as np
import yaml

from kerasrun import datasets
from kerasrun.core.errors import UsageError
from kerasrun.datasets import csv_source, sources

MODEL_FILE = "model.keras"
CHECKPOINTS = "checkpoints"
EVALUATION_FILE = "evaluation.json"
PREDICTION_SUFFIXES = (".csv", ".npz")
RUN_CONFIG, RUN_RESULTS = "config.yaml", "results.json"

# How the run read its data and compiled: left at their defaults, these options take the run's values.
RUN_SETTINGS = ("dataset_label_column", "dataset_categorical_columns", "task", "target_scaling",
                "dataset_image_size", "dataset_color_mode", "loss", "metrics", "label_smoothing")
# The options each mode reads; any other typed on the command line is noted as having no effect.
_BOTH = frozenset({"mode", "model", "model_safe_mode", "dataset", "dataset_label_column",
                   "dataset_categorical_columns", "task", "target_scaling", "dataset_image_size",
                   "dataset_color_mode", "dataset_cache", "dataset_test", "dataset_validation", "batch_size",
                   "verbose", "config", "dry_run"})
USED = {"evaluate": _BOTH | {"loss", "metrics", "label_smoothing", "results_file"},
        "predict": _BOTH | {"predictions_file"}}

ModelInput = collections.namedtuple("ModelInput", "name shape dtype")
ModelInput.__doc__ = "One input of a saved model: its name, its shape without the batch axis, its dtype."


class SavedModel(collections.namedtuple("SavedModel", "file run_dir run_config run_results inputs named")):
    """The model --model names.

    Args:
        file: The `.keras` file.
        run_dir: The run directory it belongs to, or None.
        run_config: The run's config.yaml as a dict ({} without a run).
        run_results: The run's results.json as a dict ({} without one).
        inputs: The model's `ModelInput`s, or None when config.json does not say.
        named: Whether the model takes a dict of named inputs (a table's columns).
    """

    @property
    def class_names(self):
        """The run's class names in id order, or None."""
        return self.run_results.get("class_names")

    @property
    def task(self):
        """The task the run learned, or None when unknown."""
        return self.run_results.get("task")


def mode_notes(values, typed):
    """Returns {option: why it has no effect} for the options typed on the command line that the mode ignores."""
    mode = values["mode"]
    if mode == "train":
        return {name: f"--{name} has no effect: it applies to --mode predict, not --mode train"
                for name in typed if name == "predictions_file"}
    elsewhere = {name: "evaluate" for name in USED["evaluate"] - USED[mode]}
    elsewhere.update({name: "predict" for name in USED["predict"] - USED[mode]})
    return {name: f"--{name} has no effect: it applies to --mode {elsewhere.get(name, 'train')}, not --mode {mode}"
            for name in sorted(typed) if name not in USED[mode]}


def check_mode(checker):
    """Checks --model, --dataset and --predictions_file of --mode evaluate or predict, without TensorFlow.

    Args:
        checker: The `cli.config.Checker` of the options.

    Raises:
        UsageError: naming the option: a model that is no .keras file or run
            directory, data whose columns or example shape the model does not
            take, a missing or wrongly named --predictions_file.
    """
    values = checker.values
    saved = saved_model(values["model"], checker.flag_label("model"))
    checker.reads("model", saved.file)
    settings = with_run_settings(values, saved)
    source = sources.check(values["dataset"], datasets.names(), checker.flag_label("dataset"))
    if values["mode"] == "evaluate" or source.kind not in ("csv", "npz"):
        datasets.check_source(values["dataset"], flag=checker.flag_label("dataset"),
                              label_columns=settings["dataset_label_column"])
    check_data_fits(saved, source, settings, checker.flag_label("dataset"), values["dataset"])
    if values["mode"] == "predict":
        _check_predictions_file(checker)
    elif values["results_file"] is None:  # evaluation.json goes next to the model.
        evaluation = evaluation_file(saved.file)
        checker.check_creatable_dir("model", os.path.dirname(evaluation) or ".",
                                    label=f"the directory {EVALUATION_FILE} goes to")
        checker.writes("model", evaluation)


def evaluation_file(model_file):
    """Returns where --mode evaluate writes its record: evaluation.json beside model.keras, NAME.evaluation.json
    beside any other NAME.keras (best.keras, a checkpoint), so that evaluating one never replaces another's."""
    stem = os.path.basename(model_file)[:-len(".keras")]
    name = EVALUATION_FILE if stem == "model" else f"{stem}.{EVALUATION_FILE}"
    return os.path.join(os.path.dirname(model_file), name)


def saved_model(value, flag="--model"):
    """Returns the `SavedModel` a --model value names: a .keras file, or a run directory's model.keras.

    Raises:
        UsageError: naming the flag, for a missing path, a directory without
            model.keras, a file that is not a .keras zip holding a model's config.
    """
    label = f"{flag}={value!r}"
    if os.path.isdir(value):
        model_file = os.path.join(value, MODEL_FILE)
        if not os.path.isfile(model_file):
            raise UsageError(f"{label}: the directory holds no {MODEL_FILE}{_checkpoints_hint(value)}")
    elif not value.endswith(".keras"):
        hint = "" if os.path.exists(value) else " (no such file or directory)"
        raise UsageError(f"{label}: --mode evaluate and predict need a saved model: a .keras file or a run "
                         f"directory holding {MODEL_FILE}{hint}")
    elif not os.path.isfile(value):
        raise UsageError(f"{label}: no such .keras file")
    else:
        model_file = value
    run_dir = run_directory_of(model_file)
    inputs, named = model_inputs(model_file, label)
    run_config = _read_run_file(run_dir, RUN_CONFIG, yaml.safe_load, label) if run_dir else {}
    run_results = _read_run_file(run_dir, RUN_RESULTS, json.loads, label) if run_dir else {}
    return SavedModel(model_file, run_dir, run_config or {}, run_results or {}, inputs, named)


def run_directory_of(model_file):
    """Returns the run directory a model file belongs to (its own folder, or a checkpoint's parent's parent), or None."""
    folder = os.path.dirname(os.path.abspath(model_file))
    candidates = [folder]
    if os.path.basename(folder) == CHECKPOINTS:
        candidates.append(os.path.dirname(folder))
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, RUN_CONFIG)):
            return os.path.relpath(candidate) if not os.path.isabs(model_file) else candidate
    return None


def _checkpoints_hint(directory):
    """Returns the end of the message about a directory without model.keras: a .keras file in it or its checkpoints/."""
    for folder in (directory, os.path.join(directory, CHECKPOINTS)):
        found = sorted(name for name in os.listdir(folder) if name.endswith(".keras")) if os.path.isdir(folder) else []
        if found:
            return f"; name one of its .keras files, such as {os.path.join(folder, found[-1])}"
    return "; name a .keras file, or a finished run's directory"


def _read_run_file(run_dir, name, parse, label):
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        return None  # A run still going, or one that failed before it ended: its config.yaml still tells.
    try:
        with open(path, encoding="utf-8") as stream:
            document = parse(stream.read())
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise UsageError(f"{label}: the run's {path} cannot be read ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise UsageError(f"{label}: the run's {path} is not a mapping")
    return document


def model_inputs(model_file, label):
    """Returns (the model's `ModelInput`s or None if its config does not say, whether they are named) from config.json.

    Raises:
        UsageError: for a file that is not a zip archive holding a config.json.
    """
    try:
        with zipfile.ZipFile(model_file) as archive:
            document = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError):
        raise UsageError(f"{label}: is not a .keras file (not a zip archive: damaged, or saved in another "
                         "format)") from None
    except KeyError:
        raise UsageError(f"{label}: the .keras zip holds no config.json: not a saved Keras model") from None
    except ValueError:
        raise UsageError(f"{label}: the .keras file's config.json is not valid JSON (damaged?)") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        return None, False
    layers = {_layer_name(layer): layer for layer in config.get("layers") or () if isinstance(layer, dict)}
    wanted = config.get("input_layers")
    if isinstance(wanted, dict):  # A dict of named inputs: a table's columns.
        return _inputs(layers, list(wanted.values())), True
    if isinstance(wanted, list) and wanted and isinstance(wanted[0], str):
        wanted = [wanted]  # One input, written without its list.
    if isinstance(wanted, list):
        return _inputs(layers, wanted), False
    first = next(iter(layers.values()), None)  # A Sequential model: its InputLayer, if it has one.
    if first is not None and first.get("class_name") == "InputLayer":
        return _inputs(layers, [[_layer_name(first)]]), False
    return None, False


def _layer_name(layer):
    return layer.get("name") or (layer.get("config") or {}).get("name")


def _inputs(layers, references):
    found = []
    for reference in references:
        layer = layers.get(reference[0] if isinstance(reference, list) and reference else None)
        config = (layer or {}).get("config") or {}
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if layer is None or layer.get("class_name") != "InputLayer" or not isinstance(shape, list):
            return None
        found.append(ModelInput(config.get("name") or reference[0], tuple(shape[1:]), str(config.get("dtype"))))
    return found


def with_run_settings(values, saved):
    """Returns the option values with RUN_SETTINGS left at their defaults replaced by the run's own.

    Args:
        values: {option: value}.
        saved: The `SavedModel`.
    """
    from kerasrun.cli.config import all_options  # cli.config imports this module.

    options = all_options()
    merged = dict(values)
    for name in RUN_SETTINGS:
        if name in saved.run_config and values[name] == options[name].default:
            try:
                merged[name] = options[name].kind.from_yaml(saved.run_config[name])
            except (ValueError, OverflowError):
                pass  # A hand-edited config.yaml: the option's own value stands.
    if values["dataset"] == saved.run_config.get("dataset"):  # The run's own data: its own test split too.
        for name in ("dataset_test", "dataset_validation"):
            if values[name] is None and isinstance(saved.run_config.get(name), str):
                merged[name] = saved.run_config[name]
    if saved.task and merged["task"] == "auto":
        merged["task"] = saved.task  # Labels of a few classes, or of one, are read as the run read them.
    return merged


def check_data_fits(saved, source, settings, flag, value):
    """Refuses data whose columns (a table's model) or example shape the saved model does not take.

    Looks only at what is cheap: a CSV file's header, an .npz file's array
    headers, an image folder's settings. Other datasets are checked once loaded.

    Raises:
        UsageError: naming --dataset, the missing and extra columns or the shapes.
    """
    if saved.inputs is None:
        return
    context = f"{flag}={value!r}"
    if source.kind == "csv":
        for path, label in ((source.argument, context), (settings["dataset_test"], "--dataset_test")):
            if path and os.path.isfile(path):
                header = csv_source.with_reader(path, context, csv_source.header_of)
                check_columns(saved, [name for name in header if name], settings["dataset_label_column"],
                              label if label == context else f"{label}={path!r}")
    elif saved.named:
        raise UsageError(f"{context}: the model takes a table's columns ({', '.join(sorted(i.name for i in saved.inputs))}), "
                         "but the dataset is not a table (a csv:PATH file)")
    elif source.kind == "npz":
        for name, shape in _npz_shapes(source.argument).items():
            if name.startswith("x_"):
                check_example_shape(saved, shape[1:], f"{context}: {name}")
    elif source.kind == "images":
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[settings["dataset_color_mode"]]
        check_example_shape(saved, (*settings["dataset_image_size"], channels), context)


def check_columns(saved, columns, label_columns, context):
    """Refuses a table whose feature columns are not the model's inputs, naming the missing and extra ones.

    Args:
        saved: The `SavedModel`.
        columns: The file's column names.
        label_columns: The label columns, which the model does not take.
        context: The flag and value, as a message prefix.
    """
    if not saved.named:
        raise UsageError(f"{context}: the model takes one array of shape {_shape(saved.inputs[0].shape)}, "
                         "not a table's columns")
    wanted = [item.name for item in saved.inputs]
    missing = [name for name in wanted if name not in columns]
    extra = [name for name in columns if name not in wanted and name not in label_columns]
    if missing or extra:
        parts = [f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else ""]
        raise UsageError(f"{context}: the model takes the columns {', '.join(sorted(wanted))}; the file's differ "
                         f"({'; '.join(part for part in parts if part)})")


def check_example_shape(saved, shape, context):
    """Refuses examples of `shape` (without the batch axis) that the model's one input does not take."""
    if saved.inputs is None or saved.named:
        return
    if len(saved.inputs) != 1:
        raise UsageError(f"{context}: the model takes {len(saved.inputs)} inputs; the runner gives one array")
    takes = saved.inputs[0].shape
    agree = len(takes) == len(shape) and all(want is None or want == got for want, got in zip(takes, shape))
    if not agree:
        raise UsageError(f"{context}: the examples have shape {_shape(shape)}, but the model takes "
                         f"{_shape(takes)}")


def _shape(shape):
    return "(" + ", ".join("None" if axis is None else str(axis) for axis in shape) + ("," if len(shape) == 1 else "") + ")"


def _npz_shapes(path):
    """Returns {array name: shape} of an .npz archive, reading only each array's header."""
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".npy"):
                    with archive.open(member) as stream:
                        version = np.lib.format.read_magic(stream)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        shape, _, _ = read_header(stream)
                    shapes[member[:-4]] = tuple(shape)
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}  # Reading the arrays says what is wrong with the file.
    return shapes


def _check_predictions_file(checker):
    path = checker.values["predictions_file"]
    if path is None:
        raise UsageError(f"{checker.flag_label('predictions_file')} is required with --mode predict: the .csv or "
                         ".npz file the predictions go to")
    if not path.endswith(PREDICTION_SUFFIXES):
        checker.fail("predictions_file", "must end in .csv (a row per input) or .npz (arrays)")
    if os.path.isdir(path):
        checker.fail("predictions_file", "is a directory, not a file")
    if os.path.lexists(path):  # It may be data: predictions never replace a file.
        checker.fail("predictions_file", "exists already; predictions never replace a file: remove it, or name "
                                         "another")
    checker.check_creatable_dir("predictions_file", os.path.dirname(path) or ".", label="its directory")
    checker.writes("predictions_file", path)
