"""Turns a `Data` into batched pipelines: `tf.data` ones, or on JAX NumPy batches (`make_numpy_datasets`)."""


class EpochCounter:
    """The number of the epoch being trained, so that its data order depends on (seed, epoch) alone.

    Keras's fit starts a new pass over the training data each epoch, after
    `on_epoch_begin`; the callback below sets the number there. A run that
    resumes at epoch e then sees the same order in epoch e as a run that got
    there without stopping, which tf.data's own reshuffling cannot give: its
    order depends on how many passes this process has made. `number` is the
    epoch as a Python int (NumPy batches read it); `variable`, made on first
    use, the same as a TensorFlow variable (tf.data pipelines read it).

    `skipped` is the number of the epoch's first batches that a resumed run
    trained on before it stopped, which Keras's pass draws and drops
    (keras_fixes/mid_epoch.py): a pipeline that reads images from disk gives
    blank ones in their place instead of decoding them. It goes back to 0
    as each epoch begins.
    """

    def __init__(self):
        self.number = 0
        self._variable = None
        self._skipped = None

    @property
    def variable(self):
        if self._variable is None:
            import tensorflow as tf

            self._variable = tf.Variable(self.number, dtype=tf.int64, trainable=False)
        return self._variable

    @property
    def skipped(self):
        """The batches of this epoch to draw and drop, as a TensorFlow variable (made on first use)."""
        if self._skipped is None:
            import tensorflow as tf

            self._skipped = tf.Variable(0, dtype=tf.int64, trainable=False)
        return self._skipped

    def set(self, epoch):
        self.number = epoch
        if self._variable is not None:
            self._variable.assign(epoch)
        self.skip(0)

    def skip(self, batches):
        """Says that the current epoch's first `batches` batches will be drawn and dropped."""
        if self._skipped is not None:
            self._skipped.assign(batches)

    def callback(self):
        """Returns the Keras callback that keeps the number up to date."""
        import keras

        counter = self

        class SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                counter.set(epoch)

        return SetEpoch()


