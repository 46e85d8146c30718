"""Everything the runner works around, or relies on, in Keras's own code: in one place.

Workarounds, each in its own module that says what it fixes and where it was found:

- saving.py: Keras's weight saving looks its attribute sets up under another key than it
  stores them under, so every save builds a throwaway Optimizer (about 70 KB for good);
  TensorFlow's cache of converted Python numbers is never emptied. Not reported upstream yet;
  tests/test_keras_fixes.py reproduces both.
- multi_worker.py: Keras 3's `fit` under MultiWorkerMirroredStrategy, keras-team/keras#20585.
- `idle_batch_end_when_saving_each_epoch` below: skipping the batch hook of Keras's savers.
- `ONE_STEP_PER_CALL` below: one step per call under tf.distribute's mirrored strategies.
- callbacks/subclasses/tensorboard.py: TensorBoard without the batch work that writes nothing
  (it reads and sets `TENSORBOARD_PRIVATE`).
- callbacks/subclasses/backup_and_restore.py: BackupAndRestore writing each backup whole, by
  renaming it into place (it overrides and reads `BACKUP_PRIVATE`).
- callbacks/subclasses/model_checkpoint.py: ModelCheckpoint writing each file whole, by renaming
  it into place (it overrides and calls `CHECKPOINT_PRIVATE`).
- mid_epoch.py: beginning an epoch of `fit` at a step, to resume inside the epoch a backup was
  made in (it wraps `EpochIterator._enumerate_iterator` and calls `Trainer._symbolic_build`).

Which backend each applies to (`--backend`, cli/backend.py): `cache_saving_skipsets` on both (the
skipset lookup is Keras's own; on JAX it still saves building an Optimizer per save, though the
memory it would cost is TensorFlow's kernel cache); `scalar_cache_emptier` on TensorFlow only (on
JAX the callbacks' numbers go to JAX, and `scalar_cache_emptier` returns None); multi_worker.py
on TensorFlow only (multi_worker_mirrored is refused on JAX); the TensorBoard, BackupAndRestore
and ModelCheckpoint subclasses on both (TensorBoard writes through `tf.summary` on either backend,
so its NumPy scalars matter on both).

Texts and files of Keras's that the runner reads are named here too (`NAN_STOP_MESSAGE`,
`BACKUP_METADATA_FILE`). All of it was written for Keras `WRITTEN_FOR`: `check_keras` warns
when another Keras is installed, and tests/test_keras_fixes.py fails, so that each item is
checked again on an upgrade.
"""

import sys

WRITTEN_FOR = "3.15"

# How keras.callbacks.TerminateOnNaN(raise_error=True) words the error it raises.
NAN_STOP_MESSAGE = "NaN or Inf loss encountered"

# The file BackupAndRestore writes beside its backup, holding the epoch the backup was made after.
BACKUP_METADATA_FILE = "training_metadata.json"

# The private members of keras.callbacks.BackupAndRestore our subclass overrides, reads or calls.
BACKUP_PRIVATE = ("_save_model", "_weights_path", "_training_metadata_path", "_prev_weights_path",
                  "_prev_training_metadata_path", "_current_epoch", "_last_batch_seen",
                  "_batches_seen_since_last_saving")

# The private members of keras.callbacks.ModelCheckpoint our subclass overrides or calls.
CHECKPOINT_PRIVATE = ("_save_model", "_get_file_path", "_should_save_model", "_last_batch_seen",
                      "_batches_seen_since_last_saving")

# The private members of keras.callbacks.TensorBoard our subclass reads, sets or calls.
TENSORBOARD_PRIVATE = ("_should_write_train_graph", "_global_train_batch", "_global_test_batch", "_should_trace",
                       "_is_tracing", "_stop_batch", "_write_keras_model_train_graph")

# The private members of Keras's trainer that keras_fixes/mid_epoch.py wraps or calls.
MID_EPOCH_PRIVATE = ("_enumerate_iterator", "_num_batches", "_symbolic_build")


# With several steps per call (steps_per_execution above 1), the multi-step loop of Keras's TensorFlow
# train function fails under MirroredStrategy over several devices and under MultiWorkerMirroredStrategy
# ("You must feed a value for placeholder tensor 'while/body/.../while/cond/Placeholder'"): runs under
# those strategies take one step per call (callbacks/stepping.py's auto; cli/cluster.py refuses more).
ONE_STEP_STRATEGIES = ("mirrored", "multi_worker_mirrored")
ONE_STEP_PER_CALL = ("Keras 3.15's loop of several steps per call fails under tf.distribute's mirrored "
                     "strategies (a TensorFlow placeholder error)")


def check_keras():
    """Warns, on stderr, when the installed Keras is not the version these workarounds were written for."""
    import keras

    if not keras.version().startswith(WRITTEN_FOR + "."):
        print(f"train.py: warning: written for Keras {WRITTEN_FOR}, this is Keras {keras.version()}; "
              "the workarounds in keras_fixes/ may no longer fit it", file=sys.stderr)


def idle_batch_end_when_saving_each_epoch(callback):
    """The idle hooks of Keras's ModelCheckpoint and BackupAndRestore: on_train_batch_end when saving each epoch.

    Keras 3.15 calls their on_train_batch_end after every step; it only counts
    batches towards a save every `save_freq` batches, which is nothing to do
    when they save once an epoch.
    """
    return ("on_train_batch_end",) if callback.save_freq == "epoch" else ()
