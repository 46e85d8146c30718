"""What `model.compile` gets: the optimizer, and a loss and metrics that fit the labels."""

from kerasrun.callbacks.builder import enabled_families
from kerasrun.cli.optimizer_options import optimizer_kwargs
from kerasrun.core import keras_names, losses_metrics
from kerasrun.core.errors import UsageError
from kerasrun.core.plugins import load_plugin
from kerasrun.datasets.arrays import check_enough_examples

# With integer class labels and one output per class, only these losses work: the
# others expect one-hot labels and fail (or silently report nonsense).
_INTEGER_LABEL_LOSSES = ("sparse_categorical_crossentropy", "categorical_generalized_cross_entropy")


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
        check_enough_examples(len(data.train[1]), f"--dataset={dataset!r}")  # A table's features are a dict.
    if data.head.task == "classification" and data.num_classes < 2 and not losses_metrics.compares_values(loss):
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
    spec = losses_metrics.parse(f"--loss={name}", name, "losses")
    if spec.plugin:  # The user's own: it takes the labels as they are.
        return name
    if label_kind == "values" and not spec.compares_values:
        # Binary cross-entropy of prices trains to a large negative "loss" that ranks first in a sweep.
        raise UsageError(f"--loss={name}: is a loss for classes, but the task is regression, which "
                         "learns values; use auto (mean_squared_error) or a loss that compares values (mse, mae, "
                         "huber, ...)")
    if label_kind in _NOT_CLASS_IDS:
        if spec.name in ("sparse_categorical_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
                         "categorical_generalized_cross_entropy"):
            raise UsageError(f"--loss={name}: needs classes, but the task learns {_NOT_CLASS_IDS[label_kind]}; "
                             "use auto")
        return name
    _check_fits_labels("loss", name, spec, label_kind, outputs, _INTEGER_LABEL_LOSSES, batch_size)
    return name


_AUTO_LOSSES = {"int": "sparse_categorical_crossentropy", "one_hot": "categorical_crossentropy",
                "binary": "binary_crossentropy", "multi_hot": "binary_crossentropy", "values": "mean_squared_error"}
_NOT_CLASS_IDS = {"binary": "one 0/1 label", "multi_hot": "several 0/1 labels", "values": "values"}


def checked_loss(config, data, outputs):
    """Returns the loss `choose_loss` picks once the metrics, the loss and the model's width fit the labels.

    Args:
        config: The resolved Config.
        data: The loaded `Data`.
        outputs: The width of the model's output; None for several outputs.

    Raises:
        UsageError: as `check_metrics`, `choose_loss` and `check_output_width`.
    """
    check_metrics(config.metrics, data.label_kind, outputs, config.batch_size, task=data.head.task)
    loss = choose_loss(config.loss, data.label_kind, outputs, config.batch_size)
    check_output_width(loss, outputs, data.num_classes, config.model)
    return loss


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
    name = None if loss == "auto" else losses_metrics.parse(f"--loss={loss}", loss, "losses").name
    if name in ("sparse_categorical_crossentropy", "categorical_crossentropy") and outputs not in (None, num_classes):
        raise UsageError(f"--model={model!r}: the model predicts {outputs} classes but the dataset has {num_classes}")


def check_metrics(names, label_kind, outputs, batch_size=None, task=None):
    """Refuses metrics that cannot work with the dataset's labels (arguments as for `choose_loss`).

    Metrics that read classes fit any labels of classes: `make_metrics` picks
    the sparse variant, or makes integer class ids one-hot for them. Those
    comparing values need one label per output.

    Args:
        task: The task, for --metrics auto. Defaults to None.

    Raises:
        UsageError: naming the metric and what to use instead.
    """
    flag = f"--metrics={','.join(names)}"
    for spec in losses_metrics.parse_metrics(flag, names, task or "classification"):
        if spec.entry is None:
            continue  # The user's own metric: it takes the labels as they are.
        if label_kind == "values" and not spec.compares_values:
            # Accuracy of prices "works" in Keras (exact equality) and reads 0: a number that means nothing.
            raise UsageError(f"{flag}: {spec.text} reads classes, but the task is regression, "
                             "which predicts values; use auto (mean_absolute_error, root_mean_squared_error) or "
                             "metrics that compare values (mae, mse, r2_score, ...)")
        if label_kind in ("binary", "multi_hot") and spec.entry.kind == "classes" and spec.name != "accuracy":
            raise UsageError(f"{flag}: {spec.text} ranks classes against each other, but the "
                             f"task is {task}, one sigmoid per label (it would read a constant); use auto, auc, "
                             "precision, recall or f1_score")
        top_k = spec.arguments.get("k", 5) if spec.name in ("top_k_categorical_accuracy",
                                                             "sparse_top_k_categorical_accuracy") else None
        if top_k is not None and outputs is not None and top_k >= outputs:
            raise UsageError(f"{flag}: {spec.text} counts the true class among the top "
                             f"{top_k} of {outputs} classes, which it always is; give k below {outputs} "
                             "(top_k:2)")
        _check_fits_labels("metrics", spec.text, spec, label_kind, outputs, (), batch_size)


