"""Ranks the runs in a results file (one JSON record per line) by a metric.

    python scripts/summarize.py sweep.jsonl --metric val_loss --top 5
    python scripts/summarize.py tensorboard_logs/*/results.json

Runs' own results.json files (one indented record each) are read too.

The metric is read from each record's `final` (the last epoch's logs),
or its `test` block for `test_<metric>`; `--metric best` ranks by
`best.value`, the best epoch of the monitored quantity. When runs have a
test score, the test counterpart of the ranked metric shows beside it
(ranked by val_accuracy, test_accuracy). The table shows rank, run_name, status, epochs_completed, the
metric, wall_time_s and the hyperparameters that differ between the runs.
Runs without the metric (failed ones, say) come last, shown as `-`. A
malformed line (a sweep killed while writing) is skipped with a warning.
A run written twice (interrupted, then resumed in its own directory) counts
once, by its latest record.

A sweep's Optuna study is read instead of results files with --storage
(and --study, needed only when the storage holds more than one):

    python scripts/summarize.py --storage sqlite:///sweep.db
    python scripts/summarize.py --storage postgresql://me@db.example/sweeps --study lr-search
    python scripts/summarize.py --storage sqlite:///sweep.db --plot history,importance --plot_dir plots

A study's table ranks its complete trials by their value, the study's
objective (its column is named after the metric the sweep optimized, the best
epoch's value), in the study's direction; pruned, failed, running and waiting
trials follow in trial order, a pruned one with its best epoch before it was
stopped. It adds the trial's number, and shows the parameters that differ
between trials. A failed trial that Optuna retried shows as its retry only.
--plot history|importance|parallel|slice (repeated, or comma-separated)
writes Optuna's matplotlib plots of the study to --plot_dir (default: here)
as <study>-<kind>.png and prints their paths instead of the table; a plot
that cannot be drawn (importance needs two complete trials and a parameter
that varies) is refused.

Exit status: 0, or 2 when the file is missing, holds no usable record, the
storage cannot be read or holds no such study, a plot cannot be drawn, or an
option is wrong.
"""

import argparse
import csv
import io
import json
import math
import os
import runpy
import sys
import time

runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__init__.py"))

from kerasrun.cli.config import bookkeeping_flags  # noqa: E402
from kerasrun.core.errors import USAGE_EXIT_CODE, UsageError  # noqa: E402
from kerasrun.core.losses_metrics import direction  # noqa: E402
from kerasrun.core.study import SWEEP_ATTR, reason, retry_history, shown_url  # noqa: E402

_FIXED_COLUMNS = ("rank", "run_name", "status", "epochs_completed")
_MISSING = "-"
# --plot's kinds and the function of optuna.visualization.matplotlib drawing each.
_PLOTS = {"history": "plot_optimization_history", "importance": "plot_param_importances",
          "parallel": "plot_parallel_coordinate", "slice": "plot_slice"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    """Returns the argument parser."""
    parser = _Parser(prog="summarize.py", description=__doc__, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_files", nargs="*", metavar="RESULTS_FILE",
                        help="JSON-lines file(s) written by train.py --results_file, or runs' results.json "
                             "(tensorboard_logs/*/results.json).")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="Read an Optuna study instead of results files: its storage's database URL "
                             "(sqlite:///sweep.db, postgresql://user@host/database).")
    parser.add_argument("--study", default=None, metavar="NAME",
                        help="The study to read from --storage. Default: its only study.")
    parser.add_argument("--plot", action="append", default=None, metavar="KIND,...",
                        help=f"With --storage: write these plots of the study ({', '.join(_PLOTS)}) as PNG files "
                             f"instead of printing the table. Repeatable.")
    parser.add_argument("--plot_dir", default=None, metavar="DIR",
                        help="Where --plot writes <study>-<kind>.png. Default: the current directory.")
    parser.add_argument("--metric", default="auto",
                        help="A key of the records' `final` logs, or `best` for best.value; auto is val_accuracy "
                             "when the records log it (classification), else best (a regression ranks by its "
                             "monitored val_loss). Default: auto.")
    parser.add_argument("--mode", default="auto", choices=("max", "min", "auto"),
                        help="Whether higher (max) or lower (min) is better; auto decides as Keras does: "
                             "a loss falls, a metric goes the way Keras says it does (with --metric best, "
                             "the way the run ranked it). Default: auto.")
    parser.add_argument("--top", default=None, metavar="K", help="Show only the best K runs. Default: all.")
    parser.add_argument("--columns", default=None, metavar="NAME,...",
                        help="The hyperparameters (or final metrics) to show, comma-separated. "
                             "Default: the hyperparameters that differ between the runs.")
    parser.add_argument("--format", default="table", choices=("table", "csv", "json"),
                        help="Output format. Default: table.")
    return parser


