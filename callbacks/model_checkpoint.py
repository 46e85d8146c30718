"""ModelCheckpoint: save the model or its weights during training."""

import os
import re
import string

from kerasrun.callbacks.family import CallbackFamily, saves_every
from kerasrun.callbacks.monitor import MODE, check_monitor_direction, monitor_arg
from kerasrun.core.options import Arg, Bool, Float, Int, IntOrChoice, Str, at_least, optional, when
from kerasrun.keras_fixes import idle_batch_end_when_saving_each_epoch

# The best epoch's whole model, kept in the run's directory (--evaluate_weights best reads it).
BEST_MODEL_FILE = "best.keras"

_MONITOR = monitor_arg()
# What a placeholder of the file name can turn into: a counter, or a logged number in any format
# (1.25, -3e-05, 12%, nan, inf).
_COUNTER_TEXT = r"[-+ 0-9]+"
_NUMBER_TEXT = r"[-+ 0-9.eE%nafiNAFI]+"
_MODEL_SUFFIXES = (".keras", ".h5")
_WEIGHTS_SUFFIX = ".weights.h5"


def _check(family, values, checker):
    save_freq = values["save_freq"]
    flag = family.flag_name("filepath")
    path = values["filepath"]
    if path is not None:
        _check_suffix(flag, path, values["save_weights_only"], checker)
        _check_placeholders(flag, path, save_freq, checker)
        directory = os.path.dirname(path) or "."
        checker.check_creatable_dir(flag, directory, label=f"its directory {directory}")
        checker.writes(flag, path)
        _check_keep(family, values, checker)
        _check_not_best_model(flag, path, checker)
    # Keras reads the monitor only to keep the best, but decides its direction (mode auto) as
    # training starts whatever the options, and fails there on a quantity it cannot rank.
    if (values["save_best_only"] or values["initial_value_threshold"] is not None
            or values["monitor"] != _MONITOR.default):
        _check_logged(checker, family.flag_name("monitor"), values["monitor"], save_freq)
    check_monitor_direction(family, values, checker)


def _check_logged(checker, flag, key, save_freq, also=()):
    if isinstance(save_freq, int) and key.startswith("val_"):
        checker.fail(flag, f"{key!r} is not known between batches, where an integer "
                           "--model_checkpoint_save_freq saves; use a training quantity or save_freq epoch")
    checker.check_log_key(flag, key, also=also)


def _check_suffix(flag, path, weights_only, checker):
    if weights_only and not path.endswith(_WEIGHTS_SUFFIX):
        checker.fail(flag, f"with --model_checkpoint_save_weights_only the path must end in {_WEIGHTS_SUFFIX} "
                     "(Keras 3 writes no other weights format)")
    if not weights_only and path.endswith(_WEIGHTS_SUFFIX):
        checker.fail(flag, f"ends in {_WEIGHTS_SUFFIX} but would hold a whole model; add "
                           "--model_checkpoint_save_weights_only True, or end it in .keras")
    if not weights_only and not path.endswith(_MODEL_SUFFIXES):
        hint = ""
        if path.endswith((".hdf5", ".ckpt", ".tf")) or path.endswith(_WEIGHTS_SUFFIX[:-3]):
            hint = (f"; for weights only, end it in {_WEIGHTS_SUFFIX} and add "
                    "--model_checkpoint_save_weights_only True")
        checker.fail(flag, f"must end in .keras or .h5 (the formats Keras 3 saves a whole model in){hint}")


def _placeholders(path):
    """Returns the names of the placeholders in a filepath template; raises ValueError on a bad one."""
    return [field for _, field, _, _ in string.Formatter().parse(path) if field is not None]


def template_pattern(name):
    """Returns a regular expression matching the file names a template could produce, or None without placeholders.

    Args:
        name: A file name (no directory) that may hold placeholders like
            {epoch:02d} or {val_loss:.2f}.
    """
    parts, fields = [], 0
    for literal, field, _, _ in string.Formatter().parse(name):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(_COUNTER_TEXT if field in ("epoch", "batch") else _NUMBER_TEXT)
            fields += 1
    return re.compile("".join(parts)) if fields else None


def _keep_applies(values):
    """Why --model_checkpoint_keep has no effect: a filepath without placeholders is one file, overwritten."""
    path = values["model_checkpoint_filepath"]
    try:
        if path is None or _placeholders(os.path.basename(path)):
            return None
    except ValueError:
        return None  # the check names the bad template
    return ("it applies to a --model_checkpoint_filepath with placeholders such as {epoch:02d}; "
            "this one names one file, overwritten at each save")


