"""How many training steps run per call into the backend: `--steps_per_execution`, and what `auto` picks.

Each call from Keras's `fit` into the backend runs `steps_per_execution`
steps; the batch hooks of the callbacks run once per call, given the last
step's number and logs. One step per call pays the backend's dispatch cost
(and the callbacks' batch hooks) on every batch, which on small models costs
more than the step's own arithmetic. `auto` runs as many steps per call as
helps, but never so many that a callback misses a batch it acts on:

- a callback that acts on every batch (TerminateOnNaN, TensorBoard's
  batch summaries and profile, LambdaCallback's batch hooks, a --callbacks
  class that defines a batch hook) gets one step per call;
- one that acts every N batches (a save_freq, an update_freq), counted over
  the whole run, gets a number of steps that divides N and the steps of an
  epoch, so that every call ends on the batches it acts on;
- otherwise the number is a fraction of the epoch's steps, so that the
  progress bar still moves, and at most `LARGEST` (the gain beyond is lost in
  the noise, while Ctrl-C and SIGTERM, which stop the run between calls, would
  wait longer).

Callbacks that act on epochs only (early stopping, the schedules, the
optuna family's pruner, the loggers) do not constrain it.
"""

import collections
import functools
import math

from kerasrun.callbacks.builder import defines, enabled_families
from kerasrun.core.keras_names import CALLBACK_HOOKS
from kerasrun.core.plugins import load_plugin
from kerasrun.keras_fixes import ONE_STEP_PER_CALL, ONE_STEP_STRATEGIES

# The most steps per call auto picks, and the fewest calls an epoch it leaves (the progress bar's updates).
LARGEST = 32
CALLS_PER_EPOCH = 10

# Hooks Keras calls once per call into the backend: in training, validation and prediction.
# (builder.defines counts the legacy names too.)
BATCH_HOOKS = tuple(hook for hook in CALLBACK_HOOKS if "batch" in hook)

# The steps per call a run uses and why: `steps` (an int), `line` (what the run prints).
Choice = collections.namedtuple("Choice", "steps line")


def choose(config, steps_per_epoch, own_callbacks=()):
    """Returns the Choice of steps per call for a run of `config`.

    Args:
        config: The resolved Config.
        steps_per_epoch: Training steps of an epoch (batches of the training
            split), or None when not known yet (--dry_run of data it leaves
            to the run).
        own_callbacks: The user's --callbacks, as classes or built instances.
    """
    asked = config.steps_per_execution
    if asked != "auto":
        return Choice(asked, f"steps per execution: {asked} (--steps_per_execution)")
    if config.backend == "tensorflow" and config.distribution_strategy in ONE_STEP_STRATEGIES:
        return Choice(1, f"steps per execution: 1 (auto: {ONE_STEP_PER_CALL})")
    needs = [*(need for family in enabled_families(config) for need in _family_need(family, config)),
             *(need for callback in own_callbacks for need in _own_need(callback))]
    every = next((why for steps, why in needs if steps == 1), None)
    if every:
        return Choice(1, f"steps per execution: 1 (auto: {every})")
    if steps_per_epoch is None:
        return Choice(None, f"steps per execution: auto, chosen once the data is loaded (at most {LARGEST})")
    bound = max(1, min(LARGEST, steps_per_epoch // CALLS_PER_EPOCH))
    if not needs:
        return Choice(bound, f"steps per execution: {bound} (auto: {_bound_reason(bound, steps_per_epoch)})")
    common = functools.reduce(math.gcd, [steps for steps, _ in needs], steps_per_epoch)
    steps = max(divisor for divisor in range(1, bound + 1) if common % divisor == 0)
    whys = "; ".join(why for _, why in needs)
    return Choice(steps, f"steps per execution: {steps} (auto: the largest number up to {bound} that divides "
                         f"the epoch's {steps_per_epoch} steps and the batches callbacks act on: {whys})")


def own_classes(config):
    """Returns the classes of the user's --callbacks (imported, not built): what --dry_run judges them by."""
    return [load_plugin("--callbacks", spec) for spec in config.callbacks]


def _bound_reason(bound, steps_per_epoch):
    if bound == LARGEST:
        return f"the most auto runs per call; an epoch has {steps_per_epoch} steps"
    return f"a tenth of the epoch's {steps_per_epoch} steps, so that progress shows"


def _family_need(family, config):
    if family.batch_needs is None:
        return ()
    need = family.batch_needs(family.values(config))
    return () if need is None else (need,)


def _own_need(callback):
    """The need of a user's callback (a class, or an instance): every batch, when it defines a batch hook."""
    hook = next((hook for hook in BATCH_HOOKS if defines(callback, hook)), None)
    name = callback.__name__ if isinstance(callback, type) else type(callback).__name__
    return () if hook is None else ((1, f"--callbacks {name} defines {hook}"),)