def _check_fits_labels(flag, name, spec, label_kind, outputs, integer_names, batch_size):
    if outputs == 1 or label_kind in _NOT_CLASS_IDS:
        return  # A single output (a sigmoid, say) takes the labels as they are.
    if spec.compares_values:
        # Keras compares a batch of one label each, shape (batch,), with outputs of shape (batch, outputs):
        # broadcasting works only for a batch of one (keras.callbacks.EarlyStopping's example).
        if label_kind == "int" and batch_size != 1:
            raise UsageError(
                f"--{flag}={name}: compares each of the model's {outputs} outputs with the example's one label, "
                "which Keras can do only with --batch_size 1; give one-hot labels or a model with one output")
        return
    if flag == "metrics":
        return  # make_metrics fits them to the labels.
    if label_kind == "int" and spec.name not in integer_names:
        binary = (" (for two classes and one sigmoid output, say --task binary)"
                  if spec.entry.kind == "probabilities" and outputs == 2 else "")
        raise UsageError(
            f"--{flag}={name}: needs one-hot labels, but the dataset's labels are integer class ids; "
            f"use one of {', '.join(integer_names)} (or auto){binary}")
    if label_kind == "one_hot" and spec.name in _INTEGER_LABEL_LOSSES:
        instead = spec.name.removeprefix("sparse_") if spec.name.startswith("sparse_") else "categorical_crossentropy"
        raise UsageError(
            f"--{flag}={name}: needs integer class labels, but the dataset's labels are one-hot; "
            f"use {instead} (or auto)")


def smoothing_line(loss, label_kind, smoothing):
    """Returns the line saying integer labels are made one-hot for --label_smoothing, or None."""
    if smoothing and label_kind == "int" and loss in ("auto", "sparse_categorical_crossentropy"):
        return (f"label smoothing {smoothing:g}: Keras's sparse_categorical_crossentropy has none, so the "
                "integer class labels are made one-hot for categorical_crossentropy")
    return None


def check_smoothing(loss, label_kind, smoothing):
    """Refuses --label_smoothing for the loss auto picks when it is no cross-entropy (a regression's).

    Raises:
        UsageError: naming --label_smoothing and the loss.
    """
    if smoothing and loss == "auto" and _AUTO_LOSSES[label_kind] == "mean_squared_error":
        raise UsageError(f"--label_smoothing={smoothing}: applies to the cross-entropy losses, but the task "
                         "is regression, whose loss is mean_squared_error")


def make_loss(name, head, label_kind, outputs, smoothing=0.0):
    """Returns the Keras loss to compile: `name` (what `choose_loss` returned) with its arguments.

    Args:
        name: A loss name with arguments, or a plug-in spec.
        head: The data's Head.
        label_kind: As for `choose_loss`.
        outputs: The width of the model's output.
        smoothing: The --label_smoothing. Defaults to 0.
    """
    import keras

    spec = losses_metrics.parse(f"--loss={name}", name, "losses")
    if spec.plugin:
        loss = load_plugin("--loss", name)
        return loss() if isinstance(loss, type) else loss
    arguments = dict(spec.arguments)
    if smoothing and spec.name == "sparse_categorical_crossentropy":
        depth = outputs or head.units
        return _one_hot_labels(keras.losses.CategoricalCrossentropy, depth)(label_smoothing=smoothing, **arguments)
    if smoothing:
        arguments["label_smoothing"] = smoothing
    return getattr(keras.losses, spec.entry.keras)(**arguments)


