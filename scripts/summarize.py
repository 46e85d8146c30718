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

Exit status: 0, or 2 when the file is missing, holds no usable record, or an
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

runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__init__.py"))

from kerasrun.cli.config import bookkeeping_flags  # noqa: E402
from kerasrun.core.errors import USAGE_EXIT_CODE, UsageError  # noqa: E402
from kerasrun.core.losses_metrics import direction  # noqa: E402

_FIXED_COLUMNS = ("rank", "run_name", "status", "epochs_completed")
_MISSING = "-"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    """Returns the argument parser."""
    parser = _Parser(prog="summarize.py", description=__doc__, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_files", nargs="+", metavar="RESULTS_FILE",
                        help="JSON-lines file(s) written by train.py --results_file, or runs' results.json "
                             "(tensorboard_logs/*/results.json).")
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


def format_table(header, rows, metric_column):
    """Returns the rows as an aligned plain-text table, numbers right-aligned."""
    # Five digits tell close runs apart; tenths of a second are enough for wall time.
    float_formats = {metric_column: ".5g", header.index("wall_time_s"): ".1f",
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
