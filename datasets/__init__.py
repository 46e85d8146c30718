"""Datasets for the training runner: built-ins, file formats and plug-ins.

`check_source` validates a `--dataset` value without importing TensorFlow;
`load` reads it into a `Data`; `make_tf_datasets` turns that into pipelines.
"""

import dataclasses
import os

from kerasrun.core.errors import UsageError
from kerasrun.datasets import (
    arrays,
    builtin,
    csv_source,
    csv_stream,
    image_source,
    npz_source,
    plugin_source,
    sources,
    split,
    tasks,
)
from kerasrun.datasets.data import Data
from kerasrun.datasets.image_source import CACHE_MODES, COLOR_MODES
from kerasrun.datasets.pipeline import (EpochCounter, left_out, make_numpy_datasets, make_test_dataset,
                                        make_tf_datasets, numpy_test_batches, takes_numpy_batches)

DEFAULT = builtin.DEFAULT

__all__ = ["CACHE_MODES", "COLOR_MODES", "DEFAULT", "Data", "EpochCounter", "check_source", "load",
           "check_folder", "check_plugin", "check_splits", "explain_failure", "file_of", "is_plugin",
           "make_numpy_datasets", "make_test_dataset", "make_tf_datasets", "names", "provides_validation",
           "left_out", "numpy_test_batches", "takes_numpy_batches"]


def names():
    """Returns the names of the built-in datasets, sorted."""
    return builtin.REGISTRY.names()


def check_source(value, flag="--dataset", label_columns=("label",)):
    """Checks a `--dataset` value cheaply, before TensorFlow is imported.

    Accepted: a built-in name, `npz:PATH` naming an .npz archive holding
    the right array names (its directory is read, not its arrays),
    `csv:PATH` naming a file whose header names the label column,
    `images:DIR` naming an existing folder, or a plug-in spec
    (`module:function` or `path/to/file.py:function`) whose module or file
    exists.

    Args:
        value: The value as the user typed it.
        flag: The flag the value came from, for messages. Defaults to
            "--dataset".
        label_columns: The --dataset_label_column names, for a CSV file.
            Defaults to ("label",).

    Raises:
        UsageError: naming the flag and value and saying what is accepted.
    """
    source = sources.check(value, names(), flag)
    context = f"{flag}={value!r}"
    if source.kind == "csv":
        csv_source.check_header(source.argument, label_columns, context)
    elif source.kind == "npz":
        npz_source.check_archive(source.argument, context)


def check_folder(value, flag="--dataset", test=None, validation_split=0.0):
    """Indexes an image folder as `load` would, refusing what it would refuse; does nothing for other values.

    Reads every file's first bytes: for --dry_run and a sweep's check, not validation.

    Args:
        value: The --dataset value.
        flag: The flag it came from, for messages. Defaults to "--dataset".
        test: The --dataset_test folder, or None.
        validation_split: The --validation_split. Defaults to 0.

    Raises:
        UsageError: for hidden-only, empty or image-less class folders and files that are not images,
            and a test or validation folder of classes the training folder lacks.
    """
    source = sources.parse(value, names())
    if source is not None and source.kind == "images":
        image_source.check_folder(source.argument, f"{flag}={value!r}", test=test, validation_split=validation_split)


def check_splits(value, *, test, validation, validation_split, label_columns=("label",),
                 label=lambda name: f"--{name}"):
    """Checks --dataset_test and --dataset_validation against a checked --dataset, before TensorFlow is imported.

    A CSV file's other files must exist, differ from the training file and
    from each other, and have its columns (headers read); --dataset_validation
    replaces --validation_split, so both are refused. An image folder's test
    folder must exist and differ from it; its split folders must not clash
    with --validation_split or --dataset_test. Other kinds: nothing to check
    (the options do not apply to them).

    Args:
        value: The --dataset value.
        test: The --dataset_test value, or None.
        validation: The --dataset_validation value, or None.
        validation_split: The --validation_split.
        label_columns: The --dataset_label_column names.
        label: Returns the flag (or YAML key) an option name came from, for messages.

    Raises:
        UsageError: naming the flag.
    """
    source = sources.parse(value, names())
    context = f"{label('dataset')}={value!r}"
    if source is None or source.kind not in ("csv", "images"):
        return
    if source.kind == "images":
        if test is not None:
            _check_other_path(test, source.argument, os.path.isdir, "folder", f"{label('dataset_test')}={test!r}")
        image_source.split_folders(source.argument, context, validation_split, test)
        return
    if validation is not None and validation_split > 0:
        raise UsageError(f"{label('dataset_validation')}={validation!r}: the file replaces "
                         f"{label('validation_split')}={validation_split}; give one of them")
    if test is not None and validation is not None and _same_path(test, validation):
        raise UsageError(f"{label('dataset_test')}={test!r}: is the {label('dataset_validation')} file too; "
                         "test rows must be unseen by training and its choices (early stopping, checkpoints)")
    for name, path in (("dataset_validation", validation), ("dataset_test", test)):
        if path is not None:
            other_context = f"{label(name)}={path!r}"
            _check_other_path(path, source.argument, os.path.isfile, "file", other_context)
            csv_source.check_same_columns(path, source.argument, label_columns, other_context)


