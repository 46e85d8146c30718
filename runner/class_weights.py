"""The `class_weight` that `model.fit` gets, worked out from --class_weight and the training labels.

Keras applies it to a tf.data pipeline of (x, y) batches with one label per
example (a class id, a one-hot row or a 0/1 label): it weighs each example's
loss by its class's weight. `balanced` follows scikit-learn's rule,
n_examples / (n_classes * count of the class), so that every class counts as
much in total (n_classes: those with training examples).
"""

from kerasrun.cli.class_weight_option import NO_CLASSES, format_weights, no_classes_message, parse_class_weight
from kerasrun.cli.config import flag_label
from kerasrun.core.errors import UsageError
from kerasrun.datasets.csv_stream import CsvRows
from kerasrun.datasets.image_source import ImageFiles


def class_weights(config, data):
    """Returns {class id: weight} for `model.fit`, or None for --class_weight none.

    Every class of the data gets a weight (1 for those a given list leaves
    out): Keras looks weights up in a table as long as the largest id given,
    so a label beyond it would fail inside training.

    Args:
        config: The resolved Config.
        data: The loaded `Data`.

    Raises:
        UsageError: naming --class_weight, for a task without classes or a
            class id the labels do not have.
    """
    parsed = parse_class_weight(config.class_weight)
    if parsed is None:
        return None
    label = f"{flag_label(config.sources, 'class_weight')}={config.class_weight}"
    task = data.head.task
    if task in NO_CLASSES:
        raise UsageError(f"{label}: {no_classes_message(task)}")
    count = 2 if task == "binary" else data.num_classes
    if parsed == "balanced":
        return balanced(training_labels(data, label), count)
    beyond = sorted(class_id for class_id in parsed if class_id >= count)
    if beyond:
        names = "0 and 1" if count == 2 else f"0 to {count - 1}"
        raise UsageError(f"{label}: class {beyond[0]} is not a class of the data, whose classes are {names}")
    return {class_id: parsed.get(class_id, 1.0) for class_id in range(count)}


def balanced(labels, count):
    """Returns {class id: n / (classes present * examples of the class)} for integer `labels`, for ids below `count`.

    A class without training examples weighs 1 and is not counted among the classes, so the weights
    still add up to n over the examples (scikit-learn's rule over the classes present).
    """
    import numpy as np

    found = np.bincount(labels, minlength=count)
    present = int(np.count_nonzero(found))
    return {class_id: (len(labels) / (present * int(found[class_id])) if found[class_id] else 1.0)
            for class_id in range(count)}


def balanced_line(weights):
    """Returns the line a run prints about the weights it chose for the user."""
    return f"class weights: balanced from the training labels: {format_weights(weights)}"


def training_labels(data, label):
    """Returns the training split's class ids as a 1-D integer array.

    Raises:
        UsageError: when the labels are not at hand (a plug-in's tf.data dataset).
    """
    import numpy as np

    train = data.train
    if isinstance(train, tuple):
        labels = np.asarray(train[1])
    elif isinstance(train, CsvRows):  # A CSV file streamed from disk.
        labels = train.part_labels
    elif isinstance(train, ImageFiles):  # An image folder streamed from disk.
        labels = train.labels
    else:
        raise UsageError(f"{label}: balanced needs the training labels, which this dataset does not hold in "
                         "memory; give the weights, such as 0:1,1:5")
    if labels.ndim == 2 and labels.shape[1] > 1:  # One-hot rows (or class probabilities).
        labels = labels.argmax(axis=1)
    return labels.reshape(-1).astype(np.int64)
