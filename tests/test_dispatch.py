"""runner/dispatch.py: Keras gets the run's callbacks as one, and every hook still runs as it would."""

import collections
import json
import os

import keras
import numpy as np

from kerasrun.callbacks.subclasses.backup_and_restore import BackupAndRestore
from kerasrun.callbacks.subclasses.model_checkpoint import ModelCheckpoint
from kerasrun.callbacks.subclasses.tensorboard import TensorBoard
from kerasrun.runner.dispatch import HOOKS, combined, idle_hooks


class Named(keras.callbacks.Callback):
    """A test callback with a name, recording into a shared list; defines no hook itself."""

    def __init__(self, name, calls):
        super().__init__()
        self.name, self.calls = name, calls


class Recorder(Named):
    """Records every hook call it defines, with the epoch or batch number, into a shared list."""

    def on_train_begin(self, logs=None):
        self.calls.append((self.name, "on_train_begin", None))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append((self.name, "on_epoch_end", epoch, sorted(logs)))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append((self.name, "on_train_batch_end", batch, sorted(logs)))

    def on_test_batch_begin(self, batch, logs=None):
        self.calls.append((self.name, "on_test_batch_begin", batch))


class EpochsOnly(Named):
    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append((self.name, "on_epoch_begin", epoch, self.params["epochs"], self.model is not None))


class LegacyBatchEnd(Named):
    """Defines only the old name, which Keras's default on_train_batch_end calls."""

    def on_batch_end(self, batch, logs=None):
        self.calls.append((self.name, "on_batch_end", batch))


class LateHook(Named):
    """Sets its batch hook on the instance only when training begins."""

    def on_train_begin(self, logs=None):
        self.on_train_batch_begin = lambda batch, logs=None: self.calls.append((self.name, batch))


def tiny_fit(callbacks, epochs):
    """Trains a tiny model on 40 examples, 3 batches an epoch; returns fit's History and the model."""
    keras.utils.set_random_seed(1)
    x, y = np.random.rand(40, 3).astype("float32"), np.random.rand(40, 1).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(x, y, batch_size=16, epochs=epochs, validation_data=(x[:8], y[:8]), verbose=0,
                        callbacks=callbacks)
    return history, model


def run(wrap):
    """Trains a tiny model for up to 5 epochs with the callbacks given as `wrap` makes them; returns the calls."""
    calls = []
    callbacks = [Recorder("recorder", calls), EpochsOnly("epochs", calls), LegacyBatchEnd("legacy", calls),
                 LateHook("late", calls),
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(("lambda", epoch))),
                 keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1)]
    history, model = tiny_fit(wrap(callbacks), epochs=5)
    return calls, history, model


def test_every_hook_runs_as_with_the_plain_list():
    plain_calls, plain_history, _ = run(list)
    calls, history, model = run(combined)
    assert calls == plain_calls
    # 3 batches of each of 2 epochs (EarlyStopping ends it after the second), and validation's batches.
    assert [c[2] for c in calls if c[1] == "on_train_batch_end"] == [0, 1, 2, 0, 1, 2]
    assert [c[2] for c in calls if c[0] == "legacy"] == [0, 1, 2, 0, 1, 2]
    assert [c[1] for c in calls if c[0] == "late"] == [0, 1, 2, 0, 1, 2]
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


def count_calls(monkeypatch, cls, hook, counts):
    """Makes `cls.hook` count its calls per instance in `counts`, then do what it did."""
    original = getattr(cls, hook)

    def counted(self, *args, **kwargs):
        counts[id(self), hook] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, hook, counted)


