"""Our TensorBoard callback writes what Keras's writes, without Keras's per-batch work."""

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from kerasrun.callbacks.subclasses.tensorboard import TensorBoard
from kerasrun.runner.dispatch import combined

BATCHES_PER_EPOCH = 4
EPOCHS = 3
# Timings: present in both logs, but never the same value twice.
TIMED_TAGS = {"epoch_steps_per_second"}


def fit(*callbacks, epochs=EPOCHS, wrap=list):
    """Trains a small model on fixed random data; returns each batch's training logs.

    `wrap` makes the list given to Keras: `combined` gives them as the runner does.
    """
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8 * BATCHES_PER_EPOCH, 5)), rng.integers(0, 3, 8 * BATCHES_PER_EPOCH)
    batch_logs = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batch_logs.append(dict(logs)))
    model.fit(x, y, batch_size=8, epochs=epochs, validation_data=(x[:8], y[:8]), shuffle=False, verbose=0,
              callbacks=wrap([*callbacks, record]))
    return batch_logs


def events(directory):
    """Returns {tag: [(step, value as a NumPy array), ...]} and the kinds of record, of one event directory."""
    accumulator = EventAccumulator(directory, size_guidance={"tensors": 0, "scalars": 0, "histograms": 0,
                                                             "images": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    values = {tag: [(event.step, tensor_util.make_ndarray(event.tensor_proto))
                    for event in accumulator.Tensors(tag)] for tag in tags["tensors"]}
    return values, {kind: names for kind, names in tags.items() if kind != "tensors"}


def assert_same_events(ours, theirs):
    our_values, our_kinds = events(ours)
    their_values, their_kinds = events(theirs)
    assert our_kinds == their_kinds
    assert sorted(our_values) == sorted(their_values)
    for tag, their_points in their_values.items():
        our_points = our_values[tag]
        assert [step for step, _ in our_points] == [step for step, _ in their_points], tag
        if tag not in TIMED_TAGS:
            for (_, our_value), (_, their_value) in zip(our_points, their_points):
                np.testing.assert_array_equal(our_value, their_value, err_msg=tag)


@pytest.mark.parametrize("wrap", [list, combined])
def test_writes_the_same_epoch_logs_as_keras(tmp_path, wrap):
    options = dict(histogram_freq=1, write_images=True, write_steps_per_second=True)
    fit(keras.callbacks.TensorBoard(str(tmp_path / "keras"), **options),
        TensorBoard(str(tmp_path / "ours"), **options), wrap=wrap)
    for part in ("train", "validation"):
        assert_same_events(str(tmp_path / "ours" / part), str(tmp_path / "keras" / part))
    values, kinds = events(str(tmp_path / "ours" / "train"))
    assert [step for step, _ in values["epoch_loss"]] == list(range(EPOCHS))
    assert {"epoch_accuracy", "epoch_learning_rate", "epoch_steps_per_second", "keras"} <= set(values)
    assert any(tag.endswith("/histogram") for tag in values) and any(tag.endswith("/image") for tag in values)
    evaluation, _ = events(str(tmp_path / "ours" / "validation"))
    assert {"epoch_loss", "evaluation_loss_vs_iterations"} <= set(evaluation)


@pytest.mark.parametrize("update_freq, steps", [
    ("batch", list(range(1, EPOCHS * BATCHES_PER_EPOCH + 1))),
    (2, list(range(2, EPOCHS * BATCHES_PER_EPOCH + 1, 2))),
])
def test_batch_scalars_are_still_written_when_asked_for(tmp_path, update_freq, steps):
    batch_logs = fit(TensorBoard(str(tmp_path), update_freq=update_freq, write_steps_per_second=True))
    values, _ = events(str(tmp_path / "train"))
    assert [step for step, _ in values["batch_loss"]] == steps
    assert [step for step, _ in values["batch_steps_per_second"]] == steps
    written = [float(value) for _, value in values["batch_loss"]]
    assert written == [np.float32(batch_logs[step - 1]["loss"]) for step in steps]
    assert len(values["epoch_loss"]) == EPOCHS


def test_with_update_freq_epoch_nothing_is_summarised_per_batch(tmp_path, monkeypatch):
    calls = []
    scalar = tf.summary.scalar

    def record(name, data, step=None, description=None):
        calls.append((name, data, step))
        return scalar(name, data, step=step, description=description)

    monkeypatch.setattr(tf.summary, "scalar", record)
    fit(TensorBoard(str(tmp_path)))
    names = [name for name, _, _ in calls]
    assert names and not [name for name in names if name.startswith("batch_")]
    # Nor does a Python number reach TensorFlow, which would keep it cached for good.
    assert not [call for call in calls for number in call[1:] if isinstance(number, (int, float))]


@pytest.mark.parametrize("profiled, epochs, wrap", [((2, 3), 1, list), ((6, 7), 2, combined)])
def test_profiling_still_traces_the_profiled_batches(tmp_path, profiled, epochs, wrap):
    fit(TensorBoard(str(tmp_path), profile_batch=profiled), epochs=epochs, wrap=wrap)
    assert glob.glob(str(tmp_path / "train" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    values, _ = events(str(tmp_path / "train"))
    assert f"batch_{profiled[1]}" in values  # the trace of the profiled steps, named after the last
