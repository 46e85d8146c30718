"""Option groups: a set of `Arg`s sharing a flag prefix, optionally switched on by a flag."""

import dataclasses
from typing import Any, Mapping, Tuple

from kerasrun.core.options import Arg, Bool


@dataclasses.dataclass(frozen=True)
class OptionGroup:
    """Options that belong together.

    Args:
        name: The flag prefix ("early_stopping"); empty for the core options.
        title: A short heading for help and README.
        summary: One sentence on what the group does.
        args: The group's options, in the order they are documented.
        switchable: If True, `--<name>` (default off) enables the group.
        worker_overrides: What a worker other than the chief of a multi-worker
            run changes, as {option name: value} (the group's own name for its
            switch): the paths the user chose, each falling back to the
            worker's scratch directory, and anything reported, which the
            chief alone reports.
        switch_bookkeeping: If True the switch (`--<name>`) is bookkeeping
            (see Arg): turning the group on or off changes where a run
            reports, not what it trains.
    """

    name: str
    title: str
    summary: str
    args: Tuple[Arg, ...]
    switchable: bool = False
    worker_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    switch_bookkeeping: bool = False

    def flag_name(self, arg_name):
        """Returns the full flag name of one of the group's options."""
        return f"{self.name}_{arg_name}" if self.name else arg_name

    def options(self):
        """Yields (flag name, Arg) for every flag the group defines."""
        if self.switchable:
            yield self.name, self.enable_arg()
        for arg in self.all_args():
            yield self.flag_name(arg.name), arg

    def all_args(self):
        """Returns every option of the group (subclasses may add to `args`)."""
        return self.args

    def enable_arg(self):
        """Returns the Arg of the flag that switches the group on."""
        return Arg(self.name, Bool(), False, f"Enable {self.title}.", bookkeeping=self.switch_bookkeeping)

    def worker_values(self):
        """Returns {flag name: value} for the group's `worker_overrides`."""
        return {(name if self.switchable and name == self.name else self.flag_name(name)): value
                for name, value in self.worker_overrides.items()}

    def values(self, config):
        """Returns {arg name: value} for this group from a resolved config."""
        return {arg.name: config[self.flag_name(arg.name)] for arg in self.all_args()}