def _check_keep(family, values, checker):
    # Only a file name's placeholders can be matched against the files of one directory.
    if values["keep"] is not None and _placeholders(os.path.dirname(values["filepath"])):
        checker.fail(family.flag_name("keep"), "needs the placeholders of --model_checkpoint_filepath in "
                                               "its file name, not in its directory")


def _check_not_best_model(flag, path, checker):
    # A run directory's best.keras is the runner's: checkpoints written there would replace the best model.
    run_dir = os.path.dirname(os.path.abspath(path))
    if (os.path.basename(path) == BEST_MODEL_FILE
            and os.path.dirname(run_dir) == os.path.abspath(checker.values["tensorboard_log_dir"])):
        checker.fail(flag, f"is a run directory's {BEST_MODEL_FILE}, where the runner keeps the best epoch's "
                           "model; give the checkpoints another name")


def _check_placeholders(flag, path, save_freq, checker):
    allowed = {"epoch"} | ({"batch"} if isinstance(save_freq, int) else set())
    try:
        fields = _placeholders(path)
    except ValueError as error:
        checker.fail(flag, f"is not a valid format string ({error})")
    for field in fields:
        if field in allowed:
            continue
        if not field:
            checker.fail(flag, "placeholders must be named, like {epoch:02d} or {val_loss:.2f}")
        _check_logged(checker, flag, field, save_freq, also=sorted(allowed))
    # Format once with stand-in values, so a bad format spec fails now, not after an epoch.
    try:
        path.format(**{**{field: 0.0 for field in fields}, "epoch": 1, "batch": 1})
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        checker.fail(flag, f"cannot be filled in ({error})")


def _in_run_dir(values, run):
    if values["filepath"] is None:
        suffix = _WEIGHTS_SUFFIX if values["save_weights_only"] else ".keras"
        values["filepath"] = run.path("checkpoints", "epoch{epoch:02d}" + suffix)
    return values


FAMILY = CallbackFamily(
    name="model_checkpoint",
    title="ModelCheckpoint",
    summary="Save the model (or only its weights) during training.",
    keras_class="ModelCheckpoint",
    args=(
        Arg("filepath", Str(optional=True), None,
            "Where to save; may hold {epoch:02d} and logged keys like {val_loss:.2f}. "
            "Must end in .keras or .h5 (.weights.h5 for weights only). "
            "Default: checkpoints/epoch{epoch:02d}.keras in the run's directory."),
        _MONITOR,
        Arg("verbose", Int(), 0, "1 prints a message on each save.", at_least(0)),
        Arg("save_best_only", Bool(), False,
            "Save only when the monitored quantity improves on the best so far."),
        MODE,
        Arg("save_weights_only", Bool(), False, "Save only the weights (.weights.h5)."),
        Arg("save_freq", IntOrChoice("epoch", minimum=1), "epoch",
            "'epoch' saves after every epoch; an integer N saves every N batches."),
        Arg("initial_value_threshold", Float(optional=True), None,
            "With save_best_only, the value the first saved model must beat (None: no threshold).",
            applies=when("model_checkpoint_save_best_only", (True,), "--model_checkpoint_save_best_only True")),
    ),
    # Keras writes in place (a kill leaves a torn file) and keeps every file; see the subclass.
    subclass="kerasrun.callbacks.subclasses.model_checkpoint:ModelCheckpoint",
    subclass_args=(
        Arg("keep", Int(optional=True), None,
            "Keep only the N newest checkpoint files this run wrote (with save_best_only: the N best), "
            "deleting older ones once the new one is in place (None: keep all).",
            optional(at_least(1)), applies=_keep_applies),
    ),
    run_kwargs=lambda values, run, config: {"best_model_path": run.path(BEST_MODEL_FILE)},
    check=_check,
    in_run_dir=_in_run_dir,
    worker_overrides={"filepath": None},
    # best: save_best_only's; best_model_value: best.keras's; started: which files count for keep; the last two
    # count batches towards a save every save_freq batches, so that a resumed run saves at the same batches.
    resume_state=("best", "best_model_value", "started", "_last_batch_seen", "_batches_seen_since_last_saving"),
    idle_hooks=idle_batch_end_when_saving_each_epoch,
    batch_needs=saves_every("--model_checkpoint_save_freq"),
)
