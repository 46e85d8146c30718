"""Built-in learning-rate schedules for `--learning_rate_scheduler_schedule`.

Every built-in computes the rate from the initial rate and the epoch alone
(never from the rate of the previous epoch), so a resumed run continues the
same curve. All of them hold the initial rate lr0 for the first
`start_epoch` epochs; `t` counts the epochs after that (0, 1, ...):

    constant     lr0
    step         lr0 * factor ** floor(t / step_size)
    exponential  lr0 * exp(-decay_rate * (t + 1))   multiplied by exp(-decay_rate) every epoch
                                                     after the hold, as in the Keras docs' example
    cosine       min_lr + (lr0 - min_lr) * (1 + cos(pi * t / (epochs - start_epoch - 1))) / 2,
                 from lr0 down to min_lr in the last epoch
    warmup       after the hold, linear from warmup_start_lr towards lr0 over warmup_epochs
                 epochs, then `warmup_then` as if training started after the warm-up
"""

import dataclasses
import math

from kerasrun.core.registry import Registry

SCHEDULES = Registry("schedule", "--learning_rate_scheduler_schedule")
DECAYS = ("constant", "step", "exponential", "cosine")


@dataclasses.dataclass(frozen=True)
class ScheduleParams:
    """What a built-in schedule needs; see the module docstring for the formulas."""

    initial_lr: float
    epochs: int
    start_epoch: int = 0
    step_size: int = 10
    factor: float = 0.5
    decay_rate: float = 0.1
    min_lr: float = 0.0
    warmup_epochs: int = 5
    warmup_start_lr: float = 0.0
    warmup_then: str = "cosine"


def rate_at(name, params, epoch):
    """Returns the learning rate of `epoch` (0-based) under the built-in schedule `name`."""
    return SCHEDULES.get(name)(params, epoch)


def as_keras_schedule(name, params):
    """Returns `schedule(epoch, lr)` as `keras.callbacks.LearningRateScheduler` calls it."""
    return lambda epoch, lr: rate_at(name, params, epoch)


def _register_decay(name):
    """Registers a formula of `t` (epochs after the hold) as a schedule that first holds lr0."""

    def register(formula):
        def schedule(params, epoch):
            t = epoch - params.start_epoch
            return params.initial_lr if t < 0 else formula(params, t)

        SCHEDULES.register(name)(schedule)
        return formula

    return register


@_register_decay("constant")
def _constant(params, t):
    return params.initial_lr


@_register_decay("step")
def _step(params, t):
    return params.initial_lr * params.factor ** (t // params.step_size)


@_register_decay("exponential")
def _exponential(params, t):
    return params.initial_lr * math.exp(-params.decay_rate * (t + 1))


@_register_decay("cosine")
def _cosine(params, t):
    progress = min(t / max(params.epochs - params.start_epoch - 1, 1), 1.0)
    return params.min_lr + (params.initial_lr - params.min_lr) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULES.register("warmup")
def _warmup(params, epoch):
    t = epoch - params.start_epoch
    if t < 0:
        return params.initial_lr
    if t < params.warmup_epochs:
        fraction = t / params.warmup_epochs
        return params.warmup_start_lr + (params.initial_lr - params.warmup_start_lr) * fraction
    # Then the chosen decay, as if training had started when the warm-up ended.
    done = params.start_epoch + params.warmup_epochs
    after = dataclasses.replace(params, epochs=max(params.epochs - done, 1), start_epoch=0)
    return rate_at(params.warmup_then, after, epoch - done)
