"""`--backend jax`: what cannot work on JAX, refused before anything runs, naming what to use instead.

Everything else works on both backends: the data (in-memory arrays are fed
to JAX as NumPy batches, files and tables through tf.data), every callback,
exact resume, determinism, mixed precision, the image cache, plug-ins,
`--export tf_saved_model` and `--distribution_strategy mirrored` (through
`keras.distribution.DataParallel`).
"""

import sys

from kerasrun.core.errors import UsageError

# What --distribution_strategy takes on JAX, and what the others need instead.
JAX_STRATEGIES = ("default", "mirrored")
_STRATEGY_INSTEAD = {
    "one_device": "JAX trains on its first device already (choose the GPU with CUDA_VISIBLE_DEVICES); use "
                  "--distribution_strategy default, or --backend tensorflow",
    "multi_worker_mirrored": "several processes are not supported on JAX yet; use --backend tensorflow",
    "tpu": "use --backend tensorflow (tf.distribute's TPUStrategy)",
}
# Keras's TensorBoard profiles JAX only on Python 3.12 or later; on older ones it warns and writes nothing.
_JAX_PROFILES_FROM = (3, 12)


def check_backend(checker, version=sys.version_info):
    """Refuses, under --backend jax, the options that cannot work there.

    Args:
        checker: The config's Checker (cli/config.py).
        version: The Python version, for the profiler's (a parameter for tests).

    Raises:
        UsageError: naming the option and what to use instead.
    """
    values = checker.values
    if values["backend"] != "jax":
        return
    strategy = values["distribution_strategy"]
    if strategy not in JAX_STRATEGIES:
        checker.fail("distribution_strategy", f"{strategy} does not run on --backend jax: {_STRATEGY_INSTEAD[strategy]}")
    if values["tensorboard"] and values["tensorboard_profile_batch"] != 0 and tuple(version[:2]) < _JAX_PROFILES_FROM:
        checker.fail("tensorboard_profile_batch",
                     f"Keras profiles training on --backend jax only on Python 3.12 or later (this is "
                     f"{version[0]}.{version[1]}), else it writes no profile; leave it 0, or profile with "
                     "--backend tensorflow")
    for threads in ("intra_op_threads", "inter_op_threads"):
        if values[threads]:
            checker.fail(threads, "sets TensorFlow's thread pools, and on --backend jax the steps run in XLA, "
                                  "which it does not set; leave it 0, or use --backend tensorflow")
    if values["mode"] == "train":
        if "litert" in values["export"]:
            checker.fail("export", "litert needs the model on TensorFlow (Keras's LiteRT export refuses JAX); "
                                   "export tf_saved_model, or use --backend tensorflow")
        if "onnx" in values["export"]:
            checker.fail("export", "onnx on --backend jax goes through jax2onnx, not tf2onnx, which the runner "
                                   "does not support; export tf_saved_model, or use --backend tensorflow")
        if values["dataset_categorical_columns"]:
            checker.fail("dataset_categorical_columns", _TABLE_CATEGORIES)


_TABLE_CATEGORIES = ("a table's category columns (text, or integer codes) are looked up by Keras's FeatureSpace in "
                     "TensorFlow ops, which JAX cannot run; use --backend tensorflow (tables of numbers train on jax)")


def check_table(backend, table, label="--backend"):
    """Refuses, on JAX, a table (a CSV file's {column: kind}) with category columns: found once the data is read.

    Raises:
        UsageError: naming `label` and the columns.
    """
    from kerasrun.datasets.tabular import NUMERIC

    if backend != "jax" or not table:
        return
    categories = [column for column, kind in table.items() if kind != NUMERIC]
    if categories:
        raise UsageError(f"{label}=jax: columns {', '.join(categories[:3])}{', ...' if len(categories) > 3 else ''}: "
                         f"{_TABLE_CATEGORIES}")