def read_records(path):
    """Returns the records of a results file, warning about and skipping malformed lines.

    Args:
        path: A JSON-lines file (--results_file), or one run's results.json
            (a single record, indented).

    Raises:
        UsageError: The file cannot be read.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror.lower()}") from None
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, dict):  # a run's results.json, in the run's directory
        return [_located(record, os.path.dirname(os.path.abspath(path))) for record in _usable([(path, whole)])]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            _warn(f"{path}:{number}: skipped, not valid JSON ({type(error).__name__}: {str(error)[:80]})")
            continue
        records.append((f"{path}:{number}", record))
    here = os.path.dirname(os.path.abspath(path))  # Where a sweep writing this file ran, most likely.
    return [_located(record, os.path.join(here, record["run_dir"]) if isinstance(record.get("run_dir"), str) else None)
            for record in _usable(records)]


# Where a record's run directory is on disk: two sweeps run in different folders both have a
# tensorboard_logs/run-0, which are different runs.
_RUN_KEY = "_run_directory"


def _located(record, run_directory):
    return {**record, _RUN_KEY: os.path.normpath(run_directory)} if run_directory else record


# The fields summarize reads, and the JSON types a results record holds them in.
_FIELD_TYPES = {"run_name": str, "run_dir": str, "status": str, "final": dict, "hparams": dict,
                "best": (dict, type(None))}


def _usable(located):
    """Returns the records of (where, record) pairs that have a results record's shape, warning about the others."""
    usable = []
    for where, record in located:
        problem = _malformed(record)
        if problem:
            _warn(f"{where}: skipped, {problem}")
        else:
            usable.append(record)
    return usable


def _malformed(record):
    if not isinstance(record, dict):
        return "not a JSON object"
    for field, kinds in _FIELD_TYPES.items():
        if field in record and not isinstance(record[field], kinds):
            return f"not a results record ({field} is a {type(record[field]).__name__})"
    best = record.get("best") or {}
    if not isinstance(best.get("monitor", ""), str) or best.get("mode", "min") not in ("min", "max"):
        return "not a results record (best has no monitor name or no min/max mode)"
    for name, value in [*(record.get("final") or {}).items(), ("best value", best.get("value"))]:
        if isinstance(value, int) and abs(value) > 2**64:  # results.json holds floats; no float is this large.
            return f"not a results record ({name} is an integer of {len(str(abs(value)))} digits)"
    return None


def latest_per_run(records):
    """Keeps the last record of each run directory, where it first appeared.

    A run interrupted and then resumed writes a record each time; the later
    one is the run's outcome.
    """
    position, latest = {}, []
    for record in records:
        key = record.get(_RUN_KEY, record.get("run_dir"))
        if key is None:
            latest.append(record)
        elif key in position:
            latest[position[key]] = record
        else:
            position[key] = len(latest)
            latest.append(record)
    return latest


def metric_of(record, metric):
    """Returns the record's value of `metric` (a number, a string such as "nan", or None if absent)."""
    if metric == "best":
        best = record.get("best")
        return best.get("value") if isinstance(best, dict) else None
    return _logs(record).get(metric)


def _logs(record):
    """The record's final logs and its test metrics (as test_<name>), by name."""
    final, test = record.get("final"), record.get("test")
    return {**(final if isinstance(final, dict) else {}),
            **({f"test_{key}": value for key, value in test.items()} if isinstance(test, dict) else {})}


def paired_test_column(records, metric, best=None):
    """Returns the test counterpart of the ranked metric (test_accuracy for val_accuracy), when a record has it."""
    name = (best["monitor"] if metric == "best" and best else metric).removeprefix("val_")
    column = f"test_{name}"
    return column if column != metric and any(column in _logs(record) for record in records) else None


