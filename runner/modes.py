"""--mode evaluate and --mode predict: a saved model (a .keras file or a run's model.keras) on a dataset.

evaluate compiles the model with the loss and metrics its run compiled
(config.yaml), encodes the labels as the run did (results.json's class
names), and reports its loss and metrics on the dataset's test split, or on
all its examples without one. predict writes the model's outputs for every
input to --predictions_file, batch by batch into a temporary file renamed
at the end.

Everything that can be refused is refused before TensorFlow is imported:
the options (cli/modes.py), the labels of files loaded without it, the
cells of a CSV file to predict.
"""

import dataclasses
import json
import math
import os
import sys

import numpy as np

from kerasrun import datasets
from kerasrun.cli import modes
from kerasrun.cli.config import Config, flag_label
from kerasrun.core import files
from kerasrun.core.errors import UsageError
from kerasrun.datasets import image_source, sources, unlabelled
from kerasrun.datasets.arrays import part_size
from kerasrun.runner.distribution import configure_tensorflow


def run(config):
    """Evaluates or predicts as the config says (or, with --dry_run, says what it would do); returns the exit status.

    Raises:
        UsageError: for data the saved model cannot take, found once it is read.
    """
    saved = modes.saved_model(config.model, flag_label(config.sources, "model"))
    if saved.run_dir and not os.path.isfile(os.path.join(saved.run_dir, modes.RUN_RESULTS)):
        print(f"train.py: warning: the run {saved.run_dir} has no {modes.RUN_RESULTS} (it has not ended): its task "
              "and class names are unknown, so classes are numbered", file=sys.stderr, flush=True)
    elif (saved.run_dir and "model_file" in saved.run_results and saved.run_results["model_file"] is None
          and os.path.basename(saved.file) == modes.MODEL_FILE):
        print(f"train.py: warning: the run {saved.run_dir} saved no model when it ended (its results say "
              f"model_file null): {saved.file} is from an earlier, interrupted part of it", file=sys.stderr, flush=True)
    values = modes.with_run_settings(dict(config), saved)
    values["validation_split"] = 0.0  # Every example is used: nothing is held out.
    config = Config(values, config.sources, config.warnings)
    configure_tensorflow(config)
    if config.mode == "evaluate":
        return evaluate(config, saved)
    return predict(config, saved)


def _model_line(config, saved):
    if saved.run_dir is None:
        return (f"model: {saved.file} (no run directory: loss, metrics and labels as --loss, --metrics and the "
                "data say)")
    compiled = f"; loss {config.loss}, metrics {','.join(config.metrics)}" if config.mode == "evaluate" else ""
    return f"model: {saved.file}, of run {saved.run_dir} (its data settings{compiled}, from its {modes.RUN_CONFIG})"


def _dataset_context(config):
    return f"{flag_label(config.sources, 'dataset')}={config.dataset!r}"


# --- evaluate -------------------------------------------------------------------------------------------------


def evaluate(config, saved):
    """Reports the model's loss and metrics; writes evaluation.json next to it (or a --results_file line).

    Returns:
        0.
    """
    from kerasrun.runner.data_check import load_data, loads_cheaply

    context = _dataset_context(config)
    source = sources.parse(config.dataset, datasets.names())
    if config.dry_run and not loads_cheaply(config):
        print(_model_line(config, saved))
        print(f"would evaluate on {context} (loaded when the run starts)")
        print(f"would write {_evaluation_target(config, saved)}")
        return 0
    if source.kind == "csv" and saved.named:  # Refuses a missing number as predict does: the model holds no mean.
        unlabelled.CsvFeatures(source.argument, _table_kinds(saved), context).count()
    data = load_data(config)
    if not data.table:  # Examples the model cannot take say so before their labels are looked at.
        modes.check_example_shape(saved, tuple(data.input_shape), context)
    data = as_run_encoded(data, saved, context)
    parts, split = examples_of(data)
    count = sum(part_size(part) for part in parts)
    print(_model_line(config, saved), flush=True)  # Once the data is known to fit: a refusal is the only line.
    print(f"evaluating on {_split_words(split, count)}", flush=True)
    if config.dry_run:
        print(f"would write {_evaluation_target(config, saved)}")
        return 0
    model = _compiled_model(config, saved, data)
    from kerasrun.runner.fit import format_logs, resolve_verbosity

    batches = _concatenated([datasets.make_test_dataset(dataclasses.replace(data, test=part),
                                                        batch_size=config.batch_size) for part in parts])
    scores = model.evaluate(batches, verbose=resolve_verbosity(config.verbose), return_dict=True)
    # NaN and infinity are no JSON: written as text, as results.json writes them.
    scores = {name: float(value) if math.isfinite(value) else str(float(value)) for name, value in scores.items()}
    print(f"Evaluation: {format_logs(scores)}", flush=True)
    record = {"model": saved.file, "run_dir": saved.run_dir, "dataset": config.dataset, "split": split,
              "examples": count, "loss": config.loss, "metrics_compiled": list(config.metrics), "metrics": scores}
    if config.results_file:
        files.append_line(config.results_file, json.dumps(record))
    else:
        files.write_atomically(_evaluation_file(saved), json.dumps(record, indent=2) + "\n")
    print(f"Wrote {_evaluation_target(config, saved)}")
    return 0


