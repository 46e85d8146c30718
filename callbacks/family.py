"""The declaration of a callback family: flags, Keras class, checks and construction."""

import dataclasses
from typing import Callable, Optional, Tuple

from runner.groups import OptionGroup


@dataclasses.dataclass(frozen=True)
class CallbackFamily(OptionGroup):
    """A flag group that builds one Keras callback.

    Args:
        keras_class: Name of the class in `keras.callbacks`.
        check: Optional `check(values, checker)` for rules that involve several
            arguments or the rest of the config; raises UsageError.
        adapt: Optional `adapt(values, run)` returning the keyword arguments for
            the Keras class, for arguments whose flag form differs from what
            Keras takes (default paths inside the run directory, for example).
        logged_keys: Keys the callback adds to the epoch logs, so that other
            callbacks may monitor them.
    """

    keras_class: str = ""
    check: Optional[Callable] = None
    adapt: Optional[Callable] = None
    logged_keys: Tuple[str, ...] = ()
    switchable: bool = True

    def keras_kwargs(self, values, run):
        """Returns the keyword arguments for the Keras class."""
        return self.adapt(dict(values), run) if self.adapt else dict(values)
