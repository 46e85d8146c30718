"""The run's callbacks handed to Keras as one, so that each step calls only the hooks that do something.

Keras's `fit` calls every hook of every callback it holds: before and after
each of the thousands of steps of an epoch, it calls each callback's
`on_train_batch_begin` and `on_train_batch_end`, most of them Keras's own
do-nothing defaults. With the benchmark's ten epoch-level callbacks those
calls were about a third of what the callbacks cost per epoch. `combined` gives
Keras one callback instead, which calls, for each hook, only the callbacks
that define it, in their order.
"""

import functools

# Every hook Keras's CallbackList calls (on_batch_* are the legacy names of on_train_batch_*).
HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end",
         "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")
# Keras's default for these calls the legacy name: a callback defining only that needs the call.
_LEGACY = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


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


def defines(callback, hook):
    """Whether `hook` of `callback` can do anything: not keras.callbacks.Callback's empty default.

    A hook set on the instance (LambdaCallback does) counts as defined.
    """
    import keras

    names = (hook, _LEGACY[hook]) if hook in _LEGACY else (hook,)
    return any(getattr(getattr(callback, name), "__func__", None) is not getattr(keras.callbacks.Callback, name)
               for name in names)


@functools.cache
def _combined_class():
    """Returns the Callback class `combined` builds (made once, when Keras is first needed)."""
    import keras

    class RunCallbacks(keras.callbacks.Callback):
        """The run's callbacks, in order; each hook calls those that define it.

        The hook is looked up on each callback at every call, so that one
        replaced on the instance after this was built (as the benchmark's
        clocks do) is the one called.
        """

        def __init__(self, callbacks):
            super().__init__()
            self.callbacks = list(callbacks)
            self._calls = {hook: [c for c in self.callbacks if defines(c, hook)] for hook in HOOKS}

        def set_model(self, model):
            super().set_model(model)
            for callback in self.callbacks:
                callback.set_model(model)

        def set_params(self, params):
            super().set_params(params)
            for callback in self.callbacks:
                callback.set_params(params)

    def forwarding(hook):
        def forward(self, *args, **kwargs):
            for callback in self._calls[hook]:
                getattr(callback, hook)(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = hook
        return forward

    for hook in HOOKS:
        setattr(RunCallbacks, hook, forwarding(hook))
    return RunCallbacks