def _evaluation_file(saved):
    return modes.evaluation_file(saved.file)


def _evaluation_target(config, saved):
    if config.results_file:
        return f"the evaluation as one line appended to {config.results_file}"
    return _evaluation_file(saved)


def _split_words(split, count):
    if split == "test":
        return f"the dataset's test split: {count} examples"
    return f"all {count} examples of the dataset (it has no test split)"


def examples_of(data):
    """Returns (the parts of `data` to use, "test" or "all"): its test split if it has one, else train and val."""
    if data.test is not None:
        return [data.test], "test"
    return [part for part in (data.train, data.val) if part is not None], "all"


def as_run_encoded(data, saved, context):
    """Returns `data` with its class labels as the run encoded them: ids into the run's class names.

    The data's own ids index its own (sorted) class names, which for a
    subset of the classes are not the run's. Without a run, or without named
    classes, the data stays as it is, but takes the run's number of classes
    (labels of a few of them still fit a model of them all).

    Raises:
        UsageError: naming --dataset and a label the model does not know.
    """
    names = saved.class_names
    outputs = saved.run_results.get("outputs")
    if saved.task not in ("classification", "binary") or data.head.task != saved.task:
        return data
    if names and data.class_names is None:  # Ids of named classes: their order is anyone's guess.
        raise UsageError(f"{context}: the labels are numbers, but the model's classes are named "
                         f"({', '.join(map(str, names[:5]))}{', ...' if len(names) > 5 else ''}); give the labels "
                         "as those names")
    if names and data.class_names is not None:
        index = {str(name): position for position, name in enumerate(names)}
        unknown = [str(name) for name in data.class_names if str(name) not in index]
        if unknown:
            raise UsageError(f"{context}: label {unknown[0]!r} is not one of the model's classes "
                             f"({', '.join(map(str, names))})")
        mapping = np.array([index[str(name)] for name in data.class_names])
        data = dataclasses.replace(data, train=_remapped(data.train, mapping), val=_remapped(data.val, mapping),
                                   test=_remapped(data.test, mapping), class_names=tuple(names))
    if saved.task == "classification" and outputs:
        _check_ids_within(data, outputs, context)
        data = dataclasses.replace(data, num_classes=outputs, head=dataclasses.replace(data.head, units=outputs))
    return data


def _check_ids_within(data, outputs, context):
    """Refuses class ids the model has no output for (TensorFlow would fail on them while evaluating)."""
    if data.label_kind != "int":
        return
    for part in (data.train, data.val, data.test):
        labels = None if part is None else part[1] if isinstance(part, tuple) else getattr(part, "labels", None)
        if labels is not None and len(labels) and int(np.max(labels)) >= outputs:
            raise UsageError(f"{context}: holds the class id {int(np.max(labels))}, but the model has {outputs} "
                             f"classes (0 to {outputs - 1})")


def _remapped(part, mapping):
    if part is None:
        return None
    if isinstance(part, tuple):
        x, y = part
        return x, mapping[y.astype(np.int64)].astype(y.dtype)
    return dataclasses.replace(part, labels=mapping[part.labels.astype(np.int64)].astype(part.labels.dtype))


def _compiled_model(config, saved, data):
    """Loads the model (checked to fit the data) and compiles it with the run's loss and metrics."""
    from kerasrun import models
    from kerasrun.models import saved as saved_models
    from kerasrun.runner.compiling import checked_loss, make_loss, make_metrics

    flag = flag_label(config.sources, "model")
    if data.table:
        model = saved_models.load_table_model(saved.file, data.table, data.head, config.model_safe_mode, flag)
        if model is None:
            raise UsageError(f"{flag}={config.model!r}: the model takes one array, not a table's columns")
    else:
        model = saved_models.load_saved_model(saved.file, data.input_shape, data.head, config.model_safe_mode, flag)
    outputs = models.output_width(model, config.model, data.input_shape)
    loss = checked_loss(config, data, outputs)
    model.compile(loss=make_loss(loss, data.head, data.label_kind, outputs, config.label_smoothing),
                  metrics=make_metrics(config.metrics, data.head, data.label_kind, outputs))
    return model


