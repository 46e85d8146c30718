"""Turns a `Data` into batched, prefetched `tf.data` pipelines."""


def make_tf_datasets(data, *, batch_size, seed):
    """Returns `(train_ds, val_ds)` ready for `model.fit`.

    Array training data is shuffled in full with `seed`, in a different
    order every epoch (the same sequence of orders for the same seed).
    Training data that is already a `tf.data.Dataset` (image folders) is
    expected to shuffle itself: the image source reshuffles file names each
    epoch, which is cheap, whereas a shuffle buffer here would hold decoded
    images in memory. Validation data is never shuffled.

    Args:
        data: A `datasets.data.Data`.
        batch_size: Examples per batch; the last batch may be smaller.
        seed: Seed of the training shuffle.

    Returns:
        `(train_ds, val_ds)`, where `val_ds` is None if `data.val` is None.
    """
    train_ds = _batched(data.train, batch_size, shuffle_seed=seed)
    val_ds = None if data.val is None else _batched(data.val, batch_size, shuffle_seed=None)
    return train_ds, val_ds


def _batched(examples, batch_size, shuffle_seed):
    import tensorflow as tf  # Deferred: validating flags must not load TensorFlow.

    if isinstance(examples, tf.data.Dataset):
        return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # Shuffling row indices and gathering a batch at a time is much faster
    # than slicing arrays into single examples, and the arrays stay one
    # tensor instead of being copied into a shuffle buffer.
    x, y = (tf.convert_to_tensor(array) for array in examples)
    rows = tf.data.Dataset.range(len(examples[0]))
    if shuffle_seed is not None:
        rows = rows.shuffle(len(examples[0]), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (
        rows.batch(batch_size)
        .map(lambda batch_rows: (tf.gather(x, batch_rows), tf.gather(y, batch_rows)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