def make_tf_datasets(data, *, batch_size, seed, epoch=None):
    """Returns `(train_ds, val_ds)` ready for `model.fit`.

    Training examples are shuffled in full with `seed`, in a different
    order every epoch (the same sequence of orders for the same seed); with
    `epoch` the order of each epoch is a function of the seed and the
    epoch's number only. Arrays stay one tensor each; with `epoch`, each
    epoch gathers the training arrays into one copy in its order, when that
    copy fits in free memory (`datasets.memory`), and each step slices its batch from it;
    otherwise each batch is gathered as it is needed. Image files
    (`ImageFiles`) are read and decoded in parallel, in that order, as the
    pipeline goes. Validation data is never shuffled: its batches are
    sliced from the arrays in order.

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


def make_test_dataset(data, *, batch_size):
    """Returns the test split's batches in order (like the validation data's), or None without a test split."""
    return None if data.test is None else _batched(data.test, batch_size, shuffle_seed=None)


def _batched(examples, batch_size, shuffle_seed, epoch=None):
    import tensorflow as tf  # Deferred: validating flags must not load TensorFlow.

    from kerasrun.datasets import memory
    from kerasrun.datasets.csv_stream import CsvRows
    from kerasrun.datasets.image_source import ImageFiles

    if isinstance(examples, ImageFiles):
        return _batched_files(examples, batch_size, shuffle_seed, epoch)
    if isinstance(examples, CsvRows):
        return examples.batches(batch_size, shuffle_seed, epoch)
    # The arrays stay one tensor each: batches are sliced or gathered from
    # them, never split into single examples (which costs tf.data far more)
    # nor copied into a shuffle buffer.
    # x is an array, or a table: {column: array}; every operation applies to each column alike.
    x, y = (tf.nest.map_structure(tf.convert_to_tensor, part) for part in examples)
    count = len(examples[1])
    steps = -(-count // batch_size)

    def order():  # Read inside the pipeline, at the start of each pass.
        return _epoch_order(count, shuffle_seed, epoch.variable)

    if shuffle_seed is None:
        batches = tf.data.Dataset.range(0, count, batch_size).map(
            lambda start: _each((x, y), lambda t: t[start:start + batch_size]))
    elif epoch is not None and memory.fits_in_free_memory(sum(array.nbytes for array in tf.nest.flatten(examples))):
        # One copy per epoch, in its order: each step then only reads the
        # next slice, which made the epoch 4 to 9% faster than gathering
        # every batch apart (measured at batch 32 and 256, epochs of the two
        # alternating in one process).
        batches = per_epoch(lambda: _gathered_batches(x, y, order(), batch_size), steps)
    else:
        rows = (per_epoch(lambda: _batches_of(*_head_and_tail(order(), batch_size), batch_size), steps)
                if epoch is not None else _row_order(count, shuffle_seed).batch(batch_size))
        batches = rows.map(lambda batch_rows: _each((x, y), lambda t: tf.gather(t, batch_rows)),
                           num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def per_epoch(make_dataset, steps):
    """A dataset whose every pass is `make_dataset()` (of `steps` elements), made afresh.

    `make_dataset` runs inside the pipeline at the start of each pass, so
    whatever it reads (the epoch counter) is read anew each epoch.
    """
    import tensorflow as tf

    elements = tf.data.Dataset.from_tensors(0).flat_map(lambda _: make_dataset())
    # flat_map hides the length; Keras wants it for its progress bar and step count.
    return elements.apply(tf.data.experimental.assert_cardinality(steps))


def _gathered_batches(x, y, order, batch_size):
    """The batches of (x, y) in `order`, from one gathered copy of each."""
    import tensorflow as tf

    # Gathered in two parts, so that cutting the copy into batches copies nothing more.
    head, tail = _head_and_tail(order, batch_size)
    head = _each((x, y), lambda t: tf.gather(t, head))
    tail = None if tail is None else _each((x, y), lambda t: tf.gather(t, tail))
    return _batches_of(head, tail, batch_size)


def _each(structure, function):
    """Applies `function` to every tensor of (x, y), x being one tensor or a table of them."""
    import tensorflow as tf

    return tf.nest.map_structure(function, structure)


def _head_and_tail(tensors, batch_size):
    """Splits `tensors` (with one leading axis) into the rows of the whole batches and the rest (None if none)."""
    count = tensors.shape[0]
    whole = count - count % batch_size
    return tensors[:whole], (tensors[whole:] if whole < count else None)


def _batches_of(head, tail, batch_size):
    """A dataset of the whole batches cut from `head`, then `tail` (if not None) as one smaller batch."""
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices(
        tf.nest.map_structure(lambda t: tf.reshape(t, [-1, batch_size, *t.shape[1:]]), head))
    return batches if tail is None else batches.concatenate(tf.data.Dataset.from_tensors(tail))


def _batched_files(files, batch_size, shuffle_seed, epoch):
    """Batches of images read from disk, decoded in parallel, in the order of `_batched`."""
    import tensorflow as tf

    paths, labels = tf.constant(files.paths), tf.constant(files.labels)
    count = len(files)
    if shuffle_seed is not None and epoch is not None:
        def one_pass():
            # Each row with its place in the pass: those of the batches a resumed epoch drops are not read.
            dropped = epoch.skipped * batch_size
            return tf.data.Dataset.from_tensor_slices(
                (tf.range(count, dtype=tf.int64) < dropped, _epoch_order(count, shuffle_seed, epoch.variable)))

        rows = per_epoch(one_pass, steps=count)
        blank = tf.zeros((*files.image_size, files.channels), tf.float32)

        def example(dropped, row):
            return tf.cond(dropped, lambda: blank, lambda: files.decode(paths[row])), labels[row]
    else:
        rows = _row_order(count, shuffle_seed)

        def example(row):
            return files.decode(paths[row]), labels[row]
    # map keeps the order of its input however many files it reads at once.
    return (
        rows
        .map(example, num_parallel_calls=tf.data.AUTOTUNE)
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


def takes_numpy_batches(data):
    """Whether `make_numpy_datasets` can feed `data`: every split in memory as arrays (not files read as it goes)."""
    import numpy as np

    parts = [part for part in (data.train, data.val) if part is not None]
    return all(isinstance(part, tuple) and all(isinstance(array, np.ndarray)
                                               for array in _flat(part)) for part in parts)


def make_numpy_datasets(data, *, batch_size, seed, epoch, multiple=1):
    """Returns `(train, validation)` as Keras PyDatasets of NumPy batches, for the JAX backend.

    Keras's JAX trainer turns every tf.data batch into NumPy arrays; batches
    cut from NumPy arrays need no conversion, and made the default MLP's epoch
    of 60,000 examples at batch 32 faster: 0.8 s against 1.3 s through
    train.py on two busy cores, 0.39 s against 0.8 to 1.4 s in Keras alone.
    The order is that of `make_tf_datasets`'s contract, by other means:
    each epoch's order is drawn from (seed, epoch) alone (NumPy's generator,
    so not the same order as on TensorFlow), the training arrays are gathered
    into one copy in that order when it fits in free memory (else each batch
    is gathered as it is needed), and validation batches are in order.
    `data` must pass `takes_numpy_batches`. With `multiple` (the devices of
    a data-parallel run, which each take an equal share of every batch), the
    last, smaller batch of each pass is cut to a multiple of it: each epoch
    then leaves out up to `multiple - 1` examples (`left_out` says how many).
    """
    from kerasrun.datasets import memory

    whole = memory.fits_in_free_memory(sum(array.nbytes for array in _flat(data.train)))
    train = _numpy_batches()(data.train, batch_size, seed, epoch, whole, multiple)
    validation = numpy_test_batches(data.val, batch_size=batch_size, multiple=multiple)
    return train, validation


def numpy_test_batches(part, *, batch_size, multiple=1):
    """Returns an (x, y) split's batches in order as a PyDataset (see `make_numpy_datasets`), or None for None."""
    return None if part is None else _numpy_batches()(part, batch_size, None, None, False, multiple)


