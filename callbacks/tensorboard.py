"""TensorBoard: write logs that `tensorboard --logdir tensorboard_logs` shows."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Bool, Int, IntList, IntOrChoice, Str, always, at_least

DEFAULT_LOG_DIR = "tensorboard_logs"


def _check(family, values, checker):
    _check_metadata(family, values["embeddings_metadata"], checker)
    profile = values["profile_batch"]
    pair = profile if isinstance(profile, tuple) else (profile, profile)
    if min(pair) < 0 or pair[0] > pair[1] or (isinstance(profile, tuple) and pair[0] == 0):
        checker.fail(family.flag_name("profile_batch"),
                     "must be 0 (off), a batch number, or 'start,stop' with 0 < start <= stop")


def _check_metadata(family, text, checker):
    if text is None or "=" not in text:
        return
    for item in text.split(","):
        layer, _, path = item.partition("=")
        if not layer.strip() or not path.strip():
            checker.fail(family.flag_name("embeddings_metadata"),
                         f"item {item!r} must look like layer=file (or give one file for all layers)")


def _metadata(text):
    """Reads `layer=file,layer=file` into a dict; a plain file name applies to all layers."""
    if text is None or "=" not in text:
        return text
    return dict(item.split("=", 1) for item in text.split(",") if item)


def _in_run_dir(values, run):
    values["log_dir"] = run.dir
    return values


def _adapt(values, run, config):
    values["embeddings_metadata"] = _metadata(values["embeddings_metadata"])
    return values


def _batch_needs(values):
    """TensorBoard's batch work: profiles count single batches, and summaries every update_freq batches."""
    if values["profile_batch"] not in (0, (0, 0), [0, 0]):
        return 1, "--tensorboard_profile_batch profiles single batches"
    update = values["update_freq"]
    if update == "epoch":
        return None
    if update == "batch" or update == 1:
        return 1, "--tensorboard_update_freq writes every batch"
    if values["write_steps_per_second"]:  # Keras times each call: its rate would be of calls, not of steps.
        return 1, "--tensorboard_write_steps_per_second with --tensorboard_update_freq times every batch"
    return update, f"--tensorboard_update_freq writes every {update} batches"


FAMILY = CallbackFamily(
    name="tensorboard",
    title="TensorBoard",
    summary="Write TensorBoard logs into <log_dir>/<run_name>, so runs appear side by side.",
    keras_class="TensorBoard",
    # Keras's skips no per-batch work with update_freq epoch, and its logged numbers stay in memory.
    subclass="kerasrun.callbacks.subclasses.tensorboard:TensorBoard",
    args=(
        Arg("log_dir", Str(), DEFAULT_LOG_DIR,
            "Root of the logs; each run writes into its own <log_dir>/<run_name> directory.",
            applies=always,  # The root of every run's directory, TensorBoard or not.
            bookkeeping=True),
        Arg("histogram_freq", Int(), 0, "Epochs between weight histograms (0: none).", at_least(0)),
        Arg("write_graph", Bool(), True, "Write the model graph."),
        Arg("write_images", Bool(), False, "Write layer weights as images."),
        Arg("write_steps_per_second", Bool(), False, "Log training steps per second."),
        Arg("update_freq", IntOrChoice("batch", "epoch", minimum=1), "epoch",
            "'epoch', 'batch', or an integer N to write losses and metrics every N batches."),
        Arg("profile_batch", IntList((1, 2)), 0,
            "Batch to profile, or 'start,stop' for a range (0: no profiling)."),
        Arg("embeddings_freq", Int(), 0, "Epochs between embedding projections (0: none).",
            at_least(0)),
        Arg("embeddings_metadata", Str(optional=True), None,
            "Metadata file for embedding layers, or 'layer=file,layer=file'.",
            applies=lambda values: None if values["tensorboard_embeddings_freq"] else
            "it applies with --tensorboard_embeddings_freq above 0"),
    ),
    check=_check,
    in_run_dir=_in_run_dir,
    adapt=_adapt,
    closes_on_interrupt=True,
    # The batches counted so far, which number batch summaries: a resumed run goes on from them.
    resume_state=("_global_train_batch", "_global_test_batch"),
    batch_needs=_batch_needs,
)
