"""The names checked before Keras loads are the names Keras accepts."""

import keras
import numpy as np
import pytest

from kerasrun.core import keras_names


@pytest.mark.parametrize("name, class_name", sorted(keras_names.OPTIMIZERS.items()))
def test_optimizer_names_build(name, class_name):
    optimizer = getattr(keras.optimizers, class_name)(learning_rate=0.01)
    assert isinstance(optimizer, keras.optimizers.Optimizer)


@pytest.mark.parametrize("name", keras_names.LOSSES)
def test_loss_names_resolve(name):
    assert callable(keras.losses.get(name))


@pytest.mark.parametrize("name", [name for name in keras_names.METRICS if name not in ("accuracy", "acc")])
def test_metric_names_resolve(name):
    assert callable(keras.metrics.get(name))


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


@pytest.mark.parametrize("name, direction", sorted(keras_names.METRIC_DIRECTIONS.items()))
def test_metric_directions_are_the_ones_keras_gives_the_metric_it_compiles(name, direction):
    from keras.src.trainers.compile_utils import get_metric

    metric = get_metric(name, keras.KerasTensor((None, 3)), keras.KerasTensor((None, 3)))
    assert metric._direction == direction


def test_direction_decides_as_kerass_monitoring_callbacks_do():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    compiled = ["accuracy", "mse", "auc", "categorical_crossentropy"]
    model.compile(loss="categorical_crossentropy", metrics=compiled)
    model.fit(np.zeros((4, 3)), np.eye(2)[[0, 1, 0, 1]], verbose=0)
    directions = {name: keras_names.METRIC_DIRECTIONS[name] for name in compiled}
    for monitor in ["loss", "val_loss", "accuracy", "val_mse", "auc", "val_categorical_crossentropy"]:
        stopping = keras.callbacks.EarlyStopping(monitor=monitor)
        stopping.set_model(model)
        stopping._set_monitor_op()
        keras_choice = "min" if stopping.monitor_op(0.0, 1.0) else "max"
        assert keras_names.direction(monitor, directions) == keras_choice, monitor
    assert keras_names.direction("learning_rate", directions) is None  # Keras refuses mode auto for it
