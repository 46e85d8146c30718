"""The work-arounds of keras_fixes/: same files, no lasting cost per save; and what they rely on is still there."""

import json
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrun.keras_fixes import saving as keras_fixes
from kerasrun.keras_fixes.saving import cache_saving_skipsets


def small_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.1),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.ones((8, 4)), np.zeros(8), epochs=1, verbose=0)  # builds the optimizer's variables
    return model


def variables_created_by(function):
    """Returns the names of the TensorFlow variables that `function()` creates."""
    names = []

    def record(next_creator, **kwargs):
        names.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(record):
        function()
    return names


def h5_contents(path):
    """Every group's and dataset's path with its attributes, and each dataset's values."""
    contents = {}

    def visit(name, item):
        values = item[()].tolist() if isinstance(item, h5py.Dataset) else None
        contents[name] = (dict(item.attrs), values)

    with h5py.File(path, "r") as stream:
        stream.visititems(visit)
    return contents


def test_saving_weights_creates_no_variables_once_the_skipsets_are_cached(tmp_path):
    model = small_model()
    cache_saving_skipsets()
    path = str(tmp_path / "latest.weights.h5")
    # Each variable created (a throwaway optimizer's, under a new name) stays in
    # TensorFlow's kernel cache for good.
    assert variables_created_by(lambda: model.save_weights(path)) == []
    assert variables_created_by(lambda: model.save_weights(path)) == []


def forget_cached_skipsets():
    """Brings back Keras's own state, where every save computes the skipsets again."""
    from keras.src.backend.common import global_state

    for kind in keras_fixes._SAVEABLE_TYPES:
        global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", None)


def test_the_saved_weights_are_the_same_file_as_without_it(tmp_path):
    model = small_model()
    forget_cached_skipsets()
    model.save_weights(str(tmp_path / "plain.weights.h5"))
    cache_saving_skipsets()
    model.save_weights(str(tmp_path / "fixed.weights.h5"))
    fixed = h5_contents(tmp_path / "fixed.weights.h5")
    assert fixed == h5_contents(tmp_path / "plain.weights.h5")
    assert any("optimizer" in name for name in fixed)  # the optimizer's state is in it too
    restored = small_model()
    restored.load_weights(str(tmp_path / "fixed.weights.h5"))
    for saved, loaded in zip(model.weights + model.optimizer.variables,
                             restored.weights + restored.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


def test_the_scalar_cache_is_emptied_at_every_epoch_end(monkeypatch):
    from tensorflow.python import pywrap_tfe

    emptied = []
    real_empty = pywrap_tfe.TFE_ClearScalarCache
    monkeypatch.setattr(pywrap_tfe, "TFE_ClearScalarCache", lambda: (emptied.append(1), real_empty())[1])
    emptier = keras_fixes.scalar_cache_emptier()
    assert emptier is not None, "TensorFlow no longer has TFE_ClearScalarCache: check keras_fixes/saving.py"
    model = small_model()
    history = model.fit(np.ones((8, 4)), np.zeros(8), epochs=3, verbose=0, callbacks=[emptier])
    assert emptied == [1, 1, 1]
    assert len(history.history["loss"]) == 3  # training went on as before
    assert float(tf.constant(0.25) + 0.5) == 0.75  # and numbers still convert after it


def test_the_emptier_runs_after_the_users_callbacks():
    from kerasrun.runner.fit import assemble_callbacks
    from kerasrun.runner.interrupts import GracefulStop
    from kerasrun.runner.resume import EpochLog

    class Epoch:
        def callback(self):
            return keras.callbacks.Callback()

    users = [keras.callbacks.EarlyStopping(), keras.callbacks.TerminateOnNaN()]
    names = [type(callback).__name__ for callback in
             assemble_callbacks(users, Epoch(), GracefulStop(), EpochLog())]
    assert names.index("EmptyScalarCache") > names.index("TerminateOnNaN")


def test_the_installed_keras_is_the_one_the_workarounds_were_written_for():
    from kerasrun import keras_fixes as fixes

    assert keras.version().startswith(fixes.WRITTEN_FOR + "."), (
        f"Keras is now {keras.version()}: check every item keras_fixes/__init__.py lists against it, "
        "then update WRITTEN_FOR")


def test_what_the_runner_reads_of_keras_is_still_there(tmp_path):
    from kerasrun import keras_fixes as fixes

    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    board.set_model(small_model())
    assert [name for name in fixes.TENSORBOARD_PRIVATE if not hasattr(board, name)] == []

    model = small_model()
    with pytest.raises(RuntimeError, match=fixes.NAN_STOP_MESSAGE):
        model.fit(np.full((8, 4), np.nan), np.zeros(8), epochs=1, verbose=0,
                  callbacks=[keras.callbacks.TerminateOnNaN(raise_error=True)])

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    assert [name for name in fixes.BACKUP_PRIVATE if not hasattr(backup, name)] == []
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch}.keras"))
    assert [name for name in fixes.CHECKPOINT_PRIVATE if not hasattr(checkpoint, name)] == []
    small_model().fit(np.ones((8, 4)), np.zeros(8), epochs=2, verbose=0, callbacks=[backup])
    with open(tmp_path / "backup" / fixes.BACKUP_METADATA_FILE) as stream:
        assert json.load(stream)["epoch"] == 2  # the epochs finished, which resume.py compares with its own


