"""kerasrun: the runner's own code, one package whose folder is this repository.

Entry points (train.py, scripts/, benchmarks/, tests/conftest.py) run this file by
path, which registers the folder as the package `kerasrun`, instead of putting the
repository on sys.path: a user's own `models.py` or `callbacks.py`, or an installed
`datasets` package, then never collides with our folders of the same names.

Layers, each importing only those above it (tests/test_layers.py enforces this):

    core/          foundation: errors, options, registries, plug-in loading, files,
                   Keras's names and rules known without importing TensorFlow
    keras_fixes/   every workaround for a Keras defect, each citing its upstream issue
    callbacks/ datasets/ models/   the families: what can be trained, on what, with what
    cli/           the config layer: flags, YAML, validation, --help and --dry_run text
    runner/        one run: its directory, the fit, resume, results, signals, workers
    train.py scripts/ benchmarks/  entry points
"""

import os
import sys

if __name__ != "kerasrun" and "kerasrun" not in sys.modules:
    import importlib.util

    _SPEC = importlib.util.spec_from_file_location(
        "kerasrun", os.path.abspath(__file__), submodule_search_locations=[os.path.dirname(os.path.abspath(__file__))])
    sys.modules["kerasrun"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["kerasrun"])
