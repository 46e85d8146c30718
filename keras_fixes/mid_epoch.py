"""Starting an epoch of `fit` at a given step, to resume a run inside the epoch it was stopped in.

Keras 3.15's BackupAndRestore writes the batch its backup was made at but
never reads it: a run resumes at the start of the backup's epoch, and the
steps of that epoch before the backup run twice. Its `fit` has no way to
begin an epoch at a step either. `start_next_epoch_at(step)` arms one start:
the next pass of an EpochIterator over training data (Keras's own loop,
`EpochIterator._enumerate_iterator`, on TensorFlow and JAX alike) draws and
drops the batches of the calls before `step`, then hands Keras the calls
from `step` on, numbered as in an uninterrupted epoch, so that callbacks
see the same batch numbers. The runner arms it in `on_epoch_begin` of the
resumed epoch, after which `fit` iterates the training data at once; the
validation pass comes later, and finds nothing armed.

`step` must begin a call (a multiple of the steps per call): the runner
resumes with the steps per call the backup was made with, whose calls begin
at those multiples.
"""

import functools

_armed = []


def start_next_epoch_at(step):
    """Makes the next training pass of Keras's `fit` begin at `step` (batches of the epoch already done)."""
    install()
    _armed[:] = [step] if step else []


def disarm():
    """Forgets an armed start that was not used (the run ended before the pass began)."""
    _armed.clear()


@functools.cache
def install():
    """Wraps Keras's EpochIterator._enumerate_iterator (once per process)."""
    from keras.src.trainers.epoch_iterator import EpochIterator

    original = EpochIterator._enumerate_iterator

    @functools.wraps(original)
    def enumerate_from_armed_step(self):
        start = _armed.pop() if _armed else 0
        for begin, end, iterator in original(self):
            if begin >= start:
                yield begin, end, iterator
                continue
            # A call before the resume point: its batches were trained on before the backup; drop them.
            last = min(end, start - 1)
            if self._num_batches:
                last = min(last, self._num_batches - 1)
            for _ in range(begin, last + 1):
                next(iterator)

    EpochIterator._enumerate_iterator = enumerate_from_armed_step
    return original


def build_metrics(model, batch):
    """Makes the variables of the compiled metrics before `fit`, on one `batch` of (x, y), so they can be restored.

    Keras makes them as the first step is traced (on TensorFlow, with no
    distribution strategy) or as `fit` begins, after the callbacks' hooks
    that restore an epoch's running means; until then `model.metrics_variables`
    holds only the loss's.
    """
    import contextlib

    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model._symbolic_build(data_batch=batch)