def make_metrics(names, head, label_kind, outputs):
    """Returns the Keras metrics to compile for --metrics `names`, fitted to the labels.

    auto becomes the task's metrics; a metric reading classes gets integer
    class ids (its sparse variant, or the labels made one-hot) or one-hot
    labels as the dataset has them; AUC of several labels is multi-label.
    Each is logged under the name `losses_metrics` says.
    """
    import keras

    metrics = []
    for spec in losses_metrics.parse_metrics("--metrics", names, head.task):
        if spec.plugin:
            metric = load_plugin("--metrics", spec.plugin)
            metrics.append(metric(name=spec.logs) if isinstance(metric, type)
                           else keras.metrics.MeanMetricWrapper(metric, name=spec.logs))
            continue
        entry, arguments = spec.entry, dict(spec.arguments)
        classes = label_kind in ("int", "one_hot") and outputs not in (None, 1)
        if spec.name == "accuracy":  # As Keras's "accuracy" picks its metric from the labels.
            class_name = ({"int": "SparseCategoricalAccuracy", "one_hot": "CategoricalAccuracy"}[label_kind]
                          if classes else "BinaryAccuracy")
            metrics.append(getattr(keras.metrics, class_name)(name=spec.logs))
            continue
        class_name, depth = entry.keras, None
        if entry.kind == "classes" and classes and label_kind == "int":
            if entry.sparse:
                class_name = entry.sparse
            else:
                depth = outputs
        elif entry.kind == "classes":  # One-hot labels, or one column: the variant that reads them as they are.
            class_name = class_name.removeprefix("Sparse")
        elif entry.kind == "probabilities" and classes and label_kind == "int":
            depth = outputs
        if spec.name == "auc" and head.task == "multilabel":
            arguments.setdefault("multi_label", True)
            arguments.setdefault("num_labels", head.units)
        if spec.name in ("f1_score", "f_beta_score"):
            arguments.setdefault("average", "macro")  # Keras's default (None) logs one value per class.
            if head.task in ("binary", "multilabel"):  # Sigmoids: without a threshold Keras takes the argmax of
                arguments.setdefault("threshold", 0.5)  # one column, so every example counts as positive.
        if spec.name in ("mean_io_u", "one_hot_mean_io_u"):
            arguments.setdefault("num_classes", outputs or head.units)
            if class_name == "MeanIoU":  # Integer class ids against one score per class.
                arguments["sparse_y_pred"] = False
        if class_name[0].islower():  # Keras has it only as a function: averaged over the batches.
            metrics.append(keras.metrics.MeanMetricWrapper(getattr(keras.metrics, class_name), name=spec.logs))
            continue
        cls = getattr(keras.metrics, class_name)
        if depth is not None or spec.name in ("f1_score", "f_beta_score"):
            cls = _one_hot_labels(cls, depth)
        metrics.append(cls(name=spec.logs, **arguments))
    return metrics


def _one_hot_labels(cls, depth):
    """Returns `cls` (a Keras loss or metric class) taking integer class ids, made one-hot of `depth`;
    with depth None, labels of one value per example made a column (for metrics that need 2-D labels)."""
    from keras import ops

    def labels(y_true, y_pred):
        if depth is not None:
            return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), depth)
        return ops.expand_dims(y_true, -1) if len(y_true.shape) == 1 and len(y_pred.shape) == 2 else y_true

    if hasattr(cls, "update_state"):
        def update_state(self, y_true, y_pred, sample_weight=None):
            return cls.update_state(self, labels(ops.convert_to_tensor(y_true), y_pred), y_pred, sample_weight)

        members = {"update_state": update_state}
    else:
        def call(self, y_true, y_pred):
            return cls.call(self, labels(ops.convert_to_tensor(y_true), y_pred), y_pred)

        members = {"call": call}
    # Saved under Keras's own class: a saved model loads (and compiles) without this module.
    return type(cls.__name__, (cls,), {**members, "__module__": cls.__module__, "__qualname__": cls.__qualname__})