def test_batch_hooks_with_nothing_to_do_are_not_called(tmp_path, monkeypatch):
    counts = collections.Counter()
    for cls, hook in [(keras.callbacks.ModelCheckpoint, "on_train_batch_end"),
                      (keras.callbacks.BackupAndRestore, "on_train_batch_end"),
                      (TensorBoard, "on_train_batch_begin"), (TensorBoard, "on_train_batch_end")]:
        count_calls(monkeypatch, cls, hook, counts)
    once_an_epoch = ModelCheckpoint(str(tmp_path / "epoch{epoch}.keras"))
    every_2 = ModelCheckpoint(str(tmp_path / "batch{epoch}-{batch}.keras"), save_freq=2)
    backup = BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)  # The class runs build.
    board = TensorBoard(str(tmp_path / "logs"))
    batched_board = TensorBoard(str(tmp_path / "batched"), update_freq="batch")
    tiny_fit(combined([once_an_epoch, every_2, backup, board, batched_board]), epochs=3)

    # Saving once an epoch: their batch hooks only count batches, and are never called.
    assert counts[id(once_an_epoch), "on_train_batch_end"] == counts[id(backup), "on_train_batch_end"] == 0
    with open(tmp_path / "backup" / "training_metadata.json") as metadata:
        assert json.load(metadata)["epoch"] == 3  # backed up at the end of each epoch, the last one included
    assert {f"epoch{n}.keras" for n in (1, 2, 3)} <= set(os.listdir(tmp_path))
    # Saving every 2 batches: called for each of the 9 batches, and saved mid-epoch.
    assert counts[id(every_2), "on_train_batch_end"] == 9
    assert len([name for name in os.listdir(tmp_path) if name.startswith("batch") and name.endswith(".keras")]) == 4
    # TensorBoard with epoch summaries: called for the first epoch's batches (the graph is
    # written after the first), then no more; with batch summaries, for every batch.
    assert counts[id(board), "on_train_batch_begin"] == counts[id(board), "on_train_batch_end"] == 3
    assert counts[id(batched_board), "on_train_batch_end"] == 9


def test_which_hooks_are_idle():
    checkpoint = ModelCheckpoint("m.keras")
    assert idle_hooks(checkpoint) == {"on_train_batch_end"}
    assert idle_hooks(ModelCheckpoint("m.keras", save_freq=5)) == set()
    assert idle_hooks(BackupAndRestore("backup")) == {"on_train_batch_end"}
    assert idle_hooks(BackupAndRestore("backup", save_freq=5)) == set()

    class Overriding(ModelCheckpoint):
        def on_train_batch_end(self, batch, logs=None):
            pass

    assert idle_hooks(Overriding("m.keras")) == set()
    checkpoint.on_train_batch_end = lambda batch, logs=None: None  # set on the instance: it must run
    assert idle_hooks(checkpoint) == set()
    assert idle_hooks(keras.callbacks.EarlyStopping()) == set()
    # TensorBoard before it has the model: its graph is still to be written after the first batch.
    assert idle_hooks(TensorBoard("logs")) == {"on_test_batch_begin"}
    assert idle_hooks(TensorBoard("logs", update_freq="batch")) == set()


def test_keras_runs_the_batch_end_hooks_on_its_own_thread_only_when_none_has_work(tmp_path, monkeypatch):
    from keras.src import backend

    from kerasrun.runner.interrupts import GracefulStop
    from kerasrun.runner.resume import EpochLog, callback_state_keeper

    class AfterEachBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    def asynchronous(callbacks):
        """Whether Keras's CallbackList runs the train batch-end hooks on its thread."""
        return keras.callbacks.CallbackList(combined(callbacks))._async_train

    # Keras does so on the backends it calls thread-safe: JAX's, not TensorFlow's (these tests run on).
    monkeypatch.setattr(backend, "IS_THREAD_SAFE", True)

    # The run's own callbacks and the savers saving once an epoch (the keeper of state with them): nothing to wait
    # for after a step.
    backup = BackupAndRestore(str(tmp_path / "backup"))
    quiet = [GracefulStop().callback(EpochLog()), ModelCheckpoint(str(tmp_path / "m.keras")), backup,
             Named("epochs", []), callback_state_keeper([backup], EpochLog())]
    assert combined(quiet)[0].async_safe and asynchronous(quiet)
    # A batch-end hook with work (a user's, a checkpoint every 2 batches) keeps them in line.
    assert not asynchronous([*quiet, AfterEachBatch()])
    assert not asynchronous([ModelCheckpoint(str(tmp_path / "b.keras"), save_freq=2)])
