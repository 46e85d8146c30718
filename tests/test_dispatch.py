"""runner/dispatch.py: Keras gets the run's callbacks as one, and every hook still runs as it would."""

import keras
import numpy as np

from runner.dispatch import HOOKS, combined


class Recorder(keras.callbacks.Callback):
    """Records every hook call it defines, with the epoch or batch number, into a shared list."""

    def __init__(self, name, calls):
        super().__init__()
        self.name, self.calls = name, calls

    def on_train_begin(self, logs=None):
        self.calls.append((self.name, "on_train_begin", None))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append((self.name, "on_epoch_end", epoch, sorted(logs)))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append((self.name, "on_train_batch_end", batch, sorted(logs)))

    def on_test_batch_begin(self, batch, logs=None):
        self.calls.append((self.name, "on_test_batch_begin", batch))


class EpochsOnly(keras.callbacks.Callback):
    def __init__(self, name, calls):
        super().__init__()
        self.name, self.calls = name, calls

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append((self.name, "on_epoch_begin", epoch, self.params["epochs"], self.model is not None))


class LegacyBatchEnd(keras.callbacks.Callback):
    """Defines only the old name, which Keras's default on_train_batch_end calls."""

    def __init__(self, name, calls):
        super().__init__()
        self.name, self.calls = name, calls

    def on_batch_end(self, batch, logs=None):
        self.calls.append((self.name, "on_batch_end", batch))


def run(wrap):
    """Trains a tiny model for 3 epochs with the callbacks given as `wrap` makes them; returns the calls."""
    keras.utils.set_random_seed(1)
    calls = []
    x, y = np.random.rand(40, 3).astype("float32"), np.random.rand(40, 1).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    callbacks = [Recorder("recorder", calls), EpochsOnly("epochs", calls), LegacyBatchEnd("legacy", calls),
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(("lambda", epoch))),
                 keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1)]
    history = model.fit(x, y, batch_size=16, epochs=5, validation_data=(x[:8], y[:8]), verbose=0,
                        callbacks=wrap(callbacks))
    return calls, history, model


def test_every_hook_runs_as_with_the_plain_list():
    plain_calls, plain_history, _ = run(list)
    calls, history, model = run(combined)
    assert calls == plain_calls
    # 3 batches of each of 2 epochs (EarlyStopping ends it after the second), and validation's batches.
    assert [c[2] for c in calls if c[1] == "on_train_batch_end"] == [0, 1, 2, 0, 1, 2]
    assert [c[2] for c in calls if c[0] == "legacy"] == [0, 1, 2, 0, 1, 2]
    assert [c[2] for c in calls if c[1] == "on_test_batch_begin"] == [0, 0]
    assert ("epochs", "on_epoch_begin", 1, 5, True) in calls  # params and model reached the callback
    assert [c for c in calls if c[0] == "lambda"] == [("lambda", 0), ("lambda", 1)]
    # Keras's History is still the model's, and the one fit returns.
    assert model.history is history and history.epoch == plain_history.epoch == [0, 1]


def test_keras_calls_one_callback_and_it_calls_only_hooks_that_do_something():
    calls = []
    recorder, epochs_only = Recorder("recorder", calls), EpochsOnly("epochs", calls)
    history = keras.callbacks.History()
    given = combined([recorder, history, epochs_only])
    assert len(given) == 2 and given[1] is history  # Keras must find the History itself
    one = given[0]
    assert one.callbacks == [recorder, epochs_only]
    assert one._calls["on_train_batch_end"] == [recorder]
    assert one._calls["on_train_batch_begin"] == []
    assert one._calls["on_epoch_begin"] == [epochs_only]
    assert set(one._calls) == set(HOOKS)
    assert combined([]) == []