def _concatenated(batches):
    joined = batches[0]
    for more in batches[1:]:
        joined = joined.concatenate(more)
    return joined


# --- predict --------------------------------------------------------------------------------------------------


def predict(config, saved):
    """Writes the model's outputs for every input to --predictions_file (see `Columns`); returns 0."""
    context = _dataset_context(config)
    source = sources.parse(config.dataset, datasets.names())
    from kerasrun.runner.data_check import loads_cheaply

    if config.dry_run and not loads_cheaply(config) and source.kind != "csv":
        print(_model_line(config, saved))
        print(f"would predict {context} (loaded when the run starts) into {config.predictions_file}")
        return 0
    count, batches = _inputs(config, saved, source, context)  # Prints the model's line, then which inputs.
    if config.dry_run:
        print(f"would write {count} rows of predictions to {config.predictions_file}")
        return 0
    from kerasrun.models.saved import load_model_file

    model = load_model_file(saved.file, config.model_safe_mode, flag_label(config.sources, "model"))
    task = None if config.task == "auto" else config.task  # The run's, unless --task says otherwise.
    columns = Columns.of(saved, _width(model, flag_label(config.sources, "model")), task)
    print(columns.line, flush=True)
    directory = os.path.dirname(config.predictions_file)
    if directory:
        os.makedirs(directory, exist_ok=True)
    write = _write_npz if config.predictions_file.endswith(".npz") else _write_csv
    files.replace_atomically(config.predictions_file,
                             lambda path: write(path, columns, _predicted(model, batches, count, config)))
    print(f"Wrote {count} predictions to {config.predictions_file}")
    return 0


def _inputs(config, saved, source, context):
    """Returns (the number of inputs, a function returning an iterator of their batches); reads CSV and npz without TensorFlow."""
    size = config.batch_size
    if source.kind == "csv":
        # The test split when there is one, as evaluate takes: --dataset_test's file.
        path = config.dataset_test or source.argument
        if config.dataset_test:
            context = f"{flag_label(config.sources, 'dataset_test')}={path!r}"
        reader = unlabelled.CsvFeatures(path, _table_kinds(saved), context)
        count = reader.count()
        print(_model_line(config, saved), flush=True)
        which = "the test split, --dataset_test" if config.dataset_test else "every row"
        print(f"predicting {count} rows of {path}: {which} (label columns, if any, are not read)", flush=True)
        return count, lambda: reader.batches(size)
    if source.kind == "npz":
        x, names = unlabelled.npz_inputs(source.argument, context)
        modes.check_example_shape(saved, x.shape[1:], context)
        print(_model_line(config, saved), flush=True)
        which = "its test examples, x_test" if names == ["x_test"] else f"every example: {' + '.join(names)}"
        print(f"predicting {len(x)} examples of {source.argument}: {which}", flush=True)
        return len(x), lambda: (x[start:start + size] for start in range(0, len(x), size))
    from kerasrun.runner.data_check import load_data

    data = load_data(config)
    parts, split = examples_of(data)
    count = sum(part_size(part) for part in parts)
    modes.check_example_shape(saved, tuple(data.input_shape), context)
    print(_model_line(config, saved), flush=True)
    print(f"predicting {_split_words(split, count)}" + (" (in file order)" if any(
        isinstance(part, image_source.ImageFiles) for part in parts) else ""), flush=True)

    import keras

    # predict_on_batch on JAX takes NumPy arrays, not the tf.data pipeline's tensors (cheap: CPU memory either way).
    as_arrays = keras.backend.backend() != "tensorflow"

    def batches():
        for part in parts:
            for x, _ in datasets.make_test_dataset(dataclasses.replace(data, test=part), batch_size=size):
                yield keras.tree.map_structure(lambda tensor: tensor.numpy(), x) if as_arrays else x

    return count, batches


def _table_kinds(saved):
    """Returns {column: kind} of a table's model, from its inputs' dtypes."""
    return {item.name: unlabelled.kind_of_dtype(item.dtype) for item in saved.inputs}


def _width(model, flag):
    shape = model.output_shape
    if isinstance(shape, list) or not isinstance(shape, tuple):
        raise UsageError(f"{flag}: the model has several outputs; predict writes one")
    return int(shape[-1]) if len(shape) > 1 and shape[-1] is not None else 1


