"""The package's layers import only downwards, and the foundation never imports TensorFlow.

The layers (see __init__.py and DESIGN.md), lowest first: core, keras_fixes,
the families (callbacks, datasets, models: none imports another), cli, runner,
then the entry points (train.py, scripts/, benchmarks/), which may import anything.
"""

import ast
import os

import pytest

from conftest import REPO

LAYERS = {"core": 0, "keras_fixes": 1, "callbacks": 2, "datasets": 2, "models": 2, "cli": 3, "runner": 4}
_ENTRY_POINT = len(LAYERS)


def package_of(path):
    """Returns the top folder of a file inside the package ('' for the root's own files)."""
    relative = os.path.relpath(path, REPO)
    return relative.split(os.sep)[0] if os.sep in relative else ""


def imported_packages(source):
    """Yields (line, top folder of kerasrun) for every import of our package in `source`, lazy ones included."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "kerasrun":
                continue
            if len(parts) > 1:
                yield node.lineno, parts[1]
            else:  # from kerasrun import datasets
                for alias in node.names:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "kerasrun" and len(parts) > 1:
                    yield node.lineno, parts[1]


def violations(package, source):
    """Returns the imports in `source`, a file of `package`, that point up or sideways."""
    own = LAYERS.get(package, _ENTRY_POINT)
    found = []
    for line, target in imported_packages(source):
        layer = LAYERS.get(target)
        if layer is None:
            found.append(f"line {line}: kerasrun.{target} is in no layer")
        elif package in LAYERS and (layer > own or (layer == own and target != package)):
            found.append(f"line {line}: {package} imports {target}, which is not below it")
    return found


def python_files():
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if not name.startswith((".", "__")) and name != "tests"]
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_every_folder_of_the_package_has_a_layer():
    folders = {package_of(path) for path in python_files()} - {""}
    assert folders - {"scripts", "benchmarks"} == set(LAYERS)


@pytest.mark.parametrize("path", sorted(python_files()), ids=lambda path: os.path.relpath(path, REPO))
def test_imports_point_down(path):
    with open(path, encoding="utf-8") as stream:
        assert violations(package_of(path), stream.read()) == []


def test_the_check_catches_an_upward_and_a_sideways_import():
    assert violations("core", "def f():\n    from kerasrun.runner import fit\n") == [
        "line 2: core imports runner, which is not below it"]
    assert violations("datasets", "from kerasrun import models\n") == [
        "line 1: datasets imports models, which is not below it"]
    assert violations("runner", "from kerasrun.cli.config import resolve\nfrom kerasrun.core import files\n") == []


@pytest.mark.parametrize("path", sorted(p for p in python_files() if package_of(p) == "core"),
                         ids=lambda path: os.path.relpath(path, REPO))
def test_the_foundation_never_imports_tensorflow_or_keras(path):
    with open(path, encoding="utf-8") as stream:
        tree = ast.parse(stream.read())
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    assert [name for name in names if name.split(".")[0] in ("tensorflow", "keras")] == []
