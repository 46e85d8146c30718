"""CSVLogger: write every epoch's logs as a row of a CSV file."""

from kerasrun.callbacks.family import CallbackFamily, default_in_run_dir
from kerasrun.core.options import Arg, Bool, Str


def _check(family, values, checker):
    if len(values["separator"]) != 1:
        checker.fail(family.flag_name("separator"), "must be one character")
    filename = values["filename"]
    if filename is not None:
        checker.check_writable_file(family.flag_name("filename"), filename)


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
    closes_on_interrupt=True,
)
