"""The runner's own options: what to train, on what, and how."""

from kerasrun.core import keras_names, losses_metrics
from kerasrun.core.groups import OptionGroup
from kerasrun.core.options import (
    Arg, Bool, Choice, Float, Int, IntList, IntOrChoice, Str, StrList,
    all_positive, at_least, fraction_below_one, positive, when,
)
from kerasrun.datasets.image_source import CACHE_MODES, COLOR_MODES
from kerasrun.core.heads import TASKS
from kerasrun.models.hyperparameters import option_groups as model_option_groups


def _verbosity(value):
    return None if value in (0, 1, 2, "auto") else "must be 0 (silent), 1 (progress bar), 2 (one line per epoch) or auto"


def _label_smoothing(value):
    return None if 0 <= value < 1 else "must be at least 0 and below 1"


def _label_columns(values):
    if not values or any(not name.strip() for name in values):
        return "must name at least one column, without empty names"
    twice = [name for index, name in enumerate(values) if name in values[:index]]
    return f"names {twice[0]!r} twice" if twice else None


def _label_columns_or_none(values):
    return _label_columns(values) if values else None


def _seed_range(value):
    # What keras.utils.set_random_seed (NumPy's seeding) accepts.
    return None if 0 <= value < 2**32 else "must be at least 0 and below 2**32"


def _thread_count(value):
    return None if value >= 0 else "must be 0 (TensorFlow's choice: one per core) or more"


def _run_name(value):
    if value is None:
        return None
    if not value.strip() or value != value.strip():
        return "must not be blank, nor start or end with spaces (the directory would be hard to see)"
    if value.startswith(".") or "/" in value or "\\" in value or "\0" in value:
        return "must be a plain directory name (no path separators, not starting with a dot)"
    if not value.isprintable():
        return "must be a plain directory name (no line breaks, tabs or other control characters)"
    if len(value.encode()) > 200:
        return "must be at most 200 bytes long (a directory name's limit is 255)"
    if len(value.encode()) > 200:
        return "must be at most 200 bytes long (file systems refuse longer names)"
    return None


TRAINING = OptionGroup(
    name="",
    title="Training",
    summary="What the fit loop does.",
    args=(
        Arg("config", Str(optional=True), None,
            "YAML file of flag values; flags on the command line override it.", bookkeeping=True),
        Arg("epochs", Int(), 10, "Number of epochs to train.", at_least(1)),
        Arg("batch_size", Int(), 32, "Examples per training step.", at_least(1)),
        Arg("optimizer", Choice(*keras_names.OPTIMIZERS), "adam", "Keras optimizer."),
        Arg("learning_rate", Float(), 0.001, "Initial learning rate.", positive),
        Arg("loss", Str(), "auto",
            "Keras loss name or alias (mse, huber:delta=2, ...) or module:function / path/file.py:function; "
            "auto picks the task's: sparse_categorical_crossentropy for integer labels, categorical_crossentropy "
            "for one-hot labels, binary_crossentropy for binary and multilabel, mean_squared_error for "
            "regression.", losses_metrics.check_loss_text),
        Arg("metrics", StrList(), ("auto",),
            "Comma-separated Keras metric names or aliases, with arguments as name:value or name:key=value "
            "(top_k:5, auc:curve=PR, f1_score:threshold=0.5), or module:function / path/file.py:function; "
            "auto adds the task's: accuracy (classification), accuracy and auc (binary), binary_accuracy "
            "and auc (multilabel), mean_absolute_error and root_mean_squared_error (regression).",
            losses_metrics.check_metrics_text),
        Arg("label_smoothing", Float(), 0.0,
            "Cross-entropy losses: move this fraction of each label towards the uniform distribution; integer "
            "class labels are then made one-hot for categorical_crossentropy.", _label_smoothing),
        Arg("validation_split", Float(), 0.0,
            "Fraction of the training data held out for validation (seeded shuffle; never from the test "
            "split); 0 uses the dataset's own validation data, if any (10% held out for mnist, "
            "fashion_mnist, cifar10, cifar100).", fraction_below_one),
        Arg("seed", Int(), 0, "Seed for weights and data order.", _seed_range),
        Arg("verbose", IntOrChoice("auto"), "auto",
            "0 silent, 1 progress bar, 2 one line per epoch; auto: 1 on a terminal, else 2.",
            _verbosity, bookkeeping=True),
        Arg("callbacks", StrList(), (),
            "Your own callback classes, module:Class or path/file.py:Class, comma-separated; "
            "constructed with no arguments and run after the built-in ones."),
        Arg("run_name", Str(optional=True), None,
            "Name of the run's directory under --tensorboard_log_dir (default: a time stamp and "
            "the flags that differ from the defaults).", _run_name, bookkeeping=True),
        Arg("results_file", Str(optional=True), None,
            "Also append the run's results, as one JSON line, to this file (safe for many runs at once).",
            bookkeeping=True),
        Arg("deterministic", Bool(), False,
            "Use TensorFlow's deterministic ops, so runs with the same --seed give identical metrics "
            "(slower); on --backend jax seeded runs on the CPU repeat as they are (XLA on a GPU needs "
            "XLA_FLAGS=--xla_gpu_deterministic_ops=true), and it applies to tf.data's ops."),
        Arg("backend", Choice("tensorflow", "jax"), "tensorflow",
            "Keras's backend: tensorflow or jax (set as KERAS_BACKEND before Keras is imported; it overrides a "
            "KERAS_BACKEND in the environment, with a warning). On jax, what cannot work is refused before "
            "training, naming what to use instead."),
        Arg("steps_per_execution", IntOrChoice("auto", minimum=1), "auto",
            "Training steps run per call into the backend; more cuts the per-step overhead, which dominates "
            "for small models (callbacks then see batches in groups). auto picks as many as helps while every "
            "callback still sees each batch it acts on (1 with TerminateOnNaN, batch-level TensorBoard, "
            "LambdaCallback batch hooks or a --callbacks class with batch hooks; a divisor of every save_freq "
            "and update_freq); the run prints the number and why."),
        Arg("jit_compile", Choice("auto", "true", "false"), "auto",
            "Compile the train step with XLA: auto lets Keras decide."),
        Arg("intra_op_threads", Int(), 0,
            "Threads TensorFlow may split one op between; 0 lets TensorFlow choose (one per core). On few "
            "cores a small model trains faster with 1 (see the README's Speed); large ops want more. "
            "TensorFlow only: on --backend jax XLA runs the steps.", _thread_count),
        Arg("inter_op_threads", Int(), 0,
            "Threads TensorFlow may run independent ops on at once; 0 lets TensorFlow choose (one per core). "
            "TensorFlow only, as --intra_op_threads.", _thread_count),
        Arg("mixed_precision", Choice("none", "mixed_float16", "mixed_bfloat16"), "none",
            "Compute in 16-bit floats with 32-bit weights (mixed_float16 for GPUs, mixed_bfloat16 for "
            "TPUs and recent CPUs)."),
        Arg("dry_run", Bool(), False,
            "Check everything, print the resolved config and the callbacks, and exit without training.",
            bookkeeping=True),
    ),
    worker_overrides={"results_file": None, "verbose": 0},
)