def _rankable(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # An integer beyond any float: no metric Keras logs.
        return False


def first_best(records):
    """Returns the first record's `best` (the quantity it tracks and how), warning if the records disagree; or None."""
    bests = [record["best"] for record in records
             if isinstance(record.get("best"), dict) and record["best"].get("monitor")]
    monitors = list(dict.fromkeys(best["monitor"] for best in bests))
    if len(monitors) > 1:
        _warn(f"the records' best values watch different quantities ({', '.join(monitors)}); "
              f"ranking them together anyway, as {monitors[0]}")
    return bests[0] if bests else None


def resolve_mode(metric, mode, best=None):
    """Returns "min" or "max".

    Args:
        metric: The metric's name.
        mode: "min", "max" or "auto": Keras's own rule (a loss falls, a compiled
            metric goes the way Keras says it does).
        best: For `--metric best`, a record's `best`: the quantity it tracks and
            the direction the run itself ranked it by.

    Raises:
        UsageError: auto for a quantity whose direction Keras does not know.
    """
    if mode != "auto":
        return mode
    if metric == "best" and best:
        return best.get("mode") or direction(best["monitor"]) or _unknown_direction(best["monitor"])
    return direction(metric.removeprefix("test_")) or _unknown_direction(metric)


def _unknown_direction(name):
    raise UsageError(f"--mode=auto: cannot tell whether {name!r} should fall or rise; pass --mode min or max")


def check_metric(records, metric):
    """Refuses a metric that no record logs, when the records do log others (likely a typo).

    Raises:
        UsageError: Naming the metric and listing the ones the records have.
    """
    if any(metric_of(record, metric) is not None for record in records):
        return
    logged = sorted({key for record in records for key in _logs(record)})
    if not logged:
        return  # No run finished an epoch: the table shows that, with `-` for every metric.
    if metric == "best":
        raise UsageError(f"--metric=best: no record has a best value; the records log: {', '.join(logged)}")
    raise UsageError(f"--metric={metric}: no record logs it; the records have: {', '.join(logged)} (or best)")


def differing_hparams(records):
    """Returns the hyperparameters whose values are not the same in every record, in flag order."""
    names = []
    for record in records:
        for name in _hparams(record):
            if name not in names and name not in bookkeeping_flags():
                names.append(name)
    return [name for name in names
            if len({(name in _hparams(record), json.dumps(_hparams(record).get(name), sort_keys=True))
                    for record in records}) > 1]


# Fields of a record (beside its hparams and final logs) that --columns may name and that show when they differ.
_RECORD_COLUMNS = ("trainable_parameters",)


def differing_fields(records):
    """Returns the record fields of `_RECORD_COLUMNS` (the model's size) whose values differ between records."""
    return [name for name in _RECORD_COLUMNS if len({json.dumps(record.get(name)) for record in records}) > 1]


def chosen_columns(records, listed):
    """Returns the extra columns named by --columns, checking each exists in some record.

    Args:
        records: The records.
        listed: The --columns text, comma-separated ('' for none).

    Raises:
        UsageError: A name found in no record's hparams or final logs.
    """
    columns = [name.strip() for name in listed.split(",") if name.strip()]
    for name in columns:
        if not any(name in _hparams(record) or name in _logs(record)
                   or (name in _RECORD_COLUMNS and name in record) for record in records):
            known = sorted({key for record in records for key in _hparams(record)})
            raise UsageError(f"--columns={listed}: no record has {name!r}; hyperparameters: {', '.join(known)}")
    return columns


def _hparams(record):
    hparams = record.get("hparams")
    return hparams if isinstance(hparams, dict) else {}


def rank(records, metric, mode):
    """Returns the records in ranked order, paired with their rank (None for the unranked, who come last)."""
    ranked = [record for record in records if _rankable(metric_of(record, metric))]
    unranked = [record for record in records if not _rankable(metric_of(record, metric))]
    ranked.sort(key=lambda record: metric_of(record, metric), reverse=mode == "max")  # sort is stable.
    return [(place, record) for place, record in enumerate(ranked, 1)] + [(None, record) for record in unranked]


def build_rows(ranked, metric, metric_header, columns):
    """Returns the header and one row of raw values (None where missing) per ranked record."""
    header = [*_FIXED_COLUMNS, metric_header, "wall_time_s", *columns]
    rows = []
    for place, record in ranked:
        extra = [_hparams(record).get(name, _logs(record).get(name, record.get(name)
                                                              if name in _RECORD_COLUMNS else None))
                 for name in columns]
        rows.append([place, record.get("run_name"), record.get("status"), record.get("epochs_completed"),
                     metric_of(record, metric), record.get("wall_time_s"), *extra])
    return header, rows


def _text(value, float_format=None):
    """Returns a cell's text: floats as `float_format`, or as Python writes them (0.001, 1e-05)."""
    if value is None:
        return _MISSING
    if isinstance(value, str) and not value.isprintable():  # A line break or a terminal code would break the table.
        return value.encode("unicode_escape").decode("ascii")
    if isinstance(value, float) and float_format:
        return format(value, float_format)
    if isinstance(value, list):
        return ",".join(_text(item, float_format) for item in value)
    return str(value)


def format_table(header, rows, metric_column, float_formats=None):
    """Returns the rows as an aligned plain-text table, numbers right-aligned.

    Args:
        float_formats: The format of other columns' floats, by column index.
    """
    # Five digits tell close runs apart; tenths of a second are enough for wall time.
    float_formats = {**(float_formats or {}), metric_column: ".5g", header.index("wall_time_s"): ".1f",
                     **{column: ".5g" for column, name in enumerate(header) if name.startswith("test_")}}
    cells = [[_text(value, float_formats.get(column)) for column, value in enumerate(row)] for row in rows]
    numeric = [all(isinstance(row[column], (int, float)) and not isinstance(row[column], bool)
                   for row in rows if row[column] is not None)
               for column in range(len(header))]
    widths = [max(len(text) for text in [name, *(row[column] for row in cells)])
              for column, name in enumerate(header)]

    def line(texts):
        return "  ".join(text.rjust(width) if right else text.ljust(width)
                         for text, width, right in zip(texts, widths, numeric)).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *(line(row) for row in cells)]) + "\n"


