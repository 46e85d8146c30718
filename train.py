"""Trains a Keras model chosen entirely by flags.

    python train.py --early_stopping True --early_stopping_patience 5 --tensorboard True

Flags (and --config YAML files) are parsed and validated before TensorFlow is
imported, so --help and every usage error answer at once.
"""

import os
import runpy
import signal
import sys

# Our code is the package `kerasrun` (this folder, registered by its __init__.py), so the folder
# leaves sys.path and the user's directory takes its place: their models.py, callbacks.py or an
# installed `datasets` package is what a plug-in's import finds, never ours.
_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.getcwd()] + [entry for entry in sys.path if os.path.abspath(entry or ".") != _ROOT]
runpy.run_path(os.path.join(_ROOT, "__init__.py"))
# TensorFlow's C++ chatter hides our own output; set before any plug-in can import it. Its start-up
# notices ignore that level: the first import of TensorFlow (or JAX) keeps them back (KERASRUN_TF_LOGS=1 shows them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from kerasrun.core import startup_logs  # noqa: E402

startup_logs.hold_back()

from kerasrun.core.errors import (  # noqa: E402
    INTERRUPTED_EXIT_CODE, RUN_FAILED_EXIT_CODE, USAGE_EXIT_CODE, RunError, UsageError, one_line, wants_traceback,
)


class Terminated(KeyboardInterrupt):
    """SIGTERM before training started (loading the data, say): nothing to save, but say so and exit 143."""


def _terminate(signum, frame):
    raise Terminated


def main(argv):
    """Parses, validates, trains and reports; returns the exit status."""
    from kerasrun.cli import config as run_config

    signal.signal(signal.SIGTERM, _terminate)  # Training puts in its own handlers (runner/interrupts.py).

    if any(word in ("-h", "--help", "-help", "--helpfull") for word in argv[1:]):
        from kerasrun.cli.docs import help_text

        sys.stdout.write(help_text(run_config.all_groups()))
        return 0
    try:
        config = run_config.resolve(argv, environ=os.environ)  # Sets KERAS_BACKEND before Keras is imported.
        for warning in config.warnings:
            print(f"train.py: warning: {warning}", file=sys.stderr)
        if config.mode != "train":  # A saved model on a dataset; it says itself what --dry_run would do.
            from kerasrun.runner import modes

            return modes.run(config)
        if config.dry_run:
            from kerasrun.cli.docs import dry_run_text
            from kerasrun.runner.data_check import dry_run_lines
            from kerasrun.runner.run_paths import planned_run

            run_config.check_further(config)
            run_config.check_external(config)
            sys.stdout.write(dry_run_text(config, planned_run(config), dry_run_lines(config)))
            return 0
        run_config.check_external(config)  # A database a family reports to: the slowest check, the last.
        from kerasrun.runner import fit

        return fit.run(config)
    except UsageError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except RunError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return RUN_FAILED_EXIT_CODE
    except Terminated:
        print("train.py: stopped by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:  # Ctrl-C before training started: nothing to save.
        print("train.py: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except Exception as error:  # Unforeseen (by us or a library): still one line, unless asked for more.
        if wants_traceback():
            raise
        print(f"train.py: error: {one_line(error)}", file=sys.stderr)
        return RUN_FAILED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main(sys.argv))
