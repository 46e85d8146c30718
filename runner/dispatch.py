"""The run's callbacks handed to Keras as one, so that each step calls only the hooks that do something.

Keras's `fit` calls every hook of every callback it holds: before and after
each of the thousands of steps of an epoch, it calls each callback's
`on_train_batch_begin` and `on_train_batch_end`, most of them Keras's own
do-nothing defaults. With the benchmark's ten epoch-level callbacks those
calls were about a third of what the callbacks cost per epoch. `combined` gives
Keras one callback instead, which calls, for each hook, only the callbacks
that define it, in their order.

Some callbacks define batch hooks that have nothing to do under their
settings: Keras's ModelCheckpoint and BackupAndRestore count batches towards
a save every `save_freq` batches even when they save once an epoch, and
TensorBoard counts them for batch summaries and profiles it may not write.
Those are skipped too (`idle_hooks`). Both are decided again as each epoch
begins.
"""

import functools

from kerasrun.callbacks.builder import defines, family_of
from kerasrun.core.keras_names import CALLBACK_HOOKS, LEGACY_HOOKS

# Every hook Keras's CallbackList calls, the legacy names included.
HOOKS = (*CALLBACK_HOOKS, *LEGACY_HOOKS.values())
# The hooks after a step, which Keras runs on a thread of its own when every callback says it may (`async_safe`).
BATCH_END_HOOKS = ("on_train_batch_end", "on_test_batch_end", "on_predict_batch_end")


def combined(callbacks):
    """Returns the list to give `model.fit` for `callbacks`: one callback calling them all, and Keras's own.

    Keras looks for a History and a ProgbarLogger among the callbacks it is
    given (it adds its own otherwise), so any of those stay outside, after
    the others.
    """
    import keras

    own_kinds = (keras.callbacks.History, keras.callbacks.ProgbarLogger)
    kept = [callback for callback in callbacks if isinstance(callback, own_kinds)]
    others = [callback for callback in callbacks if not isinstance(callback, own_kinds)]
    return [_combined_class()(others), *kept] if others else kept


def idle_hooks(callback):
    """The hooks of `callback` that have nothing to do for now, which the runner does not call.

    A callback says which with an `idle_hooks()` method returning hook names
    (callbacks/subclasses/tensorboard.py does), or the family that built it
    with its `idle_hooks` (Keras's savers, saving once an epoch). A hook set
    on the instance is never idle: whoever set it wants it called.
    """
    own = getattr(callback, "idle_hooks", None)
    if own is not None:
        return frozenset(own())
    family = family_of(callback)
    if family is None or family.idle_hooks is None:
        return frozenset()
    return frozenset(family.idle_hooks(callback)) - set(vars(callback))


@functools.cache
def _combined_class():
    """Returns the Callback class `combined` builds (made once, when Keras is first needed)."""
    import keras

    class RunCallbacks(keras.callbacks.Callback):
        """The run's callbacks, in order; each hook calls those that define it and for which it is not idle.

        Which callbacks to call for each hook is decided again when training
        begins (after Keras has given them the model) and as each epoch
        begins (about 0.1 ms), so that a hook set on an instance meanwhile,
        or one that has come to have nothing to do, is seen. The hook is
        looked up on each callback at every call, so that one replaced on
        the instance after this was built (as the benchmark's clocks do) is
        the one called.
        """

        def __init__(self, callbacks):
            super().__init__()
            self.callbacks = list(callbacks)
            self._find_calls()

        def _find_calls(self):
            idle = {id(c): idle_hooks(c) for c in self.callbacks}
            self._calls = {hook: [c for c in self.callbacks if defines(c, hook) and hook not in idle[id(c)]]
                           for hook in HOOKS}

        @property
        def async_safe(self):
            """Whether Keras may run the batch-end hooks on a thread of its own: when there are none to call.

            Keras asks once, as `fit` begins. A batch-end hook makes it call
            them in line, after turning the step's logs into numbers, which
            waits for the step to finish: on JAX the next call is then not
            queued while one runs (train.py on JAX took 1.07 of bare Keras's
            epoch that way, 1.03 without, interleaved rounds). Hooks idle
            for now count as none only when idle for the whole run (the
            savers' when they save once an epoch).
            """
            self._find_calls()
            return not any(self._calls[hook] for hook in BATCH_END_HOOKS)

        def set_model(self, model):
            super().set_model(model)
            for callback in self.callbacks:
                callback.set_model(model)

        def set_params(self, params):
            super().set_params(params)
            for callback in self.callbacks:
                callback.set_params(params)

    def forwarding(hook):
        def call(self, *args, **kwargs):
            for callback in self._calls[hook]:
                getattr(callback, hook)(*args, **kwargs)

        def begin(self, *args, **kwargs):
            self._find_calls()
            call(self, *args, **kwargs)

        forward = begin if hook in ("on_train_begin", "on_epoch_begin") else call
        forward.__name__ = forward.__qualname__ = hook
        return forward

    for hook in HOOKS:
        setattr(RunCallbacks, hook, forwarding(hook))
    return RunCallbacks
