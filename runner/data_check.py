"""The data a run trains on, loaded and checked against the config: what a run and --dry_run share.

Imports no TensorFlow for the sources that load without it (the bundled
digits, .npz files, CSV files held in memory), so --dry_run can load them
and refuse what the run would refuse, and print the lines the run would print.
"""

import math

from kerasrun import datasets, models
from kerasrun.callbacks import stepping
from kerasrun.cli.config import check_against_data, flag_label
from kerasrun.core import losses_metrics
from kerasrun.datasets import arrays, builtin, csv_stream, sources, tabular
from kerasrun.runner.class_weights import balanced_line, class_weights
from kerasrun.cli import export_options as export
from kerasrun.cli.backend import check_table
from kerasrun.runner.compiling import check_smoothing, check_trainable, checked_loss, smoothing_line


def load_data(config):
    """Loads the dataset the config names."""
    return datasets.load(
        config.dataset,
        seed=config.seed,
        validation_split=config.validation_split,
        label_columns=config.dataset_label_column,
        image_size=config.dataset_image_size,
        color_mode=config.dataset_color_mode,
        cache=config.dataset_cache,
        task=config.task,
        categorical=config.dataset_categorical_columns,
        chosen_by_loss=config.loss if losses_metrics.compares_values(config.loss) else None,
        test=config.dataset_test,
        validation=config.dataset_validation,
    )


def checked_data(config):
    """Returns (the loaded Data, the class weights fit gets) once the config's data-dependent checks pass.

    Raises:
        UsageError: as `datasets.load`, and for data the config cannot train
            on (one example, one class, class weights or label smoothing
            that do not fit the task, a monitor the task's metrics do not log).
    """
    data = load_data(config)
    check_trainable(data, config.dataset, config.loss)
    weights = class_weights(config, data)
    check_smoothing(config.loss, data.label_kind, config.label_smoothing)
    check_against_data(config, has_validation=data.val is not None, task=data.head.task)
    export.check_table(config.export, data.table, flag_label(config.sources, "export"))
    check_table(config.backend, data.table, flag_label(config.sources, "backend"))
    return data, weights


def data_lines(config, data, weights):
    """Returns the lines a run prints about its data: the splits, the task and why, the class weights it chose, smoothing."""
    lines = [task_line(config, data), splits_line(data)]
    if config.class_weight == "balanced":
        lines.append(balanced_line(weights))
    if smoothing_line(config.loss, data.label_kind, config.label_smoothing):
        lines.append(smoothing_line(config.loss, data.label_kind, config.label_smoothing))
    return lines


def dry_run_lines(config):
    """For --dry_run: loads data that loads without TensorFlow, checks it as a run would; returns its lines.

    Returns None for the data --dry_run leaves to the run: Keras's
    downloads, image folders (indexed, not decoded), plug-in loaders (imported,
    not called) and CSV files too large for memory.

    Raises:
        UsageError: whatever the run would refuse about the data, before training.
    """
    if not loads_cheaply(config):
        return None
    data, weights = checked_data(config)
    if models.builds_head(config.model):  # The model's output is the head's: its width is known before it is built.
        checked_loss(config, data, data.head.units)
    steps_line = stepping.choose(config, steps_per_epoch(config, data), stepping.own_classes(config)).line
    return [*data_lines(config, data, weights), steps_line]


def steps_per_epoch(config, data):
    """The training steps of an epoch of `data` (a Data) in batches of --batch_size."""
    return math.ceil(arrays.part_size(data.train) / config.batch_size)


def splits_line(data):
    """Returns "splits: 54,000 training, 6,000 validation (10% of the training data held out), 10,000 test (...)"."""
    parts = [f"{arrays.part_size(data.train):,} training"]
    for name, part in (("validation", data.val), ("test", data.test)):
        if part is None:
            parts.append(f"no {name}")
        else:
            origin = data.origins.get(name)
            parts.append(f"{arrays.part_size(part):,} {name}" + (f" ({origin})" if origin else ""))
    return f"splits: {', '.join(parts)}"


def loads_cheaply(config):
    """Whether the config's data loads without TensorFlow or a download: the bundled digits, .npz files, CSV
    files held in memory (what --dry_run loads)."""
    source = sources.check(config.dataset, datasets.names(), "--dataset")
    if source.kind == "builtin":
        return source.argument == builtin.DEFAULT
    if source.kind == "csv":
        return config.dataset_cache == "memory" or (config.dataset_cache == "auto"
                                                    and csv_stream.fits_in_memory(source.argument))
    return source.kind == "npz"


def task_line(config, data):
    """Returns the line that says which task the run learns and why, and what is done to regression targets."""
    line = f"task: {data.head.task} ({data.task_reason})"
    if data.class_names and data.head.task == "classification":
        line = f"{line}\nclasses: {class_list(data.class_names)}"
    if data.table:
        line = f"columns: {tabular.describe(data.table)}\n{line}"
    if data.head.task != "regression":
        return line
    if scales_targets(config, data):
        mean, variance = data.target_stats
        described = ", ".join(f"mean {m:.4g}, std {v ** 0.5:.4g}" for m, v in zip(mean, variance))
        return f"{line}; targets standardised ({described}), and undone by the model's last layer"
    if config.target_scaling == "standard":
        return f"{line}; targets as they are: --target_scaling applies to the models the runner builds, not {config.model}"
    return f"{line}; targets as they are (--target_scaling none)"


def class_list(names, most=20):
    """Returns "0 lyon, 1 nice, 2 paris": the class id each name got (sorted names), the first `most` of them."""
    shown = ", ".join(f"{index} {name}" for index, name in enumerate(names[:most]))
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all; results.json lists them)"


def scales_targets(config, data):
    """Whether the model's last layer undoes a standardisation of regression targets (--target_scaling)."""
    return (data.head.task == "regression" and config.target_scaling == "standard"
            and models.builds_head(config.model))
