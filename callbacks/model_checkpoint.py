"""ModelCheckpoint: save the model or its weights during training."""

import os
import string

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.callbacks.monitor import MODE, check_monitor_direction, monitor_arg
from kerasrun.core.options import Arg, Bool, Float, Int, IntOrChoice, Str, at_least, when
from kerasrun.keras_fixes import idle_batch_end_when_saving_each_epoch

_MONITOR = monitor_arg()
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


def _check_placeholders(flag, path, save_freq, checker):
    allowed = {"epoch"} | ({"batch"} if isinstance(save_freq, int) else set())
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(path) if field is not None]
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
    check=_check,
    in_run_dir=_in_run_dir,
    worker_overrides={"filepath": None},
    resume_state=("best",),
    idle_hooks=idle_batch_end_when_saving_each_epoch,
)
