"""What `model.compile` gets: the optimizer, and a loss and metrics that fit the labels."""

from kerasrun.callbacks.builder import enabled_families
from kerasrun.cli.optimizer_options import optimizer_kwargs
from kerasrun.core import keras_names
from kerasrun.core.errors import UsageError
from kerasrun.datasets.arrays import check_enough_examples

# With integer class labels and one output per class, only these work: the
# others expect one-hot labels and fail (or silently report nonsense).
_INTEGER_LABEL_METRICS = (
    "accuracy", "acc", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "sparse_categorical_crossentropy",
)


def check_trainable(data, dataset, loss):
    """Refuses a dataset a run cannot learn from: one example, or a single class under a classification loss.

    Either trains to "loss 0" and looks like a success.

    Args:
        data: The loaded `Data`.
        dataset: The --dataset value, for messages.
        loss: The --loss value.

    Raises:
        UsageError: naming --dataset and what it holds.
    """
    if isinstance(data.train, tuple):
        check_enough_examples(len(data.train[1]), f"--dataset={dataset!r}")
    if data.head.task == "classification" and data.num_classes < 2 and loss not in keras_names.VALUE_COMPARISONS:
        raise UsageError(f"--dataset={dataset!r}: every label is the same class, so a classifier has nothing "
                         "to learn (its loss is 0 from the start); give at least two classes, or a loss that "
                         "compares values, such as --loss mse")


def make_optimizer(config):
    """Returns the optimizer, with what the enabled callbacks need of it (EMA, for one)."""
    import keras

    options = {"learning_rate": config.learning_rate, **optimizer_kwargs(config)}
    for family in enabled_families(config):
        if family.optimizer_options is not None:
            options.update(family.optimizer_options(family.values(config)))
    return getattr(keras.optimizers, keras_names.OPTIMIZERS[config.optimizer])(**options)


def choose_loss(name, label_kind, outputs, batch_size=None):
    """Returns the loss to compile with: `name`, or for auto the one that fits the labels.

    Args:
        name: The --loss value.
        label_kind: "int" or "one_hot", from the dataset.
        outputs: The width of the model's output.
        batch_size: The --batch_size; None if unknown. Defaults to None.

    Raises:
        UsageError: for a loss that cannot work with these labels.
    """
    if name == "auto":
        return _AUTO_LOSSES[label_kind]
    if label_kind in _NOT_CLASS_IDS:
        if name in ("sparse_categorical_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy"):
            raise UsageError(f"--loss={name}: needs classes, but the task learns {_NOT_CLASS_IDS[label_kind]}; "
                             "use auto")
        return name
    _check_fits_labels("loss", name, label_kind, outputs, ("sparse_categorical_crossentropy",), batch_size)
    return name


_AUTO_LOSSES = {"int": "sparse_categorical_crossentropy", "one_hot": "categorical_crossentropy",
                "binary": "binary_crossentropy", "multi_hot": "binary_crossentropy", "values": "mean_squared_error"}
_NOT_CLASS_IDS = {"binary": "one 0/1 label", "multi_hot": "several 0/1 labels", "values": "values"}


def task_metrics(names, head):
    """Returns the metrics to compile: the task's own when the default (accuracy) is kept for another task."""
    import keras

    if tuple(names) != ("accuracy",) or head.task == "classification":
        return list(names)
    if head.task == "binary":
        return ["accuracy", keras.metrics.AUC(name="auc")]
    if head.task == "multilabel":
        return ["binary_accuracy", keras.metrics.AUC(name="auc", multi_label=True, num_labels=head.units)]
    return ["mean_absolute_error", keras.metrics.RootMeanSquaredError(name="root_mean_squared_error")]


def check_output_width(loss, outputs, num_classes, model):
    """Refuses a model whose output is not one score per class under a categorical cross-entropy.

    A model built only now (subclassed, or without an Input) shows its width
    only here; too wide, it trains and looks fine, too narrow, it fails
    mid-training with a dump of label values.

    Args:
        loss: The loss chosen (`choose_loss`).
        outputs: The width of the model's output; None for several outputs.
        num_classes: The number of classes in the dataset.
        model: The --model value, for messages.

    Raises:
        UsageError: naming --model, its width and the number of classes.
    """
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy") and outputs not in (None, num_classes):
        raise UsageError(f"--model={model!r}: the model predicts {outputs} classes but the dataset has {num_classes}")


def check_metrics(names, label_kind, outputs, batch_size=None):
    """Refuses metrics that cannot work with the dataset's labels (arguments as for `choose_loss`).

    Raises:
        UsageError: naming the metric and what to use instead.
    """
    for name in names:
        _check_fits_labels("metrics", name, label_kind, outputs, _INTEGER_LABEL_METRICS, batch_size)


def _check_fits_labels(flag, name, label_kind, outputs, integer_names, batch_size):
    if outputs == 1 or label_kind in _NOT_CLASS_IDS:
        return  # A single output (a sigmoid, say) takes the labels as they are.
    if name in keras_names.VALUE_COMPARISONS:
        # Keras compares a batch of one label each, shape (batch,), with outputs of shape (batch, outputs):
        # broadcasting works only for a batch of one (keras.callbacks.EarlyStopping's example).
        if label_kind == "int" and batch_size != 1:
            raise UsageError(
                f"--{flag}={name}: compares each of the model's {outputs} outputs with the example's one label, "
                "which Keras can do only with --batch_size 1; give one-hot labels or a model with one output")
        return
    if label_kind == "int" and name not in integer_names:
        raise UsageError(
            f"--{flag}={name}: needs one-hot labels, but the dataset's labels are integer class ids; "
            f"use one of {', '.join(integer_names)}" + (" (or auto)" if flag == "loss" else ""))
    if label_kind == "one_hot" and name.startswith("sparse_"):
        raise UsageError(
            f"--{flag}={name}: needs integer class labels, but the dataset's labels are one-hot; "
            f"use {name.removeprefix('sparse_')}" + (" (or auto)" if flag == "loss" else ""))
