"""A tiny name -> builder registry shared by models, datasets and schedules."""

from kerasrun.core.errors import UsageError


class Registry:
    """Maps names to builder functions.

    Args:
        kind: What the registry holds, used in messages ("model", "dataset").
        flag: The flag whose value is looked up, used in messages ("--model").
    """

    def __init__(self, kind, flag):
        self.kind = kind
        self.flag = flag
        self._entries = {}

    def register(self, name):
        """Decorator that registers a function under `name`.

        Raises:
            ValueError: if `name` is already registered (a programming error).
        """

        def decorate(function):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = function
            return function

        return decorate

    def names(self):
        """Returns the registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def get(self, name):
        """Returns the function registered under `name`.

        Raises:
            UsageError: naming the flag, the value and the names that exist.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise UsageError(
                f"{self.flag}={name!r}: unknown {self.kind}; "
                f"known: {', '.join(self.names())}"
            ) from None