def format_csv(header, rows):
    """Returns the rows as CSV (lists joined by commas, missing values empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else _text(value) for value in row])
    return out.getvalue()


def format_json(header, rows):
    """Returns the rows as a JSON list of objects, values as in the records."""
    return json.dumps([dict(zip(header, row)) for row in rows], indent=2) + "\n"


# ---------------------------------------------------------------- an Optuna study (--storage)

# How long summarize.py keeps trying to reach a database server that does not answer.
_CONNECT_SECONDS = 5


def check_study_options(options):
    """Checks --storage, --study, --plot and --plot_dir against each other and the results files.

    Returns:
        The plot kinds asked for, in order, without repeats.

    Raises:
        UsageError: Naming the option that does not fit.
    """
    if options.storage is not None and options.results_files:
        raise UsageError(f"--storage: reads a study instead of results files; give either "
                         f"{' '.join(options.results_files)} or --storage, not both")
    if options.storage is None:
        for name in ("study", "plot", "plot_dir"):
            if getattr(options, name) is not None:
                raise UsageError(f"--{name}: needs --storage (plots and studies are read from an Optuna study's "
                                 f"storage; a results file has none)")
        if not options.results_files:
            raise UsageError("give a results file (RESULTS_FILE), or an Optuna study's --storage URL")
        return []
    if options.storage.strip() == "":
        raise UsageError("--storage: empty; give a database URL such as sqlite:///sweep.db")
    kinds = []
    for text in options.plot or []:
        for kind in (part.strip() for part in text.split(",")):
            if kind not in _PLOTS:
                raise UsageError(f"--plot={text}: unknown plot {kind!r}; choose from {', '.join(_PLOTS)}")
            if kind not in kinds:
                kinds.append(kind)
    if options.plot_dir is not None and not kinds:
        raise UsageError("--plot_dir: only with --plot")
    return kinds


def open_storage(url):
    """Returns the Optuna storage at `url`, having checked it is a reachable database holding Optuna's tables.

    Nothing is written: a missing SQLite file is refused, not created, and
    neither are Optuna's tables in an empty database.

    Raises:
        UsageError: Naming --storage: a malformed URL, a database driver that
            is not installed, a server that does not answer within a few
            seconds, or a database without studies.
    """
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UsageError(f"--storage={url}: not a database URL; give one such as sqlite:///sweep.db or "
                         f"postgresql://user@host/database") from None
    shown = shown_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        if parsed.database in (None, "", ":memory:"):
            raise UsageError(f"--storage={shown}: an in-memory database holds no study; name the file, "
                             f"sqlite:///sweep.db")
        if not os.path.isfile(parsed.database):
            raise UsageError(f"--storage={shown}: no such file {parsed.database}")
    engine_kwargs = {}
    if parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"connect_args": {"connect_timeout": 2}}  # Seconds, for a host that does not answer.
    try:
        engine = sqlalchemy.create_engine(parsed, **engine_kwargs)
    except (sqlalchemy.exc.NoSuchModuleError, sqlalchemy.exc.ArgumentError) as error:
        raise UsageError(f"--storage={shown}: {reason(error)}") from None
    except ImportError as error:
        raise UsageError(f"--storage={shown}: its database driver is not installed ({error.name or error}); "
                         f"pip install it (psycopg[binary] for postgresql)") from None
    deadline = time.monotonic() + _CONNECT_SECONDS
    try:
        while True:
            try:
                tables = sqlalchemy.inspect(engine).get_table_names()
                break
            except sqlalchemy.exc.OperationalError as error:
                if sqlite or time.monotonic() > deadline:  # A file that cannot be read does not get better.
                    raise UsageError(f"--storage={shown}: cannot read it: {reason(error)}") from None
                time.sleep(0.5)
            except sqlalchemy.exc.SQLAlchemyError as error:
                raise UsageError(f"--storage={shown}: cannot read it: {reason(error)}") from None
    finally:
        engine.dispose()
    if "studies" not in tables:
        raise UsageError(f"--storage={shown}: holds no Optuna study (no studies table)")
    import optuna

    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=True)
    except (RuntimeError, sqlalchemy.exc.SQLAlchemyError) as error:  # RuntimeError: an older Optuna's schema.
        raise UsageError(f"--storage={shown}: {reason(error)}") from None


def load_study(storage, url, name):
    """Returns the study called `name` in `storage`, or its only study when `name` is None.

    Raises:
        UsageError: No such study (listing those there are), a storage holding
            several and none named, or a study of several objectives.
    """
    import optuna

    names = sorted(optuna.study.get_all_study_names(storage))
    if not names:
        raise UsageError(f"--storage={shown_url(url)}: holds no study")
    if name is None:
        if len(names) > 1:
            raise UsageError(f"--study: the storage holds {len(names)} studies; name one: {', '.join(names)}")
        name = names[0]
    elif name not in names:
        raise UsageError(f"--study={name}: no such study; the storage holds: {', '.join(names)}")
    study = optuna.load_study(study_name=name, storage=storage)
    if len(study.directions) > 1:
        raise UsageError(f"--study={name}: has {len(study.directions)} objectives; summarize.py ranks a study "
                         f"of one")
    return study


def study_conventions(study):
    """Returns the study's objective: (metric name, "max" or "min", search), from what sweep.py stored in it.

    A study that sweep.py did not make (no `kerasrun` user attribute) ranks by
    `value` in its own direction.
    """
    import optuna

    attrs = study.user_attrs.get(SWEEP_ATTR)
    attrs = attrs if isinstance(attrs, dict) else {}
    metric = attrs.get("metric") if isinstance(attrs.get("metric"), str) and attrs.get("metric") else "value"
    mode = "max" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "min"
    return metric, mode, attrs.get("search") if isinstance(attrs.get("search"), str) else None


def trial_objective(trial, mode):
    """The trial's objective: its value, or for a pruned trial its best epoch before it was stopped."""
    import optuna

    if trial.state == optuna.trial.TrialState.PRUNED:
        values = [value for value in trial.intermediate_values.values() if _rankable(value)]
        if values:
            return max(values) if mode == "max" else min(values)
    return trial.value


