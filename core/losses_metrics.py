"""The losses and metrics of Keras 3.15, known without importing Keras.

A --loss or --metrics item is a name (Keras's own or one of its aliases),
optionally with arguments, `name:value` for the main one or `name:key=value`
(several joined by ':'): `top_k:5`, `auc:curve=PR`, `f1_score:threshold=0.5`.
Anything else of the form `module:function` or `path/file.py:function` is a
plug-in of the user's, logged under the function's name.

For each name the catalogue knows the Keras class it builds, the name it is
logged under, whether a higher or a lower value is better, whether it compares
values (any labels suit it) and which labels it reads. tests/test_losses_metrics.py
keeps it in step with the installed Keras.
"""

import dataclasses
import difflib

from kerasrun.core.errors import UsageError
from kerasrun.core.plugins import check_plugin_spec, is_plugin_spec

# What an entry's labels must be: "values" compares values (any labels); "classes" reads one score per
# class with one-hot labels (integer class ids are made one-hot for it, or its sparse variant is used);
# "probabilities" reads probabilities against 0/1 labels (class ids are made one-hot for it).
_KINDS = ("values", "classes", "probabilities")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One loss or metric of Keras.

    Args:
        keras: The class in keras.losses or keras.metrics (a function there, for a metric Keras
            has only as a function: it is averaged over the batches).
        logs: The name it is logged under, when given with arguments (given without, the name typed).
        direction: "up" or "down": whether a higher value is better; None for counts.
        kind: One of _KINDS.
        arguments: Argument -> what it accepts: "int", "float", "bool", or a tuple of choices.
        main: The argument `name:value` sets, or None.
        sparse: The class that takes integer class ids instead of one-hot labels, or None.
        required: Arguments that must be given.
        smoothing: Whether the loss takes label_smoothing.
    """

    keras: str
    logs: str
    direction: str = "down"
    kind: str = "values"
    arguments: dict = dataclasses.field(default_factory=dict)
    main: str = None
    sparse: str = None
    required: tuple = ()
    smoothing: bool = False


_THRESHOLDS = {"thresholds": "float", "top_k": "int", "class_id": "int"}
_FROM_LOGITS = {"from_logits": "bool"}
_F_SCORE = {"average": ("micro", "macro", "weighted"), "threshold": "float"}


def _value(keras, logs, direction="down", **more):
    return Entry(keras, logs, direction, "values", **more)


LOSSES = {
    "binary_crossentropy": Entry("BinaryCrossentropy", "loss", kind="probabilities", smoothing=True,
                                 arguments=dict(_FROM_LOGITS)),
    "binary_focal_crossentropy": Entry("BinaryFocalCrossentropy", "loss", kind="probabilities", smoothing=True,
                                       arguments={"gamma": "float", "alpha": "float", "apply_class_balancing": "bool",
                                                  **_FROM_LOGITS}),
    "categorical_crossentropy": Entry("CategoricalCrossentropy", "loss", kind="classes", smoothing=True,
                                      arguments=dict(_FROM_LOGITS)),
    "categorical_focal_crossentropy": Entry("CategoricalFocalCrossentropy", "loss", kind="classes", smoothing=True,
                                            arguments={"gamma": "float", "alpha": "float", **_FROM_LOGITS}),
    "sparse_categorical_crossentropy": Entry("SparseCategoricalCrossentropy", "loss", kind="classes",
                                             arguments=dict(_FROM_LOGITS)),
    "categorical_generalized_cross_entropy": Entry("CategoricalGeneralizedCrossEntropy", "loss", kind="classes",
                                                   arguments={"q": "float"}, main="q"),
    "categorical_hinge": Entry("CategoricalHinge", "loss", kind="classes"),
    "hinge": Entry("Hinge", "loss", kind="probabilities"),
    "squared_hinge": Entry("SquaredHinge", "loss", kind="probabilities"),
    "kl_divergence": Entry("KLDivergence", "loss", kind="classes"),
    "dice": Entry("Dice", "loss", kind="probabilities"),
    "tversky": Entry("Tversky", "loss", kind="probabilities", arguments={"alpha": "float", "beta": "float"}),
    "cosine_similarity": _value("CosineSimilarity", "loss"),
    "huber": _value("Huber", "loss", arguments={"delta": "float"}, main="delta"),
    "log_cosh": _value("LogCosh", "loss"),
    "mean_absolute_error": _value("MeanAbsoluteError", "loss"),
    "mean_absolute_percentage_error": _value("MeanAbsolutePercentageError", "loss"),
    "mean_squared_error": _value("MeanSquaredError", "loss"),
    "mean_squared_logarithmic_error": _value("MeanSquaredLogarithmicError", "loss"),
    "poisson": _value("Poisson", "loss"),
}
# Keras's aliases (and Keras 2's logcosh), each to its loss.
LOSS_ALIASES = {"bce": "binary_crossentropy", "kld": "kl_divergence", "mae": "mean_absolute_error",
                "mape": "mean_absolute_percentage_error", "mse": "mean_squared_error",
                "msle": "mean_squared_logarithmic_error", "logcosh": "log_cosh"}

METRICS = {
    "accuracy": Entry("Accuracy", "accuracy", "up", "classes"),  # Built as Keras's "accuracy" builds it.
    "binary_accuracy": Entry("BinaryAccuracy", "binary_accuracy", "up", "probabilities",
                             arguments={"threshold": "float"}, main="threshold"),
    "categorical_accuracy": Entry("CategoricalAccuracy", "categorical_accuracy", "up", "classes",
                                  sparse="SparseCategoricalAccuracy"),
    "sparse_categorical_accuracy": Entry("SparseCategoricalAccuracy", "sparse_categorical_accuracy", "up", "classes",
                                         sparse="SparseCategoricalAccuracy"),
    "top_k_categorical_accuracy": Entry("TopKCategoricalAccuracy", "top_k_categorical_accuracy", "up", "classes",
                                        arguments={"k": "int"}, main="k", sparse="SparseTopKCategoricalAccuracy"),
    "sparse_top_k_categorical_accuracy": Entry(
        "SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy", "up", "classes",
        arguments={"k": "int"}, main="k", sparse="SparseTopKCategoricalAccuracy"),
    "auc": Entry("AUC", "auc", "up", "probabilities", main="curve",
                 arguments={"curve": ("ROC", "PR"), "num_thresholds": "int",
                            "summation_method": ("interpolation", "minoring", "majoring"), **_FROM_LOGITS}),
    "precision": Entry("Precision", "precision", "up", "probabilities", arguments=dict(_THRESHOLDS), main="thresholds"),
    "recall": Entry("Recall", "recall", "up", "probabilities", arguments=dict(_THRESHOLDS), main="thresholds"),
    "f1_score": Entry("F1Score", "f1_score", "up", "probabilities", arguments=dict(_F_SCORE), main="threshold"),
    "f_beta_score": Entry("FBetaScore", "f_beta_score", "up", "probabilities",
                          arguments={**_F_SCORE, "beta": "float"}, main="beta"),
    "precision_at_recall": Entry("PrecisionAtRecall", "precision_at_recall", "up", "probabilities",
                                 arguments={"recall": "float", "num_thresholds": "int", "class_id": "int"},
                                 main="recall", required=("recall",)),
    "recall_at_precision": Entry("RecallAtPrecision", "recall_at_precision", "up", "probabilities",
                                 arguments={"precision": "float", "num_thresholds": "int", "class_id": "int"},
                                 main="precision", required=("precision",)),
    "sensitivity_at_specificity": Entry("SensitivityAtSpecificity", "sensitivity_at_specificity", "up",
                                        "probabilities", main="specificity", required=("specificity",),
                                        arguments={"specificity": "float", "num_thresholds": "int", "class_id": "int"}),
    "specificity_at_sensitivity": Entry("SpecificityAtSensitivity", "specificity_at_sensitivity", "up",
                                        "probabilities", main="sensitivity", required=("sensitivity",),
                                        arguments={"sensitivity": "float", "num_thresholds": "int", "class_id": "int"}),
    "true_positives": Entry("TruePositives", "true_positives", None, "probabilities",
                            arguments={"thresholds": "float"}, main="thresholds"),
    "true_negatives": Entry("TrueNegatives", "true_negatives", None, "probabilities",
                            arguments={"thresholds": "float"}, main="thresholds"),
    "false_positives": Entry("FalsePositives", "false_positives", None, "probabilities",
                             arguments={"thresholds": "float"}, main="thresholds"),
    "false_negatives": Entry("FalseNegatives", "false_negatives", None, "probabilities",
                             arguments={"thresholds": "float"}, main="thresholds"),
    "binary_io_u": Entry("BinaryIoU", "binary_io_u", "up", "probabilities",
                         arguments={"threshold": "float"}, main="threshold"),
    "binary_crossentropy": Entry("BinaryCrossentropy", "binary_crossentropy", "down", "probabilities",
                                 arguments={"label_smoothing": "float", **_FROM_LOGITS}),
    "categorical_crossentropy": Entry("CategoricalCrossentropy", "categorical_crossentropy", "down", "classes",
                                      arguments={"label_smoothing": "float", **_FROM_LOGITS},
                                      sparse="SparseCategoricalCrossentropy"),
    "sparse_categorical_crossentropy": Entry("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                                             "down", "classes", arguments=dict(_FROM_LOGITS),
                                             sparse="SparseCategoricalCrossentropy"),
    "categorical_hinge": Entry("CategoricalHinge", "categorical_hinge", "down", "classes"),
    "hinge": Entry("Hinge", "hinge", "down", "probabilities"),
    "squared_hinge": Entry("SquaredHinge", "squared_hinge", "down", "probabilities"),
    "kl_divergence": Entry("KLDivergence", "kl_divergence", "down", "classes"),
    "binary_focal_crossentropy": Entry("binary_focal_crossentropy", "binary_focal_crossentropy", "down",
                                       "probabilities"),
    "categorical_focal_crossentropy": Entry("categorical_focal_crossentropy", "categorical_focal_crossentropy",
                                            "down", "classes"),
    "mean_io_u": Entry("OneHotMeanIoU", "mean_io_u", "up", "classes", sparse="MeanIoU",
                       arguments={"num_classes": "int"}),
    "one_hot_mean_io_u": Entry("OneHotMeanIoU", "one_hot_mean_io_u", "up", "classes", sparse="MeanIoU",
                               arguments={"num_classes": "int"}),
    "huber": _value("huber", "huber"),
    "poisson": _value("Poisson", "poisson"),
    "cosine_similarity": _value("CosineSimilarity", "cosine_similarity", "up"),
    "log_cosh_error": _value("LogCoshError", "log_cosh_error"),
    "mean_absolute_error": _value("MeanAbsoluteError", "mean_absolute_error"),
    "mean_absolute_percentage_error": _value("MeanAbsolutePercentageError", "mean_absolute_percentage_error"),
    "mean_squared_error": _value("MeanSquaredError", "mean_squared_error"),
    "mean_squared_logarithmic_error": _value("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"),
    "root_mean_squared_error": _value("RootMeanSquaredError", "root_mean_squared_error"),
    "r2_score": _value("R2Score", "r2_score", "up", arguments={"class_aggregation": (
        "uniform_average", "variance_weighted_average"), "num_regressors": "int"}),
    "pearson_correlation": _value("PearsonCorrelation", "pearson_correlation", "up"),
    "concordance_correlation": _value("ConcordanceCorrelation", "concordance_correlation", "up"),
}
# Keras's aliases (and a few short names of ours), each to its metric.
METRIC_ALIASES = {"acc": "accuracy", "bce": "binary_crossentropy", "kld": "kl_divergence",
                  "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error", "mse": "mean_squared_error",
                  "msle": "mean_squared_logarithmic_error", "rmse": "root_mean_squared_error", "top_k":
                  "top_k_categorical_accuracy", "sparse_top_k": "sparse_top_k_categorical_accuracy",
                  "logcosh": "log_cosh_error", "log_cosh": "log_cosh_error"}
# Those of the aliases above that are ours, not Keras's: they log the metric's own name.
_OUR_ALIASES = ("rmse", "top_k", "sparse_top_k", "logcosh", "log_cosh")

# The metrics --metrics auto compiles, per task.
AUTO_METRICS = {
    "classification": ("accuracy",),
    "binary": ("accuracy", "auc"),
    "multilabel": ("binary_accuracy", "auc"),
    "regression": ("mean_absolute_error", "root_mean_squared_error"),
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """A --loss or --metrics item, parsed.

    Args:
        text: As typed.
        name: The catalogue's name (aliases resolved); None for a plug-in.
        entry: The catalogue's Entry; None for a plug-in.
        arguments: Argument -> value, converted.
        plugin: `module:function` or `path/file.py:function` for a plug-in, else None.
        logs: The name it is logged under.
    """

    text: str
    name: str
    entry: Entry
    arguments: dict
    plugin: str
    logs: str

    @property
    def compares_values(self):
        return self.entry is not None and self.entry.kind == "values"


def parse(flag, text, catalogue="metrics"):
    """Returns the Spec of one --loss or --metrics item; checks a plug-in's spec (without importing it).

    Args:
        flag: How messages name the option, e.g. "--metrics=auc:curve=XY".
        text: The item.
        catalogue: "losses" or "metrics".

    Raises:
        UsageError: for an unknown name (with the closest known), an unknown
            or malformed argument, or a plug-in whose module or file is missing.
    """
    entries, aliases = (LOSSES, LOSS_ALIASES) if catalogue == "losses" else (METRICS, METRIC_ALIASES)
    head, _, rest = text.partition(":")
    name = aliases.get(head, head)
    if name not in entries:
        if is_plugin_spec(text):
            try:
                check_plugin_spec("plug-in", text)
            except UsageError as error:
                raise UsageError(f"{flag}: {str(error).removeprefix(f'plug-in={text!r}: ')}") from None
            return Spec(text, None, None, {}, text, text.rsplit(":", 1)[1])
        known = [*entries, *aliases]
        close = difflib.get_close_matches(head, known, n=1) or sorted(
            name for name in known if head and name.startswith(head))[:1]
        hint = f" (did you mean {close[0]}?)" if close else ""
        what = "loss" if catalogue == "losses" else "metric"
        raise UsageError(f"{flag}: unknown {what} {head!r}{hint}; known: {', '.join(sorted(known))}, "
                         "or module:function / path/file.py:function")
    entry = entries[name]
    arguments = _arguments(flag, name, entry, rest.split(":") if rest else [])
    missing = [argument for argument in entry.required if argument not in arguments]
    if missing:
        raise UsageError(f"{flag}: {name} needs {missing[0]}, as {name}:{missing[0]}=VALUE")
    # Keras logs a metric compiled by name (an alias too) under that name.
    logs = head if not arguments and catalogue == "metrics" and head not in _OUR_ALIASES else entry.logs
    return Spec(text, name, entry, arguments, None, logs)


def _arguments(flag, name, entry, parts):
    arguments = {}
    for index, part in enumerate(parts):
        key, equals, value = part.partition("=")
        if not equals:
            if index or entry.main is None:
                accepted = _accepted(name, entry)
                raise UsageError(f"{flag}: {name} takes {accepted}" if entry.arguments
                                 else f"{flag}: {name} takes no arguments")
            key, value = entry.main, part
        if key not in entry.arguments:
            raise UsageError(f"{flag}: {name} has no argument {key!r}; it takes {_accepted(name, entry)}"
                             if entry.arguments else f"{flag}: {name} takes no arguments")
        if key in arguments:
            raise UsageError(f"{flag}: gives {key} twice")
        arguments[key] = _convert(flag, key, value, entry.arguments[key])
    return arguments


def _accepted(name, entry):
    shown = ", ".join(entry.arguments)
    main = f"{name}:VALUE (its {entry.main}) or " if entry.main else ""
    return f"{main}{name}:key=value with key one of {shown}"


def _convert(flag, key, value, accepts):
    if isinstance(accepts, tuple):
        if value not in accepts:
            raise UsageError(f"{flag}: {key} must be one of {', '.join(accepts)}, not {value!r}")
        return value
    if accepts == "bool":
        if value.lower() not in ("true", "false"):
            raise UsageError(f"{flag}: {key} must be true or false, not {value!r}")
        return value.lower() == "true"
    try:
        number = int(value) if accepts == "int" else float(value)
    except ValueError:
        raise UsageError(f"{flag}: {key} must be {'an integer' if accepts == 'int' else 'a number'}, "
                         f"not {value!r}") from None
    if number < 0 or (accepts == "float" and number != number):
        raise UsageError(f"{flag}: {key} must not be negative")
    if key == "k" and number < 1:
        raise UsageError(f"{flag}: k must be at least 1")
    if key in ("threshold", "thresholds", "recall", "precision", "specificity", "sensitivity") and number > 1:
        raise UsageError(f"{flag}: {key} must be between 0 and 1")
    return number


def parse_metrics(flag, items, task=None):
    """Returns the Specs of --metrics `items`, `auto` replaced by the task's metrics; None if that needs the task.

    A metric given besides auto replaces auto's of the same logged name (`auto,auc:curve=PR`).

    Raises:
        UsageError: as `parse`, and for a name logged twice.
    """
    given = {item: parse(flag, item) for item in items if item != "auto"}
    logged = [spec.logs for spec in given.values()]
    specs = []
    for item in items:
        if item != "auto":
            specs.append(given[item])
        elif task is None:
            return None
        else:
            specs += [spec for spec in map(lambda name: parse(flag, name), AUTO_METRICS[task])
                      if spec.logs not in logged]
    logged = [spec.logs for spec in specs]
    twice = [name for index, name in enumerate(logged) if name in logged[:index]]
    if twice:  # Keras would log the second as name_1.
        raise UsageError(f"{flag}: names {twice[0]!r} twice" if items.count(twice[0]) > 1
                         else f"{flag}: logs {twice[0]!r} twice")
    return specs


def check_metrics_text(items):
    """The --metrics check: a message for the first mistake, or None."""
    flag = f"--metrics={','.join(items)}"
    try:
        parse_metrics(flag, items, "classification")
    except UsageError as error:
        return str(error).removeprefix(flag + ": ")
    return None


def check_loss_text(text):
    """The --loss check: a message for the first mistake, or None."""
    if text == "auto":
        return None
    try:
        parse(f"--loss={text}", text, "losses")
    except UsageError as error:
        return str(error).removeprefix(f"--loss={text}: ")
    return None


def logged_metric_names(items, task=None):
    """Returns the names the --metrics `items` log (val_ ones aside), or None while that depends on the task."""
    try:
        specs = parse_metrics("--metrics", items, task)
    except UsageError:
        return None
    return None if specs is None else [spec.logs for spec in specs]


def compares_values(loss):
    """Whether the --loss value compares values (mse, huber:2, ...), which suits any labels."""
    if loss == "auto":
        return False
    try:
        return parse("--loss", loss, "losses").compares_values
    except UsageError:
        return False


# Logged name -> "up" or "down", for every name a catalogued metric can be logged under.
METRIC_DIRECTIONS = {
    **{entry.logs: entry.direction for entry in METRICS.values() if entry.direction},
    **{name: entry.direction for name, entry in METRICS.items() if entry.direction},
    **{alias: METRICS[name].direction for alias, name in METRIC_ALIASES.items() if METRICS[name].direction},
}


def direction(monitor, compiled=None):
    """Returns "min" or "max" for a logged quantity, as Keras's mode "auto" decides it, or None.

    Keras's monitoring callbacks (EarlyStopping, ModelCheckpoint) minimise the
    loss and follow a compiled metric's direction, and refuse anything else.

    Args:
        monitor: A logged name: loss, val_accuracy, ...
        compiled: The logged names of the metrics compiled; None for any catalogued metric.
    """
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    if (compiled is None or name in compiled) and name in METRIC_DIRECTIONS:
        return "max" if METRIC_DIRECTIONS[name] == "up" else "min"
    return None


def label_smoothing_problem(loss, smoothing):
    """Says why --label_smoothing cannot apply to --loss `loss`, or returns None."""
    if not smoothing or loss == "auto":  # auto: a regression's loss is refused once the task is known.
        return None
    try:
        spec = parse("--loss", loss, "losses")
    except UsageError:
        return None  # --loss's own check says why.
    if spec.plugin:
        return f"applies to Keras's cross-entropy losses, not your own --loss {loss}"
    if not spec.entry.smoothing and spec.name != "sparse_categorical_crossentropy":
        return f"applies to the cross-entropy losses, not --loss {loss}"
    return None


def plugins(value):
    """Returns the plug-in specs among a --loss value (text) or --metrics items (a tuple)."""
    entries, aliases = (LOSSES, LOSS_ALIASES) if isinstance(value, str) else (METRICS, METRIC_ALIASES)
    items = (value,) if isinstance(value, str) else value
    return [item for item in items if item != "auto" and item.partition(":")[0] not in entries
            and item.partition(":")[0] not in aliases and is_plugin_spec(item)]