@pytest.mark.parametrize("name", ["ModelCheckpoint", "BackupAndRestore"])
def test_keras_savers_saving_each_epoch_do_nothing_at_batch_end_but_count(tmp_path, name):
    from kerasrun import keras_fixes as fixes

    path = str(tmp_path / ("model.keras" if name == "ModelCheckpoint" else "backup"))
    saver = getattr(keras.callbacks, name)(path, save_freq="epoch")
    saver.set_model(small_model())
    before = {key: value for key, value in vars(saver).items() if key != "_batches_seen_since_last_saving"}
    for batch in range(3):
        saver.on_train_batch_end(batch)
    after = {key: value for key, value in vars(saver).items() if key != "_batches_seen_since_last_saving"}
    assert after == before and os.listdir(tmp_path) == []
    assert fixes.idle_batch_end_when_saving_each_epoch(saver) == ("on_train_batch_end",)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_an_epoch_armed_to_begin_at_a_step_trains_on_the_rest_of_its_batches_numbered_as_in_the_whole_epoch(
        steps_per_execution):
    from kerasrun import keras_fixes as fixes
    from kerasrun.keras_fixes import mid_epoch

    x, y = np.random.default_rng(0).random((10, 4)), np.arange(10) % 2
    seen = []

    class BeginAtFour(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                mid_epoch.start_next_epoch_at(4)

        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    def model():  # No Dropout and a stateless optimizer: two models trained on the same batches end equal.
        built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        built.compile("sgd", "sparse_categorical_crossentropy", steps_per_execution=steps_per_execution)
        return built

    resumed, rest = model(), model()
    rest.set_weights(resumed.get_weights())
    resumed.fit(x, y, batch_size=1, epochs=2, shuffle=False, verbose=0, callbacks=[BeginAtFour()],
                validation_data=(x, y))
    # The first epoch: batches 4 to 9, numbered so; the second, all ten (the validation pass was not cut).
    assert seen == [*range(4, 10, steps_per_execution), *range(0, 10, steps_per_execution)]
    rest.fit(x[4:], y[4:], batch_size=1, epochs=1, shuffle=False, verbose=0)
    rest.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    for trained, expected in zip(resumed.get_weights(), rest.get_weights()):
        np.testing.assert_allclose(trained, expected, rtol=1e-6)
    from keras.src.trainers.epoch_iterator import EpochIterator

    iterator = EpochIterator(x, y, batch_size=1)
    owners = {"_enumerate_iterator": iterator, "_num_batches": iterator, "_symbolic_build": resumed}
    assert [name for name in fixes.MID_EPOCH_PRIVATE if not hasattr(owners[name], name)] == []
