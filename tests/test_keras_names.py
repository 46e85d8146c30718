"""The names checked before Keras loads are the names Keras accepts."""

import keras
import pytest

from kerasrun.core import keras_names


@pytest.mark.parametrize("name, class_name", sorted(keras_names.OPTIMIZERS.items()))
def test_optimizer_names_build(name, class_name):
    optimizer = getattr(keras.optimizers, class_name)(learning_rate=0.01)
    assert isinstance(optimizer, keras.optimizers.Optimizer)


def test_every_keras_optimizer_that_takes_only_a_learning_rate_is_offered():
    # Wrappers need another optimizer (ScheduleFreeAdamW's run: tests/test_optimizer_options.py).
    excluded = {"Optimizer", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"}
    offered = set(keras_names.OPTIMIZERS.values())
    available = {name for name in dir(keras.optimizers) if name[0].isupper() and name not in excluded}
    available = {name for name in available if isinstance(getattr(keras.optimizers, name), type)}
    assert available <= offered, available - offered


def test_the_hooks_are_every_hook_of_keras_callback():
    defined = {name for name in dir(keras.callbacks.Callback) if name.startswith("on_")}
    assert defined == set(keras_names.CALLBACK_HOOKS) | set(keras_names.LEGACY_HOOKS.values())
