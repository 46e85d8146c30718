"""Keras's TensorBoard callback, without the per-batch work that writes nothing."""

import keras
import numpy as np
import tensorflow as tf


class TensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard`, writing the same logs at less cost in time and memory.

    Four changes: the first makes batch summaries land at their batch, the
    others are invisible in the logs:

    * With several steps per call into the backend (--steps_per_execution),
      batch summaries and profiles count steps, not calls
      (`_steps_in_call`).
    * With `update_freq="epoch"`, Keras's `on_train_batch_end` still calls
      `tf.summary.scalar` for every batch's loss and metrics. No summary
      writer is the default between batches then, so nothing is written, but
      on short epochs it costs a quarter of the epoch's time. This class
      skips that work and keeps the rest of the batch hooks: counting the
      batches, writing the graph after the first one, and profiling (with
      `profile_batch`) until the profiled batches are done.
    * Scalars given as Python numbers reach TensorFlow as NumPy values.
      TensorFlow keeps the tensor of every distinct Python number it
      converts in a cache that is never emptied, so every loss value and
      step number logged would stay in memory until the process ends
      (Keras's batch scalars alone: about 1.5 KB per batch, written or not).
    * Once its batch hooks have nothing left to do, it says so (`idle_hooks`)
      and the runner stops calling them (runner/dispatch.py).

    Arguments are those of `keras.callbacks.TensorBoard`. The private members
    of Keras's class this one uses are listed in keras_fixes/__init__.py
    (`TENSORBOARD_PRIVATE`), where a test fails when Keras drops one.
    """

    @property
    def summary(self):
        return _SUMMARY

    def on_train_batch_begin(self, batch, logs=None):
        # Keras counts calls; with several steps per call the batches before this call's last are counted here.
        self._global_train_batch += self._steps_in_call(batch) - 1
        if self._batch_hooks_have_work():
            super().on_train_batch_begin(batch, logs)
        else:
            self._global_train_batch += 1

    def on_train_batch_end(self, batch, logs=None):
        if self._batch_hooks_have_work():
            super().on_train_batch_end(batch, logs)
        elif self._should_write_train_graph:
            self._write_keras_model_train_graph()
            self._should_write_train_graph = False

    def _steps_in_call(self, batch):
        """The training steps of the call into the backend that starts at step `batch` of the epoch.

        Keras's batch hooks run once per call, and its TensorBoard counts
        the calls: with --steps_per_execution N its batch summaries would
        be written every update_freq calls, at the call's number. Counted
        in steps, each lands at its batch; callbacks/stepping.py makes calls
        end on the batches update_freq names.
        """
        per_call = getattr(self.model, "steps_per_execution", 1) or 1
        steps = (self.params or {}).get("steps")
        return max(1, min(per_call, steps - batch)) if steps else per_call

    def idle_hooks(self):
        """The batch hooks, when they have nothing left to do; runner/dispatch.py then skips them.

        With `update_freq="epoch"` that is once the graph is written (after
        the first batch) and any profile is done: the batches they would go
        on counting number only batch summaries and profiles.
        """
        if self.update_freq != "epoch":
            return ()
        test = ("on_test_batch_begin",)  # counts validation batches, for batch summaries only
        graph_to_write = getattr(self, "_should_write_train_graph", True)  # set with the model
        if graph_to_write or self._batch_hooks_have_work():
            return test
        return (*test, "on_train_batch_begin", "on_train_batch_end")

    def _batch_hooks_have_work(self):
        """Whether Keras's own batch hooks would write something: batch summaries or a profile.

        A profile starts at batch `_start_batch` and ends at `_stop_batch`
        (counted from 1 over the whole run); after that only the summaries
        remain, which with `update_freq="epoch"` go to no writer.
        """
        profiling = self._should_trace and (self._is_tracing or self._global_train_batch < self._stop_batch)
        return self.update_freq != "epoch" or profiling


class _NumPyScalars:
    """`tf.summary`, except that the number arguments of what Keras calls arrive as NumPy values.

    TensorFlow turns a NumPy value into the same tensor as the Python number
    (the same dtype after the summary's own cast, the same rounding), but does
    not cache it.
    """

    def __getattr__(self, name):
        return getattr(tf.summary, name)

    def scalar(self, name, data, step=None, description=None):
        return tf.summary.scalar(name, _numpy(data), step=_numpy(step), description=description)

    def histogram(self, name, data, step=None, buckets=None, description=None):
        return tf.summary.histogram(name, data, step=_numpy(step), buckets=buckets, description=description)

    def image(self, name, data, step=None, max_outputs=3, description=None):
        return tf.summary.image(name, data, step=_numpy(step), max_outputs=max_outputs,
                                description=description)


def _numpy(value):
    """Returns a Python number as a 0-d NumPy array, anything else (a tensor, None) unchanged."""
    return np.asarray(value) if isinstance(value, (int, float)) else value


_SUMMARY = _NumPyScalars()