def _predicted(model, batches, count, config):
    """Yields the model's outputs, a (n, width) array per batch, with Keras's progress bar."""
    import keras

    from kerasrun.runner.fit import resolve_verbosity

    bar = keras.utils.Progbar(count, verbose=resolve_verbosity(config.verbose), unit_name="example")
    done = 0
    for batch in batches():
        outputs = np.asarray(model.predict_on_batch(batch), dtype=np.float64)
        outputs = outputs.reshape(len(outputs), -1)
        done += len(outputs)
        bar.update(done)
        yield outputs


@dataclasses.dataclass(frozen=True)
class Columns:
    """How a task's outputs are written.

    Args:
        task: The run's task, or None when unknown (raw outputs are written).
        names: For classification and binary, the class names (or ids as
            text); for multilabel and regression, a name per output.
        line: The line saying what is written, and why.
    """

    task: object
    names: tuple
    line: str
    named: bool = False

    @classmethod
    def of(cls, saved, width, task=None):
        """Returns the Columns of a model of `width` outputs, from its run's task, class names and label columns.

        Args:
            saved: The `SavedModel`.
            width: The width of the model's output.
            task: The task to write, None for the run's. Defaults to None.
        """
        task, names = task or saved.task, saved.class_names
        labels = saved.run_config.get("dataset_label_column") or []
        from_csv = str(saved.run_config.get("dataset", "")).startswith("csv:") and len(labels) == width
        if task == "classification" and width > 1:
            named = bool(names) and len(names) == width
            names = [str(name) for name in names] if named else [str(i) for i in range(width)]
            return cls(task, tuple(names), "columns: predicted (the class), and p_<class>, its probability per class",
                       named)
        if task == "binary" and width == 1:
            named = bool(names) and len(names) == 2
            names = [str(name) for name in names] if named else ["0", "1"]
            return cls(task, tuple(names), f"columns: predicted (the class), and p_{names[1]}, the probability of "
                                           f"{names[1]}", named)
        if task == "multilabel":
            names = labels if from_csv else [f"label_{index}" for index in range(width)]
            return cls(task, tuple(names), "columns: per label, 0/1 (its probability at least 0.5) and p_<label>")
        if task == "regression":
            names = labels if from_csv else ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
            return cls(task, tuple(names), f"columns: {', '.join(names)} (predicted values)")
        why = ("the model comes from no run directory; --task says which task it learned"
               if saved.run_dir is None else "the run recorded no task")
        return cls(None, tuple(f"output_{index}" for index in range(width)),
                   f"columns: output_0...: the model's raw outputs ({why})")

    def header(self):
        """Returns the CSV header row."""
        if self.task in ("classification", "binary"):
            shown = self.names if self.task == "classification" else self.names[1:]
            return ["predicted", *(f"p_{name}" for name in shown)]
        if self.task == "multilabel":
            return [cell for name in self.names for cell in (name, f"p_{name}")]
        return list(self.names)

    def predicted(self, outputs):
        """Returns the predicted class ids (classification, binary: (n,)) or 0/1 labels (multilabel), else None."""
        if self.task == "classification":
            return outputs.argmax(axis=1)
        if self.task in ("binary", "multilabel"):
            chosen = (outputs >= 0.5).astype(np.int64)
            return chosen[:, 0] if self.task == "binary" else chosen
        return None

    def rows(self, outputs):
        """Returns the CSV rows of a batch of outputs."""
        chosen = self.predicted(outputs)
        if self.task in ("classification", "binary"):
            return [[self.names[index] if self.named else int(index), *map(_number, probabilities)]
                for index, probabilities in zip(chosen, outputs)]
        if self.task == "multilabel":
            return [[cell for label, probability in zip(labels, probabilities) for cell in (int(label), _number(probability))]
                    for labels, probabilities in zip(chosen, outputs)]
        return [[_number(value) for value in row] for row in outputs]


def _number(value):
    return f"{value:.8g}"


def _write_csv(path, columns, outputs):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns.header())
        for batch in outputs:  # Written as they come: memory holds one batch.
            writer.writerows(columns.rows(batch))
        stream.flush()
        os.fsync(stream.fileno())


def _write_npz(path, columns, outputs):
    # numpy writes an archive in one go: the outputs (far smaller than the inputs, as a rule) are gathered first.
    gathered = list(outputs)
    predictions = np.concatenate(gathered) if gathered else np.zeros((0, len(columns.names)))
    arrays = {"predictions": predictions.astype(np.float32)}
    if columns.task in ("classification", "binary", "multilabel"):
        arrays["predicted"] = columns.predicted(predictions)
    if columns.named:
        arrays["class_names"] = np.array(columns.names)
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)
        stream.flush()
        os.fsync(stream.fileno())