def trial_record(trial, mode):
    """Returns a trial as a results record: what train.py reported (the trial's user attributes) and its params."""
    attrs = trial.user_attrs
    wall = None
    if trial.datetime_start and trial.datetime_complete:
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return {"trial": trial.number, "state": trial.state.name,
            "run_name": attrs.get("run_name"), "run_dir": attrs.get("run_dir"),
            "status": attrs.get("status") if isinstance(attrs.get("status"), str) else trial.state.name.lower(),
            "epochs_completed": attrs.get("epochs_completed"),
            "final": attrs.get("final") if isinstance(attrs.get("final"), dict) else {},
            "test": attrs.get("test") if isinstance(attrs.get("test"), dict) else None,
            "hparams": dict(trial.params), "objective": trial_objective(trial, mode), "wall_time_s": wall}


def shown_trials(trials):
    """Returns the trials to show: all but the failed ones that Optuna retried (their retry stands for them)."""
    retried = {number for trial in trials for number in retry_history(trial)}
    return [trial for trial in trials if trial.number not in retried]


def rank_trials(records, mode):
    """Returns (rank, record) pairs: complete trials by objective, then the others in trial order (rank None)."""
    complete = [record for record in records if record["state"] == "COMPLETE" and _rankable(record["objective"])]
    complete.sort(key=lambda record: record["objective"], reverse=mode == "max")  # Ties keep trial order.
    others = [record for record in records if not any(record is chosen for chosen in complete)]
    return [*enumerate(complete, 1), *((None, record) for record in others)]