def _for_dataset(*prefixes):
    """Returns an `applies` check: the option has an effect only with a `--dataset prefix:...` of `prefixes`."""
    wanted = " or ".join({"csv": "csv:PATH", "images": "images:DIR"}[prefix] for prefix in prefixes)
    return lambda values: (None if values["dataset"].startswith(tuple(f"{prefix}:" for prefix in prefixes))
                           else f"it applies to --dataset {wanted}, not {values['dataset']}")


def _for_saved_model(values):
    return None if values["model"].endswith(".keras") else f"it applies to a .keras --model, not {values['model']}"


DATA = OptionGroup(
    name="",
    title="Data",
    summary="Where the examples come from.",
    args=(
        Arg("dataset", Str(), "digits",
            "digits (bundled), mnist, fashion_mnist, cifar10, cifar100, npz:PATH, csv:PATH, "
            "images:DIR, or module:function / path/file.py:function."),
        Arg("dataset_label_column", StrList(), ("label",),
            "csv: the column holding the labels; several, comma-separated, for several targets (regression) "
            "or one 0/1 column per label (multilabel).", _label_columns, applies=_for_dataset("csv")),
        Arg("dataset_categorical_columns", StrList(), (),
            "csv: feature columns of whole numbers that code categories (zip codes, product ids); columns "
            "holding text are categories anyway.", _label_columns_or_none, applies=_for_dataset("csv")),
        Arg("task", Choice("auto", *TASKS), "auto",
            "What the model learns: classification (one class of several, softmax), binary (one sigmoid), "
            "multilabel (a sigmoid per 0/1 label column), regression (linear outputs); auto decides from "
            "the labels and prints why."),
        Arg("target_scaling", Choice("standard", "none"), "standard",
            "regression: standard makes the model's last layer undo a standardisation of the targets "
            "(mean and variance of the training split), so the network learns values of unit scale while "
            "its predictions, loss and metrics stay in your units; none leaves the targets as they are."),
        Arg("dataset_image_size", IntList((2,)), (64, 64),
            "images: height,width every image is resized to.", all_positive, applies=_for_dataset("images")),
        Arg("dataset_color_mode", Choice(*COLOR_MODES), "rgb",
            "images: the channels images are read with.", applies=_for_dataset("images")),
        Arg("dataset_cache", Choice(*CACHE_MODES), "auto",
            "images and csv: memory decodes every image (reads the file) once and trains from memory; none "
            "reads them from disk every epoch (for data larger than memory); auto is memory when the decoded "
            "images (the file's cells) take at most a quarter of the memory free at start.",
            bookkeeping=True, applies=_for_dataset("images", "csv")),
        Arg("dataset_validation", Str(optional=True), None,
            "csv: a second CSV file of the training file's columns (any order) holding the validation rows "
            "(instead of --validation_split of the training file).", applies=_for_dataset("csv")),
        Arg("dataset_test", Str(optional=True), None,
            "csv: a CSV file of the training file's columns (any order) holding the test rows; images: a "
            "folder of the training folder's class folders holding the test images (default: DIR/test when "
            "DIR holds train/ and test/). Evaluated once after training, never seen by it.",
            applies=_for_dataset("csv", "images")),
    ),
)

