"""LearningRateScheduler: set the learning rate of every epoch by a schedule."""

from kerasrun.callbacks import schedules
from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Choice, Float, Int, Str, at_least
from kerasrun.core.plugins import is_plugin_spec, load_plugin


def _factor(value):
    return None if 0 < value < 1 else "must be above 0 and below 1 (the rate is multiplied by it)"


def _check(family, values, checker):
    flag = family.flag_name("schedule")
    schedule = values["schedule"]
    if schedule in schedules.SCHEDULES:
        _check_rates(family, values, checker)
        if checker.values["reduce_lr"]:
            checker.fail(flag, "sets the learning rate at the start of every epoch, undoing every reduction of "
                               "--reduce_lr True; use one of the two, or a schedule of your own (module:function) "
                               "that builds on the rate it is given")
        return
    if not is_plugin_spec(schedule):
        checker.fail(flag, f"must be one of {', '.join(schedules.SCHEDULES.names())}, "
                           "or module:function / path/file.py:function taking (epoch, lr)")
    checker.check_called_as(flag, schedule, "(epoch, lr)", "(epoch)")  # Keras falls back to schedule(epoch).


def _check_rates(family, values, checker):
    initial = checker.values["learning_rate"]
    uses_cosine = "cosine" in (values["schedule"], values["warmup_then"] if values["schedule"] == "warmup" else "")
    if uses_cosine and values["min_lr"] >= initial:
        checker.fail(family.flag_name("min_lr"), f"must be below --learning_rate ({initial}): the cosine falls to it")
    if values["schedule"] == "warmup" and values["warmup_start_lr"] >= initial:
        checker.fail(family.flag_name("warmup_start_lr"), f"must be below --learning_rate ({initial}): "
                                                          "the warm-up rises from it")


def _adapt(values, run, config):
    name = values["schedule"]
    if name in schedules.SCHEDULES:
        params = schedules.ScheduleParams(
            initial_lr=config["learning_rate"],
            epochs=config["epochs"],
            **{key: values[key] for key in _PARAM_NAMES},
        )
        values["schedule"] = schedules.as_keras_schedule(name, params)
    else:
        values["schedule"] = load_plugin("--learning_rate_scheduler_schedule", name)
    return values


def _for(*names):
    """Returns an `applies` for a setting of the built-in schedules `names` (after a warm-up too)."""
    def applies(values):
        schedule = values["learning_rate_scheduler_schedule"]
        used = {schedule} | ({values["learning_rate_scheduler_warmup_then"]} if schedule == "warmup" else set())
        if used & set(names):
            return None
        return f"it applies to the {' and '.join(names)} schedule{'s' if len(names) > 1 else ''}, not {schedule}"

    return applies


_PARAM_NAMES = ("start_epoch", "step_size", "factor", "decay_rate", "min_lr",
                "warmup_epochs", "warmup_start_lr", "warmup_then")

FAMILY = CallbackFamily(
    name="learning_rate_scheduler",
    title="LearningRateScheduler",
    summary="Set the learning rate of every epoch by a built-in schedule or your own function "
            "(formulas: callbacks/schedules.py).",
    keras_class="LearningRateScheduler",
    args=(
        Arg("schedule", Str(), "constant",
            "constant, step, exponential, cosine, warmup, or module:function / path/file.py:function "
            "taking (epoch, lr) and returning the rate."),
        Arg("verbose", Int(), 0, "1 prints the rate at the start of each epoch.", at_least(0)),
    ),
    settings=(
        Arg("start_epoch", Int(), 0, "Epochs that keep the initial rate before the schedule begins.",
            at_least(0), applies=_for(*schedules.SCHEDULES.names())),
        Arg("step_size", Int(), 10, "step: epochs between drops.", at_least(1), applies=_for("step")),
        Arg("factor", Float(), 0.5, "step: what the rate is multiplied by at each drop.", _factor,
            applies=_for("step")),
        Arg("decay_rate", Float(), 0.1,
            "exponential: the rate is multiplied by exp(-decay_rate) every epoch.", at_least(0),
            applies=_for("exponential")),
        Arg("min_lr", Float(), 0.0, "cosine: the rate reached in the last epoch.", at_least(0),
            applies=_for("cosine")),
        Arg("warmup_epochs", Int(), 5, "warmup: epochs of linear warm-up.", at_least(1), applies=_for("warmup")),
        Arg("warmup_start_lr", Float(), 0.0, "warmup: the rate of the first epoch.", at_least(0),
            applies=_for("warmup")),
        Arg("warmup_then", Choice(*schedules.DECAYS), "cosine", "warmup: the schedule after the warm-up.",
            applies=_for("warmup")),
    ),
    check=_check,
    adapt=_adapt,
    logged_keys=("learning_rate",),
)