def summarize_study(options, top, plots):
    """Returns the summary (or, with plots, the paths written) of the study --storage and --study name."""
    storage = open_storage(options.storage)
    study = load_study(storage, options.storage, options.study)
    metric, mode, search = study_conventions(study)
    if options.metric not in ("auto", metric):
        raise UsageError(f"--metric={options.metric}: a study ranks by its objective, {metric}; "
                         f"--columns {options.metric} shows another metric beside it")
    if options.mode not in ("auto", mode):
        raise UsageError(f"--mode={options.mode}: the study ranks in its own direction, {mode}")
    trials = study.get_trials(deepcopy=False)
    if plots:
        return write_plots(study, plots, metric, options.plot_dir or os.curdir)
    shown = shown_trials(trials)
    records = [trial_record(trial, mode) for trial in shown]
    test = paired_test_column(records, metric)
    columns = ([*([test] if test else []), *differing_hparams(records)]
               if options.columns is None else chosen_columns(records, options.columns))
    header = ["rank", "trial", "run_name", "status", "epochs_completed", metric, "wall_time_s", *columns]
    rows = [[place, record["trial"], record["run_name"], record["status"], record["epochs_completed"],
             record["objective"], record["wall_time_s"],
             *(_hparams(record).get(name, _logs(record).get(name)) for name in columns)]
            for place, record in rank_trials(records, mode)[:top]]
    if options.format == "csv":
        return format_csv(header, rows)
    if options.format == "json":
        return format_json(header, rows)
    better = "lower" if mode == "min" else "higher"
    retried = len(trials) - len(shown)
    title = (f"study {study.study_name}{f' ({search} search)' if search else ''}: {len(shown)} trial(s)"
             f"{f' ({retried} failed and retried, shown as their retry)' if retried else ''}, "
             f"ranked by {metric} ({better} is better)\n")
    # A sampled parameter has all a float's digits (0.0028050683208821867); four tell trials apart.
    sampled = {column: ".4g" for column, name in enumerate(header) if name in _hparams_union(records)}
    return title + format_table(header, rows, header.index(metric), sampled)


def _hparams_union(records):
    return {name for record in records for name in _hparams(record)}


def _plot_problem(kind, study):
    """Returns why `kind` cannot be drawn for the study, or None."""
    import optuna

    complete = [trial for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if _rankable(trial.value)]
    if not complete:
        return "the study has no complete trial yet"
    if kind == "history":
        return None
    shared = set(complete[0].params).intersection(*(trial.params for trial in complete))
    if not shared:
        return "the complete trials share no parameter"
    if kind != "importance":
        return None
    if len(complete) < 2:
        return f"needs at least 2 complete trials; the study has {len(complete)}"
    if not any(len({json.dumps(trial.params[name], sort_keys=True, default=str) for trial in complete}) > 1
               for name in shared):
        return f"needs a parameter that varies between the complete trials ({', '.join(sorted(shared))} do not)"
    return None


