"""The `--optimizer_*` options: what Keras 3's optimizers take besides the learning rate.

Every option is unset (None) by default, so the optimizer keeps Keras's own
default and only what the user sets is passed on. Which optimizer takes which
option is a table (`TAKEN_BY`), read off the optimizers' `__init__`
signatures of the Keras version in requirements.txt; a test compares it with
the installed Keras, so no Keras import is needed to check a command line.
"""

from kerasrun.core import keras_names
from kerasrun.core.groups import OptionGroup
from kerasrun.core.options import Arg, Bool, Float, Int, optional, positive

_EVERY = tuple(keras_names.OPTIMIZERS)
_ADAM_LIKE = ("adam", "adamw", "adamax", "lamb", "lion", "nadam", "schedule_free_adamw")

# Option -> the --optimizer values whose Keras class takes it as an argument.
TAKEN_BY = {
    "weight_decay": _EVERY,
    "clipnorm": _EVERY,
    "global_clipnorm": _EVERY,
    "clipvalue": _EVERY,
    "momentum": ("muon", "rmsprop", "sgd"),
    "nesterov": ("muon", "sgd"),
    "beta_1": _ADAM_LIKE,
    "beta_2": _ADAM_LIKE,
    "epsilon": ("adadelta", "adagrad", "adam", "adamax", "adamw", "lamb", "muon", "nadam", "rmsprop",
                "schedule_free_adamw"),
    "amsgrad": ("adam", "adamw"),
    "gradient_accumulation_steps": _EVERY,
}

# Keras's base optimizer accepts at most one way of clipping.
_CLIPPING = ("clipnorm", "global_clipnorm", "clipvalue")


def _non_negative(value):
    return None if value >= 0 else "must be at least 0"


def _from_zero_to_one(value):
    return None if 0 <= value <= 1 else "must be at least 0 and at most 1"


def _below_one(value):
    return None if 0 <= value < 1 else "must be at least 0 and below 1"


def _one_or_more(value):
    # Keras takes 2 or more ("must be an integer >= 2"); 1, no accumulation, is passed on as nothing,
    # so a sweep can include it (--grid optimizer_gradient_accumulation_steps=1,4).
    return None if value >= 1 else "must be at least 1 (1: no accumulation)"


def _muon_keeps_nesterov(values):
    # False is the flag's unset value, which leaves muon's default (True) in place.
    if values["optimizer"] == "muon" and values["optimizer_nesterov"] is False:
        return "muon keeps its Nesterov momentum (Keras's default): only True is passed on"
    return None


OPTIMIZER = OptionGroup(
    name="optimizer",
    title="Optimizer",
    summary="Arguments of the --optimizer's Keras class; unset ones keep Keras's defaults, and one the "
            "optimizer does not take is refused.",
    args=(
        Arg("weight_decay", Float(optional=True), None,
            "Decoupled weight decay: each step every weight shrinks by learning_rate * weight_decay "
            "(adamw's Keras default is 0.004, the others' none).", optional(_non_negative)),
        Arg("clipnorm", Float(optional=True), None,
            "Clip each weight's gradient to this norm.", optional(positive)),
        Arg("global_clipnorm", Float(optional=True), None,
            "Clip all gradients together to this global norm.", optional(positive)),
        Arg("clipvalue", Float(optional=True), None,
            "Clip every gradient element to [-clipvalue, clipvalue].", optional(positive)),
        Arg("momentum", Float(optional=True), None,
            "sgd, rmsprop, muon: momentum.", optional(_from_zero_to_one)),
        Arg("nesterov", Bool(), False,
            "sgd (with a momentum above 0): Nesterov momentum; muon uses it by default.",
            applies=lambda values: _muon_keeps_nesterov(values)),
        Arg("beta_1", Float(optional=True), None,
            "adam, adamw, adamax, nadam, lamb, lion, schedule_free_adamw: decay rate of the first moment.",
            optional(_below_one)),
        Arg("beta_2", Float(optional=True), None,
            "adam, adamw, adamax, nadam, lamb, lion, schedule_free_adamw: decay rate of the second moment.",
            optional(_below_one)),
        Arg("epsilon", Float(optional=True), None,
            "Small constant for numerical stability (not adafactor, ftrl, lion).", optional(positive)),
        Arg("amsgrad", Bool(), False, "adam, adamw: use the AMSGrad variant."),
        Arg("gradient_accumulation_steps", Int(optional=True), None,
            "Update the weights every N steps with the mean of their gradients (a batch N times larger "
            "in memory of one); not under the mirrored, multi_worker_mirrored or tpu strategies.",
            optional(_one_or_more)),
    ),
)

# Options whose unset value is False rather than None: set means True.
_FLAGS = ("nesterov", "amsgrad")
# Strategies under which Keras's gradient accumulation fails: its update is a cond holding the replicas'
# merge_call, which TensorFlow refuses ("`merge_call` called while defining a new graph"; tried with mirrored).
_NO_ACCUMULATION = ("mirrored", "multi_worker_mirrored", "tpu")


def optimizer_kwargs(values):
    """Returns the keyword arguments of the optimizer's class that the options set (not None, not False).

    Args:
        values: The resolved Config, or any mapping of flag values.
    """
    chosen = {}
    for arg in OPTIMIZER.args:
        value = values[OPTIMIZER.flag_name(arg.name)]
        if value is not None and value is not False and not (arg.name == "gradient_accumulation_steps" and value == 1):
            chosen[arg.name] = value
    return chosen


def check_optimizer(checker):
    """Refuses an option the --optimizer does not take, and combinations Keras refuses.

    Args:
        checker: The config's `Checker`.
    """
    values = checker.values
    optimizer = values["optimizer"]
    chosen = optimizer_kwargs(values)
    for name in chosen:
        if optimizer not in TAKEN_BY[name]:
            checker.fail(OPTIMIZER.flag_name(name),
                         f"{optimizer} does not take {name}; optimizers that do: {', '.join(TAKEN_BY[name])}")
    clipping = [name for name in _CLIPPING if name in chosen]
    if len(clipping) > 1:
        checker.fail(OPTIMIZER.flag_name(clipping[1]),
                     f"Keras clips gradients one way at a time; give only one of --optimizer_clipnorm, "
                     f"--optimizer_global_clipnorm, --optimizer_clipvalue (--{OPTIMIZER.flag_name(clipping[0])} "
                     "is set too)")
    if chosen.get("nesterov") and optimizer == "sgd" and not chosen.get("momentum"):
        checker.fail("optimizer_nesterov", "Nesterov momentum needs a momentum: add --optimizer_momentum, "
                                           "such as 0.9 (sgd's default is 0)")
    strategy = values["distribution_strategy"]
    if "gradient_accumulation_steps" in chosen and strategy in _NO_ACCUMULATION:
        checker.fail("optimizer_gradient_accumulation_steps",
                     f"Keras's gradient accumulation fails under --distribution_strategy {strategy} "
                     "(TensorFlow refuses its conditional update across replicas); use a larger --batch_size "
                     "instead")