def _check_other_path(path, training, exists, what, context):
    """Refuses a split's file or folder that does not exist or is the training data itself."""
    if not path or not exists(path):
        raise UsageError(f"{context}: {what} {path!r} does not exist")
    if _same_path(path, training):
        raise UsageError(f"{context}: is the training {what} of --dataset itself; give a {what} of other examples")


def _same_path(one, other):
    try:
        return os.path.samefile(one, other)
    except OSError:  # One of them does not exist: not the same.
        return False


def check_plugin(value, flag="--dataset"):
    """Imports a plug-in dataset's module and checks the function it names, without calling it.

    Does nothing for other values. Slower than `check_source` (the user's
    module may import TensorFlow), so only --dry_run and a sweep's check use it;
    a run imports the plug-in after seeding, in `load`.

    Raises:
        UsageError: if the attribute is missing or not a function taking no
            arguments, or the module fails to import.
    """
    if is_plugin(value):
        plugin_source.check_loadable(value, flag)


def explain_failure(data, error, context):
    """Names the image behind an error raised in training, when the images are streamed from disk.

    A streamed image that cannot be decoded stops training with TensorFlow's
    reason but not the file's name; this finds the file by decoding them in
    turn, which only a failed run pays for.

    Args:
        data: The run's `Data`.
        error: What training raised.
        context: The flag and value, as a message prefix.

    Returns:
        "CONTEXT: cannot decode PATH: reason", or None when the error is not
        about an image or no image fails to decode.
    """
    import tensorflow as tf

    streamed = [part for part in (data.train, data.val, data.test) if isinstance(part, image_source.ImageFiles)]
    if not streamed or not isinstance(error, tf.errors.InvalidArgumentError):
        return None
    print(f"{context}: looking for the image that failed to decode among "
          f"{sum(len(part) for part in streamed)} images", flush=True)
    found = next(filter(None, (image_source.undecodable(part) for part in streamed)), None)
    return f"{context}: {found}" if found else None


def file_of(value):
    """Returns the file (or image folder) a `--dataset` value reads, or None for a built-in or a plug-in."""
    source = sources.parse(value, names())
    return source.argument if source is not None and source.kind in sources.FORMAT_PREFIXES else None


def is_plugin(value):
    """Whether a checked `--dataset` value names the user's own loading function."""
    source = sources.parse(value, names())
    return source is not None and source.kind == "plugin"


def provides_validation(value, validation_split, validation=None):
    """Tells, without loading it, whether the dataset will have validation data.

    Args:
        value: A `--dataset` value.
        validation_split: The `--validation_split` fraction.
        validation: The `--dataset_validation` file, or None.

    Returns:
        True or False, or None when only loading can tell (a plug-in, or a
        file or folder that cannot be read).
    """
    if validation_split > 0:
        return True
    source = sources.parse(value, names())
    if source is None or source.kind == "plugin":
        return None
    if source.kind == "builtin":
        return True
    if source.kind == "npz":
        return npz_source.has_validation(source.argument)
    if source.kind == "csv":
        return validation is not None
    if source.kind == "images":
        try:
            return "val" in image_source.split_folders(source.argument, f"--dataset={value!r}")
        except (UsageError, OSError):  # Validation names the problem.
            return None
    return False