def write_plots(study, kinds, metric, directory):
    """Draws each of `kinds` with optuna.visualization.matplotlib into DIRECTORY/<study>-<kind>.png.

    Returns:
        The paths written, one a line.

    Raises:
        UsageError: A plot that cannot be drawn for this study (before any is
            written), or a --plot_dir that cannot be made.
    """
    for kind in kinds:
        problem = _plot_problem(kind, study)
        if problem:
            raise UsageError(f"--plot {kind}: cannot draw it: {problem}")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--plot_dir={directory}: {error.strerror.lower()}") from None
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # Files only: no window, no display needed.
    import matplotlib.pyplot as pyplot
    import numpy
    import optuna
    from optuna.visualization import matplotlib as plots

    safe_name = "".join(char if char.isalnum() or char in "._-" else "_" for char in study.study_name)
    paths = []
    for kind in kinds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = getattr(plots, _PLOTS[kind])(study, target_name=metric)
            except (ValueError, RuntimeError) as error:
                raise UsageError(f"--plot {kind}: cannot draw it: {reason(error)}") from None
        figure = numpy.ravel(axes)[0].figure  # plot_slice gives one Axes per parameter.
        path = os.path.join(directory, f"{safe_name}-{kind}.png")
        try:
            figure.savefig(path, dpi=100, bbox_inches="tight")
        except OSError as error:
            raise UsageError(f"--plot_dir={directory}: {path}: {error.strerror.lower()}") from None
        finally:
            pyplot.close(figure)
        paths.append(path)
    return "".join(f"{path}\n" for path in paths)


def _warn(message):
    print(f"summarize.py: warning: {message}", file=sys.stderr)


def _positive(name, text):
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name}={text}: must be an integer") from None
    if value < 1:
        raise UsageError(f"--{name}={text}: must be at least 1")
    return value


def summarize(argv):
    """Returns the summary text for `argv` (without the program name).

    Raises:
        UsageError: For a missing or unusable file and every wrong option.
    """
    options = build_parser().parse_args(argv)
    top = None if options.top is None else _positive("top", options.top)
    plots = check_study_options(options)
    if options.storage is not None:
        return summarize_study(options, top, plots)
    records = []
    for path in options.results_files:
        records.extend(read_records(path))
    records = latest_per_run(records)
    if not records:
        raise UsageError(f"{', '.join(options.results_files)}: no usable records")
    if options.metric == "auto":
        regression = (not any(metric_of(record, "val_accuracy") is not None for record in records)
                      and any(record.get("best") for record in records))
        options.metric = "best" if regression else "val_accuracy"
    check_metric(records, options.metric)
    best = first_best(records) if options.metric == "best" else None
    monitor = best and best["monitor"]
    mode = resolve_mode(options.metric, options.mode, best)
    test = paired_test_column(records, options.metric, best)
    columns = ([*([test] if test else []), *differing_hparams(records), *differing_fields(records)]
               if options.columns is None else chosen_columns(records, options.columns))
    metric_header = f"best_{monitor}" if monitor else options.metric
    ranked = rank(records, options.metric, mode)[:top]
    header, rows = build_rows(ranked, options.metric, metric_header, columns)
    if options.format == "csv":
        return format_csv(header, rows)
    if options.format == "json":
        return format_json(header, rows)
    better = "lower" if mode == "min" else "higher"
    title = f"{len(records)} run(s), ranked by {metric_header} ({better} is better)\n"
    return title + format_table(header, rows, len(_FIXED_COLUMNS))


def main(argv):
    """Prints the summary; returns the exit status."""
    try:
        text = summarize(argv)
    except UsageError as error:
        print(f"summarize.py: error: {error}", file=sys.stderr)
        return USAGE_EXIT_CODE
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `summarize.py ... | head` closed the pipe: not an error.
        # Quieten the flush at exit, which would hit the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
