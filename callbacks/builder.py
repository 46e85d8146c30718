"""Turns every enabled callback group into a Keras callback.

Each module in this package that defines `FAMILY` is a callback family;
adding a callback means adding one such module. `ORDER` says which family's
callback runs first where it matters: the learning-rate changers before the
callbacks that log or save, so that what is logged is what was used.
"""

import functools
import importlib
import pkgutil

from kerasrun import callbacks
from kerasrun.core.keras_names import LEGACY_HOOKS
from kerasrun.core.plugins import call_plugin, load_plugin

ORDER = (
    # What changes the learning rate or stops the run comes first, so that
    # everything after it sees (and logs) the rate that was used.
    "learning_rate_scheduler",
    "reduce_lr",
    "terminate_on_nan",
    "early_stopping",
    # A trial's pruner stops the run like early stopping, on the same epoch's logs.
    "optuna",
    # EMA weights are swapped in before anything saves the model.
    "swap_ema_weights",
    "model_checkpoint",
    "backup_and_restore",
    # Loggers last: they record the epoch as the callbacks above left it.
    "csv_logger",
    "tensorboard",
    "remote_monitor",
    "mlflow",
    "lambda_callback",
)


@functools.cache
def families():
    """Returns every callback family, in the order their callbacks run."""
    found = {}
    for module_info in pkgutil.iter_modules(callbacks.__path__):
        module = importlib.import_module(f"{callbacks.__name__}.{module_info.name}")
        family = getattr(module, "FAMILY", None)
        if family is not None:
            found[family.name] = family
    ranked = [found.pop(name) for name in ORDER if name in found]
    return tuple(ranked + [found[name] for name in sorted(found)])


def enabled_families(config):
    """Returns the families that the resolved `config` switches on, in order."""
    return tuple(family for family in families() if config[family.name])


def build_callbacks(config, run, resumed=False):
    """Builds the Keras callbacks of every enabled family.

    Args:
        config: The resolved config (a mapping of flag names to values).
        run: The run's `RunPaths`, for default file locations.
        resumed: Whether the run resumes an interrupted one, which applies
            each family's `resume_overrides`. Defaults to False.

    Returns:
        A list of Keras callback instances, in running order, the user's own
        (--callbacks) last.
    """
    built_in = [
        callback_class(family)(**family.class_kwargs(
            {**family.values(config), **(family.resume_overrides if resumed else {})}, run, config))
        for family in enabled_families(config)
    ]
    return built_in + [call_plugin("--callbacks", spec, load_plugin("--callbacks", spec))
                       for spec in config["callbacks"]]


def family_of(callback):
    """Returns the family that builds callbacks of exactly `callback`'s class, or None (the user's own)."""
    return _families_by_class().get(type(callback))


@functools.cache
def _families_by_class():
    return {callback_class(family): family for family in families()}


def defines(callback, hook):
    """Whether `hook` of `callback` (a built callback, or its class) can do anything: not the empty default
    of keras.callbacks.Callback.

    A hook set on an instance (LambdaCallback does) counts as defined. Keras's
    default of a hook with a legacy name calls that one, so a callback that
    defines only the legacy hook defines the hook too.
    """
    import keras

    names = (hook, LEGACY_HOOKS[hook]) if hook in LEGACY_HOOKS else (hook,)
    return any(getattr(own, "__func__", own) is not getattr(keras.callbacks.Callback, name)
               for name in names for own in (getattr(callback, name, None),) if own is not None)


def callback_class(family):
    """Returns the class a family builds: our subclass where it names one, else the Keras class."""
    if family.subclass:
        module_name, _, class_name = family.subclass.partition(":")
        return getattr(importlib.import_module(module_name), class_name)
    import keras

    return getattr(keras.callbacks, family.keras_class)
