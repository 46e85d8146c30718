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

    Training examples are shuffled in full with `seed`, in a different
    order every epoch (the same sequence of orders for the same seed); with
    `epoch` the order of each epoch is a function of the seed and the
    epoch's number only. Arrays stay one tensor, from which each batch is
    gathered; image files (`ImageFiles`) are read and decoded in parallel,
    in that order, as the pipeline goes. Validation data is never shuffled.

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

    from datasets.image_source import ImageFiles

    if isinstance(examples, ImageFiles):
        return _batched_files(examples, batch_size, shuffle_seed, epoch)
    # Shuffling row indices and gathering a batch at a time is much faster
    # than slicing arrays into single examples, and the arrays stay one
    # tensor instead of being copied into a shuffle buffer.
    x, y = (tf.convert_to_tensor(array) for array in examples)
    count = len(examples[0])
    if shuffle_seed is not None and epoch is not None:
        batches = _epoch_order_batches(count, batch_size, shuffle_seed, epoch.variable)
    else:
        batches = _row_order(count, shuffle_seed).batch(batch_size)
    return (
        batches
        .map(lambda batch_rows: (tf.gather(x, batch_rows), tf.gather(y, batch_rows)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _batched_files(files, batch_size, shuffle_seed, epoch):
    """Batches of images read from disk, decoded in parallel, in the order of `_batched`."""
    import tensorflow as tf

    paths, labels = tf.constant(files.paths), tf.constant(files.labels)
    count = len(files)
    if shuffle_seed is not None and epoch is not None:
        rows = tf.data.Dataset.from_tensors(0).flat_map(
            lambda _: tf.data.Dataset.from_tensor_slices(_epoch_order(count, shuffle_seed, epoch.variable)))
        rows = rows.apply(tf.data.experimental.assert_cardinality(count))
    else:
        rows = _row_order(count, shuffle_seed)
    # map keeps the order of its input however many files it reads at once.
    return (
        rows
        .map(lambda row: (files.decode(paths[row]), labels[row]), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def _row_order(count, shuffle_seed):
    """Row numbers: in order, or (with a seed) reshuffled at each pass, the same sequence of orders per seed."""
    import tensorflow as tf

    rows = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        rows = rows.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    return rows


def _epoch_order(count, seed, epoch_variable):
    """The epoch's order of `count` rows, drawn from (seed, epoch): call it where each pass reads it afresh."""
    import tensorflow as tf

    keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), epoch_variable]))
    return tf.argsort(keys, stable=True)


def _epoch_order_batches(count, batch_size, seed, epoch_variable):
    """Batches of row numbers, in an order drawn from (seed, epoch) and read afresh at each pass.

    The epoch's whole order is cut into batches as one tensor, rather than
    batched element by element, which costs tf.data about twice as much.
    """
    import tensorflow as tf

    full, rest = divmod(count, batch_size)

    def batches_of(_):
        order = _epoch_order(count, seed, epoch_variable)
        whole = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: full * batch_size], [full, batch_size]))
        if not rest:
            return whole
        return whole.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:]))

    batches = tf.data.Dataset.from_tensors(0).flat_map(batches_of)
    # flat_map hides the length; Keras wants it for its progress bar and step count.
    return batches.apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))