def left_out(count, multiple):
    """How many of `count` examples a pass leaves out when its last batch is cut to a multiple of `multiple`."""
    return count % multiple


def _flat(part):
    """The arrays of an (x, y) pair, x being an array or a table {column: array}."""
    x, y = part
    return [*(x.values() if isinstance(x, dict) else [x]), y]


def _take(part, rows):
    """(x, y) at `rows` (a slice or an index array); a table's columns alike."""
    x, y = part
    return ({name: column[rows] for name, column in x.items()} if isinstance(x, dict) else x[rows]), y[rows]


_NUMPY_BATCHES = []


def _numpy_batches():
    """The PyDataset class of NumPy batches (made on first use: Keras is imported only then)."""
    if _NUMPY_BATCHES:
        return _NUMPY_BATCHES[0]
    import keras
    import numpy as np

    class NumpyBatches(keras.utils.PyDataset):
        """Batches of in-memory arrays; with a seed, each epoch in the order drawn from (seed, epoch)."""

        def __init__(self, part, batch_size, seed, epoch, whole, multiple=1):
            super().__init__()  # One worker, in this thread: batches are slices, cheaper than any hand-over.
            self.part, self.batch_size, self.seed, self.epoch, self.whole = part, batch_size, seed, epoch, whole
            self.multiple = multiple
            self.count = len(part[1]) - left_out(len(part[1]), multiple)
            self.ordered = None  # (epoch number, the epoch's order or its gathered copy)

        def __len__(self):
            return -(-self.count // self.batch_size)

        def _epoch_rows(self):
            number = self.epoch.number if self.epoch is not None else 0
            if self.ordered is None or self.ordered[0] != number:
                self.ordered = None  # The last epoch's copy goes before the next one is gathered: never two.
                rows = np.random.default_rng([self.seed, number]).permutation(len(self.part[1]))[:self.count]
                self.ordered = (number, _take(self.part, rows) if self.whole else rows)
            return self.ordered[1]

        def __getitem__(self, index):
            window = slice(index * self.batch_size, min((index + 1) * self.batch_size, self.count))
            if self.seed is None:
                return _take(self.part, window)
            ordered = self._epoch_rows()
            return _take(ordered, window) if self.whole else _take(self.part, ordered[window])

    _NUMPY_BATCHES.append(NumpyBatches)
    return NumpyBatches
