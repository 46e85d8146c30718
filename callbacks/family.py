"""The declaration of a callback family: flags, Keras class, checks and construction."""

import dataclasses
from typing import Any, Callable, Mapping, Optional, Tuple

from kerasrun.core.groups import OptionGroup
from kerasrun.core.options import Arg


def default_in_run_dir(arg_name, *parts):
    """Returns an `in_run_dir` hook that puts a path left unset at `parts` inside the run's directory."""

    def in_run_dir(values, run):
        if values[arg_name] is None:
            values[arg_name] = run.path(*parts)
        return values

    return in_run_dir


def saves_every(flag):
    """Returns a family's `batch_needs` for a save_freq option: every N batches when it is a number."""

    def batch_needs(values):
        every = values["save_freq"]
        return None if every == "epoch" else (every, f"{flag} saves every {every} batches")

    return batch_needs


@dataclasses.dataclass(frozen=True)
class CallbackFamily(OptionGroup):
    """A flag group that builds one Keras callback.

    `args` are the Keras class's own arguments, one flag each (for a family
    whose class is only ours, that class's); `settings` are further options
    of the group that the runner uses itself.

    Args:
        keras_class: Name of the class in `keras.callbacks`; its arguments
            and defaults are the group's flags. Empty for a family whose
            class is only ours (`subclass`, a `keras.callbacks.Callback`).
        subclass: Optional `module:Class` of our own subclass of the Keras
            class, built in its place where the Keras class needs a fix; or,
            without `keras_class`, our own class, whose arguments are `args`.
            Its module may import Keras (not what only the family's use
            needs): it is loaded to build callbacks and to tell them apart.
        subclass_args: Options our subclass takes as keyword arguments
            beyond those of the Keras class.
        run_kwargs: Optional `run_kwargs(values, run, config)` returning
            further keyword arguments of our subclass that are no option, such
            as a file in the run's directory (`run`, its RunPaths; `config`,
            the whole resolved config).
        settings: Options of the group that are not arguments of the class.
        check: Optional `check(family, values, checker)` for rules that
            involve several options or the rest of the config; raises
            UsageError through `checker.fail`.
        external_check: Optional `external_check(family, values, checker)`
            for what only a service outside the process can confirm (a
            database): run once by train.py (a run, and --dry_run) after
            every other check has passed, not by `resolve`, so that a
            sweep can check its flags before that service holds anything.
        in_run_dir: Optional `in_run_dir(values, run)` returning the values
            with the paths left unset put inside the run's directory (`run`,
            its RunPaths). It loads nothing, so --dry_run shows its paths too.
        adapt: Optional `adapt(values, run, config)` returning the values with
            the other flag forms turned into what Keras takes (a schedule name
            into a function, ...); `config` is the whole resolved config.
        logged_keys: Keys the callback adds to the epoch logs, so that other
            callbacks may monitor them.
        optimizer_options: Optional `optimizer_options(values)` returning
            keyword arguments the optimizer needs for this callback to work.
        resume_state: Attributes of the built callback that hold its
            progress (a patience count, the best value so far): kept with
            every backup and restored when the run resumes.
        resume_overrides: {option name: value} for the callback of a resumed
            run (a log that goes on appending to the first part's file).
        on_resume: Optional `on_resume(callback, epochs)` called when the run
            resumes from a backup made after `epochs` finished epochs, once
            the built callback's `on_train_begin` has run: it drops what the
            callback wrote after that backup (a stop between an epoch's row and
            its backup), so that the resumed run does not write it twice.
        report: Optional `report(callback, record, paths)` called once the
            run's results.json is written (`record`, what it holds; `paths`,
            the run's RunPaths), for a callback that reports the run's end
            elsewhere. It returns {key: value} to add to the record, which
            results.json is then written with (and the --results_file line),
            or None.
        closes_on_interrupt: Whether the callback's `on_train_end` must run
            when training is interrupted, to close the files it writes.
        idle_hooks: Optional `idle_hooks(callback)` returning the names of the
            built callback's hooks that have nothing to do under its
            settings; the runner does not call them (runner/dispatch.py).
        batch_needs: Optional `batch_needs(values)` returning (every, why)
            when the callback acts on batches under its options: it must see
            every batch (`every` 1) or every `every`-th batch, counted over
            the whole run; `why` says so in a few words. None when it acts
            on epochs only. `--steps_per_execution auto` runs as many steps
            per call as keeps those batches visible (callbacks/stepping.py).
    """

    keras_class: str = ""
    subclass: str = ""
    subclass_args: Tuple[Arg, ...] = ()
    run_kwargs: Optional[Callable] = None
    settings: Tuple[Arg, ...] = ()
    check: Optional[Callable] = None
    external_check: Optional[Callable] = None
    in_run_dir: Optional[Callable] = None
    adapt: Optional[Callable] = None
    logged_keys: Tuple[str, ...] = ()
    optimizer_options: Optional[Callable] = None
    resume_state: Tuple[str, ...] = ()
    resume_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_resume: Optional[Callable] = None
    report: Optional[Callable] = None
    closes_on_interrupt: bool = False
    idle_hooks: Optional[Callable] = None
    batch_needs: Optional[Callable] = None
    switchable: bool = True

    def all_args(self):
        return self.args + self.subclass_args + self.settings

    def class_args(self):
        """Returns the options the built class takes: the Keras class's, then our subclass's own."""
        return self.args + self.subclass_args

    def keras_kwargs(self, values, run, config):
        """Returns the keyword arguments for the Keras class (or, without one, of our class's `args`)."""
        adapted = self.with_run_paths(values, run)
        adapted = self.adapt(adapted, run, config) if self.adapt else adapted
        return {arg.name: adapted[arg.name] for arg in self.args}

    def with_run_paths(self, values, run):
        """Returns a copy of `values` with the paths left unset inside the run's directory."""
        return self.in_run_dir(dict(values), run) if self.in_run_dir else dict(values)

    def class_kwargs(self, values, run, config):
        """Returns the keyword arguments for the class built: the Keras class's and our subclass's own."""
        return {**self.keras_kwargs(values, run, config), **{arg.name: values[arg.name] for arg in self.subclass_args},
                **(self.run_kwargs(values, run, config) if self.run_kwargs else {})}