MODEL = OptionGroup(
    name="",
    title="Model",
    summary="What is trained.",
    args=(
        Arg("model", Str(), "mlp",
            "mlp, cnn, resnet, any keras.applications name (MobileNetV2, ResNet50, ...), "
            "a saved .keras file, or module:function / path/file.py:function."),
        Arg("model_weights", Str(optional=True), None,
            "keras.applications weights such as imagenet (needs the network once); "
            "empty for random initialisation."),
        Arg("model_safe_mode", Bool(), True,
            "Load .keras files in Keras's safe mode, which refuses to run code stored in them.",
            applies=_for_saved_model),
    ),
)


def _device_names(values):
    for name in values:
        kind, colon, number = name.upper().partition(":")
        if kind not in ("CPU", "GPU") or not colon or not number.isdigit():
            return f"{name!r} is not a device name; write GPU:0,GPU:1 (or CPU:0,CPU:1)"
    if len(set(name.upper() for name in values)) != len(values):
        return "names a device twice"
    return None


DISTRIBUTION = OptionGroup(
    name="distribution",
    title="Distribution",
    summary="Train on several devices or machines through tf.distribute; --batch_size is the global batch.",
    args=(
        Arg("strategy", Choice("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"),
            "default",
            "default: no tf.distribute strategy; one_device: one chosen device; mirrored: every local "
            "GPU (the CPU if there is none); multi_worker_mirrored: several machines, the cluster read "
            "from TF_CONFIG or from Slurm; tpu: a Cloud TPU."),
        Arg("devices", StrList(), (),
            "one_device and mirrored: the devices to use, e.g. GPU:0,GPU:1 (default: every GPU, or the "
            "CPU); CPU:0,CPU:1 splits the processor into logical devices.", _device_names),
        Arg("tpu", Str(optional=True), None,
            "tpu: the TPU's name or grpc:// address (default: found from the environment).",
            bookkeeping=True, applies=when("distribution_strategy", ("tpu",), "--distribution_strategy tpu")),
        Arg("slurm_port", Int(), 8888,
            "multi_worker_mirrored under Slurm: the first port of the workers on each node.",
            lambda value: None if 1 <= value <= 65535 else "must be a port number, 1 to 65535",
            bookkeeping=True, applies=when("distribution_strategy", ("multi_worker_mirrored",),
                                           "--distribution_strategy multi_worker_mirrored")),
    ),
)

OUTPUTS = OptionGroup(
    name="",
    title="What a run leaves behind, and using it later",
    summary="The saved model, its test score and exports; evaluate or predict with a finished run's model.",
    args=(
        Arg("mode", Choice("train", "evaluate", "predict"), "train",
            "train; evaluate: report the loss and metrics of the --model .keras file (or run directory) on "
            "--dataset; predict: write its predictions for --dataset to --predictions_file.", bookkeeping=True),
        Arg("save_model", Bool(), True,
            "Save the trained model as model.keras in the run's directory.", bookkeeping=True),
        Arg("evaluate_weights", Choice("last", "best"), "last",
            "The weights the test split is evaluated with: last (those training ends with) or best (the best "
            "checkpoint's, or those early stopping restored)."),
        Arg("export", StrList(), (),
            "Export the trained model for serving into export/<format>/ of the run's directory, comma-separated: "
            "tf_saved_model (a SavedModel), litert (model.tflite), onnx (model.onnx; needs pip install tf2onnx).",
            bookkeeping=True),
        Arg("predictions_file", Str(optional=True), None,
            "predict: where the predictions go, .csv (a row per input) or .npz.", bookkeeping=True),
    ),
)

GROUPS = (TRAINING, DATA, MODEL, *model_option_groups(), DISTRIBUTION, OUTPUTS)
