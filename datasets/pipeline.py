"""Turns a `Data` into batched, prefetched `tf.data` pipelines."""


class EpochCounter:
    """The number of the epoch being trained, so that its data order depends on (seed, epoch) alone.

    Keras's fit starts a new pass over the training data each epoch, after
    `on_epoch_begin`; the callback below sets the number there. A run that
    resumes at epoch e then sees the same order in epoch e as a run that got
    there without stopping, which tf.data's own reshuffling cannot give: its
    order depends on how many passes this process has made.
    """

    def __init__(self):
        import tensorflow as tf

        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False)

    def callback(self):
        """Returns the Keras callback that keeps the number up to date."""
        import keras

        variable = self.variable

        class SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                variable.assign(epoch)

        return SetEpoch()


def make_tf_datasets(data, *, batch_size, seed, epoch=None):
    """Returns `(train_ds, val_ds)` ready for `model.fit`.

    Array training data is shuffled in full with `seed`, in a different
    order every epoch (the same sequence of orders for the same seed); with
    `epoch` the order of each epoch is a function of the seed and the
    epoch's number only.
    Training data that is already a `tf.data.Dataset` (image folders) is
    expected to shuffle itself: the image source reshuffles file names each
    epoch, which is cheap, whereas a shuffle buffer here would hold decoded
    images in memory. Validation data is never shuffled.

    Args:
        data: A `datasets.data.Data`.
        batch_size: Examples per batch; the last batch may be smaller.
        seed: Seed of the training shuffle.
        epoch: Optional `EpochCounter`; see above.

    Returns:
        `(train_ds, val_ds)`, where `val_ds` is None if `data.val` is None.
    """
    train_ds = _batched(data.train, batch_size, shuffle_seed=seed, epoch=epoch)
    val_ds = None if data.val is None else _batched(data.val, batch_size, shuffle_seed=None)
    return train_ds, val_ds


def _batched(examples, batch_size, shuffle_seed, epoch=None):
    import tensorflow as tf  # Deferred: validating flags must not load TensorFlow.

    if isinstance(examples, tf.data.Dataset):
        return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # Shuffling row indices and gathering a batch at a time is much faster
    # than slicing arrays into single examples, and the arrays stay one
    # tensor instead of being copied into a shuffle buffer.
    x, y = (tf.convert_to_tensor(array) for array in examples)
    count = len(examples[0])
    rows = tf.data.Dataset.range(count)
    if shuffle_seed is not None and epoch is not None:
        rows = _epoch_order(count, shuffle_seed, epoch.variable)
    elif shuffle_seed is not None:
        rows = rows.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    return (
        rows.batch(batch_size)
        .map(lambda batch_rows: (tf.gather(x, batch_rows), tf.gather(y, batch_rows)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _epoch_order(count, seed, epoch_variable):
    """Row numbers in an order drawn from (seed, epoch), read afresh at each pass."""
    import tensorflow as tf

    def permutation(_):
        keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), epoch_variable]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys, stable=True))

    rows = tf.data.Dataset.from_tensors(0).flat_map(permutation)
    # flat_map hides the length; Keras wants it for its progress bar and step count.
    return rows.apply(tf.data.experimental.assert_cardinality(count))
