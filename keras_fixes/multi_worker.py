"""Makes Keras 3's `fit` train under MultiWorkerMirroredStrategy (Keras issue #20585).

Written for Keras 3.15 (`WRITTEN_FOR`), whose TensorFlow trainer fails twice
when the strategy spans several workers:

1. `fit` first builds the model symbolically from one batch
   (`TensorFlowTrainer._maybe_symbolic_build`), and with a distribution
   strategy it tries to reduce the per-replica input batch with
   `strategy.reduce`, which cannot convert a PerReplica value to a tensor.
   We build the model, its loss, metrics and optimizer on one local batch
   before `fit` (`build_before_fit`), and then turn that step off for this
   model, since everything it would build exists.
2. Each step's logs go through `reduce_per_replica`, which under a
   multi-worker strategy reduces every value with
   `strategy.reduce("MEAN", value, axis=0)`; the logs are scalars, which
   have no axis 0. `patch_log_reduction` reduces the logs over the replicas
   alone (axis None), the mean Keras means, and leaves every other
   reduction (predict's concatenation, a single worker) to Keras.

A third failure, also under MirroredStrategy over several devices, is
avoided rather than fixed: keras_fixes/__init__.py's `ONE_STEP_PER_CALL`.

The two fixes reach into Keras's private modules, so `check_keras` refuses to go on
when they are gone (keras_fixes.check_keras warns about another version);
tests/test_distribution.py fails loudly on an upgrade.
"""

from kerasrun.core.errors import RunError
from kerasrun.keras_fixes import WRITTEN_FOR

ISSUE = "https://github.com/keras-team/keras/issues/20585"


def check_keras():
    """Checks that Keras still has what the workaround relies on.

    Raises:
        RunError: when it does not; the workaround cannot be applied.
    """
    import keras
    from keras.src.backend.tensorflow import trainer

    missing = [name for name, owner in (("reduce_per_replica", trainer),
                                        ("_collective_all_reduce_multi_worker", trainer),
                                        ("_maybe_symbolic_build", trainer.TensorFlowTrainer),
                                        ("_symbolic_build", trainer.TensorFlowTrainer))
               if not hasattr(owner, name)]
    if missing:
        raise RunError(f"--distribution_strategy=multi_worker_mirrored: Keras {keras.version()} has no "
                       f"{missing[0]}, which keras_fixes/multi_worker.py (written for Keras {WRITTEN_FOR}, "
                       f"see {ISSUE}) relies on")


def build_before_fit(model, strategy, batch):
    """Builds `model` with its loss, metrics and optimizer on one local `batch`, in `strategy`'s scope.

    Args:
        model: A compiled Keras model created in the strategy's scope.
        strategy: The MultiWorkerMirroredStrategy.
        batch: `(x, y)` of tensors or arrays: one batch of training data on this worker.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    # fit's own symbolic build (failure 1 above) has nothing left to build.
    model._maybe_symbolic_build = _nothing_to_build


def _nothing_to_build(iterator=None, data_batch=None):
    return None


def patch_log_reduction():
    """Makes Keras reduce scalar logs over the workers' replicas without an axis (failure 2)."""
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "multi_worker_compat", False):
        return
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return keras_reduce(values, strategy, reduction)
        import tensorflow as tf

        # The logs are metric results, already equal on every replica; only
        # the replicas are averaged (axis 0 would also average a vector
        # result such as per-class F1 scores).
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)

    reduce_per_replica.multi_worker_compat = True
    trainer.reduce_per_replica = reduce_per_replica