def load(value, *, seed, validation_split, label_columns=("label",), image_size=(64, 64),
         color_mode="rgb", cache="auto", flag="--dataset", task="auto", chosen_by_loss=None, categorical=(),
         test=None, validation=None):
    """Loads the dataset a `--dataset` value names, with its validation and test splits.

    Args:
        value: A value `check_source` accepts.
        seed: Seed of the validation hold-out.
        validation_split: Fraction of the training examples held out for
            validation, in [0, 1). Above 0 it replaces the source's own
            validation data; at 0 that data (or none) is used, except for
            Keras's datasets, which hold out `builtin.HELD_OUT` (their test
            split is the test split). The test split is never held out from.
        label_columns: The label columns of a CSV file. Defaults to
            ("label",).
        image_size: `(height, width)` images of a folder are resized to.
            Defaults to (64, 64).
        color_mode: "grayscale", "rgb" or "rgba", for image folders.
            Defaults to "rgb".
        cache: "auto", "memory" or "none": whether an image folder is
            decoded into memory once (a CSV file read into memory) or read
            from disk every epoch.
            Defaults to "auto".
        flag: The flag the value came from, for messages. Defaults to
            "--dataset".
        task: The --task (datasets/tasks.py). Defaults to "auto".
        chosen_by_loss: The --loss when it compares values. Defaults to None.
        categorical: The --dataset_categorical_columns of a CSV file.
            Defaults to none.
        test: The --dataset_test: a CSV file of the training file's columns,
            or a folder of an image folder's classes. Defaults to None.
        validation: The --dataset_validation: a CSV file of the training
            file's columns. Defaults to None.

    Returns:
        A `Data`.

    Raises:
        UsageError: if the value names nothing usable, or the data it names
            is malformed (missing arrays or columns, lengths that disagree,
            a plug-in returning the wrong structure, ...).
        RunError: if a Keras dataset cannot be downloaded.
    """
    source = sources.check(value, names(), flag)
    context = f"{flag}={value!r}"
    if source.kind == "images":
        data = image_source.read(
            source.argument,
            image_size=image_size,
            color_mode=color_mode,
            validation_split=validation_split,
            seed=seed,
            cache=cache,
            context=context,
            test=test,
        )
        return tasks.for_classes(data, task, context)
    array_names = table = None
    origins = {}
    if source.kind == "builtin":
        train, val, test_pair = (*builtin.REGISTRY.get(source.argument)(), None)[:3]  # Two pairs: no test split.
        known = task == tasks.AUTO  # Their labels are class ids, whatever a small sample of them looks like.
        task = "classification" if known else task
        origins = {"validation": "the bundled validation split", "test": f"{source.argument}'s test split"}
        if builtin.is_keras_dataset(source.argument) and validation_split == 0:
            train, val = _held_out_of_keras_dataset(source.argument, train, seed, context)
            origins["validation"] = arrays.held_out_words(builtin.HELD_OUT)
    elif source.kind == "npz":
        train, val, test_pair = npz_source.read(source.argument, context)
        origins = {"validation": "x_val, y_val", "test": "x_test, y_test"}
    elif source.kind == "csv":
        files = _other_csv_files(validation, test)
        if cache == "none" or cache == "auto" and not csv_stream.fits_in_memory(source.argument):
            return csv_stream.read(source.argument, label_columns, context, categorical=categorical,
                                   validation_split=validation_split, seed=seed, task=task,
                                   chosen_by_loss=chosen_by_loss, others=files)
        (train, _), table = csv_source.read(source.argument, label_columns, context, categorical)
        val, test_pair = (csv_source.read_other(*files[part], table, label_columns) if part in files else None
                          for part in ("val", "test"))
        array_names = csv_source.array_names(label_columns, {part: _FILE_FLAGS[part] for part in files})
        origins = {_SPLIT_WORDS[part]: f"{_FILE_FLAGS[part]} {path}" for part, (path, _) in files.items()}
    else:
        train, val, test_pair = plugin_source.read(source.argument, flag)
        origins = {"validation": "the loader's", "test": "the loader's"}
    data = arrays.build_data(
        train,
        val,
        test=test_pair,
        separate_val=source.kind == "csv" and validation is not None,
        origins=origins,
        context=context,
        validation_split=validation_split,
        seed=seed,
        array_names=array_names,
        task=task,
        chosen_by_loss=chosen_by_loss,
        table=table,
    )
    if source.kind == "builtin" and known:
        data = dataclasses.replace(data, task_reason=f"{source.argument} is a dataset of {data.num_classes} classes")
    return data


# The flag naming a CSV split's file of its own, and the split's name in the splits line.
_FILE_FLAGS = {"val": "--dataset_validation", "test": "--dataset_test"}
_SPLIT_WORDS = {"val": "validation", "test": "test"}


def _other_csv_files(validation, test):
    """Returns {"val"/"test": (path, context)} of the CSV files given for those splits."""
    return {part: (path, f"{_FILE_FLAGS[part]}={path!r}")
            for part, path in (("val", validation), ("test", test)) if path}


def _held_out_of_keras_dataset(name, train, seed, context):
    """Holds out validation data from a Keras dataset's training split, saying why; returns (train, val)."""
    x, y = train
    count = max(1, int(len(y) * builtin.HELD_OUT))
    print(f"{context}: holding out {count:,} of the {len(y):,} training examples ({builtin.HELD_OUT:.0%}, seeded) "
          f"for validation, as --validation_split is 0: {name}'s test split is kept for the final evaluation, "
          "so early stopping and checkpoints never choose on it", flush=True)
    return split.hold_out_rows(x, y, count, seed)
