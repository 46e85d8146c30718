"""Optuna trial: report each epoch to a trial of an Optuna study, which may prune the run.

scripts/sweep.py passes these flags to each run it starts for a trial; they
are not normally typed by hand. Every flag is bookkeeping: a trial retried
under another number resumes the interrupted run's directory.
"""

import os

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.callbacks.monitor import check_monitor
from kerasrun.core import study
from kerasrun.core.errors import UsageError
from kerasrun.core.options import Arg, Choice, Int, Str, at_least, optional, when

# The trial's state a run may report to: asked by the sweep and not yet ended.
RUNNING = "RUNNING"


def _check(family, values, checker):
    """Requires the trial's storage, study and number; refuses a multi-worker run and a monitor never logged."""
    for name, what in (("storage", "the study's database URL"), ("study", "the study's name"),
                       ("trial", "the trial's number in the study")):
        if values[name] in ("", None):
            raise UsageError(f"{checker.flag_label(family.flag_name(name))}: is required with --{family.name} "
                             f"True: {what} (scripts/sweep.py passes it to each trial's run)")
    if checker.values["distribution_strategy"] == "multi_worker_mirrored":
        checker.fail("distribution_strategy", f"multi_worker_mirrored cannot run with --{family.name} True: "
                                              "only one process may report to a trial; train on one machine")
    if values["monitor"]:
        check_monitor(family, values, checker)


def _check_trial(family, values, checker):
    """Refuses a storage that cannot be opened, a study it does not hold, or a trial that is not RUNNING."""
    storage_flag, study_flag, trial_flag = (family.flag_name(name) for name in ("storage", "study", "trial"))
    _check_database_file(values["storage"], storage_flag, checker)
    storage = study.open_storage(values["storage"], storage_flag)
    try:
        name, number = values["study"], values["trial"]
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            held = sorted(summary.study_name for summary in storage.get_all_studies())
            checker.fail(study_flag, f"no such study in {study.shown_url(values['storage'])} (it holds "
                                     f"{', '.join(map(repr, held[:5])) + (', ...' if len(held) > 5 else '') or 'none'})")
        if len(storage.get_study_directions(study_id)) != 1:
            checker.fail(study_flag, "has several objectives; a run reports one value")
        trial_id = study.trial_id(storage, name, number)
        if trial_id is None:
            checker.fail(trial_flag, f"study {name!r} has no trial {number} (it has "
                                     f"{storage.get_n_trials(study_id)})")
        state = storage.get_trial(trial_id).state.name
        if state != RUNNING:
            checker.fail(trial_flag, f"trial {number} of study {name!r} is {state}: a run reports only to a "
                                     "RUNNING trial, one the sweep has asked for and not yet ended")
    finally:
        study.close_storage(storage)


def _check_database_file(url, flag, checker):
    """Refuses an SQLite database that does not exist, which opening it would create (empty)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # open_storage says so.
    if parsed.get_backend_name() != "sqlite":
        return
    label = f"{checker.flag_label(flag)}={study.shown_url(url)}"
    if parsed.database in (None, "", ":memory:"):
        raise UsageError(f"{label}: an in-memory database holds no study of the sweep's; give its database file")
    if not os.path.isfile(parsed.database):
        raise UsageError(f"{label}: no database file {parsed.database}: the sweep creates it, with the study")


def _adapt(values, run, config):
    """Puts the quantity the run's results rank epochs by in place of an empty monitor, where the config says it.

    That is early stopping's monitor, else the checkpoint's; otherwise it
    stays empty, and the callback takes val_loss when logged, else loss.
    """
    if not values["monitor"] and (config["early_stopping"] or config["model_checkpoint"]):
        group = "early_stopping" if config["early_stopping"] else "model_checkpoint"
        values["monitor"] = config[f"{group}_monitor"]
    return values


FAMILY = CallbackFamily(
    name="optuna",
    title="Optuna trial",
    summary="Report the monitored quantity after every epoch to a trial of an Optuna study, whose pruner may "
            "stop the run (status pruned, exit 4), and tell the study how the run ended. scripts/sweep.py "
            "passes these flags to each trial's run; every one is bookkeeping.",
    subclass="kerasrun.callbacks.subclasses.optuna:OptunaTrial",
    args=(
        Arg("storage", Str(), "",
            "Database URL of the study (sqlite:///sweep.db, postgresql://user@host/db). Secret: never saved, "
            "and printed with its password hidden.", secret=True, bookkeeping=True),
        Arg("study", Str(), "", "Name of the study in the storage.", bookkeeping=True),
        Arg("trial", Int(optional=True), None, "Number of the trial in the study, which must be RUNNING.",
            optional(at_least(0)), bookkeeping=True),
        Arg("monitor", Str(), "",
            "Quantity reported each epoch, as logged; empty: the one the results rank epochs by (early "
            "stopping's monitor, else the checkpoint's, else val_loss when logged, else loss).",
            bookkeeping=True),
        Arg("pruner", Choice(*study.PRUNERS), "none",
            "Optuna's pruner that decides, after each epoch, whether the run stops: median, hyperband or none.",
            bookkeeping=True),
        Arg("pruner_startup_trials", Int(), 5,
            "Finished trials the median pruner waits for before it prunes any.", at_least(0), bookkeeping=True,
            applies=when("optuna_pruner", ("median",), "--optuna_pruner median")),
        Arg("pruner_warmup_epochs", Int(), 0,
            "Epochs of each run that are never pruned (hyperband: its least resource, at least 1).",
            at_least(0), bookkeeping=True,
            applies=when("optuna_pruner", ("median", "hyperband"), "--optuna_pruner median or hyperband")),
    ),
    check=_check,
    external_check=_check_trial,
    adapt=_adapt,
    switch_bookkeeping=True,
)
