"""Work-arounds for Keras and TensorFlow behaviour that would make a long run grow.

Each one is a single call that leaves what Keras computes and writes
unchanged; each says which version it was found in, so that it can be
dropped once that is fixed.
"""

# Every kind of object Keras's saving walks (the names `_obj_type()` returns).
_SAVEABLE_TYPES = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss",
                   "Cross", "Feature")


def cache_saving_skipsets():
    """Makes Keras's weight saving reuse the attribute sets it computes once per kind of object.

    To save an object's state, Keras 3.15 walks its attributes minus those of
    a plain object of the same kind, which `saving_lib.get_attr_skipset`
    computes by building such an object: a `Layer()`, an `Optimizer(1.0)`,
    ... It means to compute each set once, but stores it under the key
    `saving_attr_skipset_<kind>` and looks it up under
    `saving_attr_skiplist_<kind>`, so it never finds it. Every `save_weights`
    (each BackupAndRestore backup, each checkpoint) therefore builds a new
    `Optimizer(1.0)`, whose two variables get new unique names; TensorFlow
    keeps a kernel for each new variable name in its eager kernel cache,
    which is never emptied: about 70 KB more memory for every save, for the
    rest of the process, and 9 of the 15 ms a save of the default model
    takes. Storing the sets under the key Keras reads makes every later save
    reuse them; the sets, and so the saved files, are the same.

    The cache is Keras's per-thread global state: call this in the thread
    that runs `fit`, after anything that may clear the session. Without the
    Keras internals it relies on (another Keras), it does nothing.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    for kind in _SAVEABLE_TYPES:
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key) is not None:
            continue
        try:
            skipset = saving_lib.get_attr_skipset(kind)
        except (AttributeError, ImportError, TypeError, ValueError):
            continue  # A kind (or a helper) this Keras does not have: saving works as Keras made it.
        global_state.set_global_attribute(key, skipset)


def scalar_cache_emptier():
    """Returns a Keras callback that empties TensorFlow's cache of converted Python numbers, or None.

    TensorFlow 2.21 keeps the tensor of every distinct Python int or float it
    converts (`TFE_TensorHandleCache`, about 0.4 KB each) and never evicts
    any. Keras's callbacks convert new ones every epoch: EarlyStopping,
    ReduceLROnPlateau and a best-only ModelCheckpoint compare the monitored
    value with `ops.less` or `ops.greater`, LearningRateScheduler assigns a
    new rate; so does any user callback that hands TensorFlow a number. The
    cache only saves converting the same number again; emptying it at each
    epoch's end, as TensorFlow itself does when it resets its context, keeps
    it to one epoch's numbers. Returns None without the (private) function,
    and on another backend than TensorFlow: JAX converts the callbacks'
    numbers itself, and TensorFlow (there only for tf.data) converts none.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python import pywrap_tfe

        empty = pywrap_tfe.TFE_ClearScalarCache
    except (ImportError, AttributeError):
        return None

    class EmptyScalarCache(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            empty()

    return EmptyScalarCache()
