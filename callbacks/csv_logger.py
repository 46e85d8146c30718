"""CSVLogger: write every epoch's logs as a row of a CSV file."""

import os

from kerasrun.callbacks.family import CallbackFamily, default_in_run_dir
from kerasrun.core.options import Arg, Bool, Str


def _check(family, values, checker):
    if len(values["separator"]) != 1:
        checker.fail(family.flag_name("separator"), "must be one character")
    filename = values["filename"]
    if filename is not None:
        checker.check_writable_file(family.flag_name("filename"), filename)


def _drop_rows_after(callback, epochs):
    """Cuts the CSV file after the rows of the first `epochs` epochs (0-based numbers below `epochs`)."""
    try:
        with open(callback.filename, "rb") as stream:
            lines = stream.read().splitlines(keepends=True)
    except OSError:
        return
    kept = lines[:1]  # the header
    for line in lines[1:]:
        number = line.split(callback.sep.encode(), 1)[0]
        if not number.isdigit() or int(number) >= epochs:
            break
        kept.append(line)
    # Truncated in place: Keras's CSVLogger holds the file open for appending already.
    os.truncate(callback.filename, sum(len(line) for line in kept))


FAMILY = CallbackFamily(
    name="csv_logger",
    title="CSVLogger",
    summary="Write each epoch's logs (loss, metrics, learning rate) as a row of a CSV file.",
    keras_class="CSVLogger",
    args=(
        Arg("filename", Str(optional=True), None,
            "The CSV file (default: training.csv in the run's directory)."),
        Arg("separator", Str(), ",", "The column separator (one character)."),
        Arg("append", Bool(), False, "Append to an existing file instead of replacing it."),
    ),
    check=_check,
    in_run_dir=default_in_run_dir("filename", "training.csv"),
    worker_overrides={"filename": None},
    resume_overrides={"append": True},  # A resumed run adds to the log of its first part.
    on_resume=_drop_rows_after,
    closes_on_interrupt=True,
)
