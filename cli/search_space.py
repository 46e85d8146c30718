"""A sweep's search space: `--grid`, `--space` and `--space_file` entries, read and checked against train.py.

    --grid batch_size=16,32                     a list of values (as typed)
    --space batch_size=choice:16,32,64          the same
    --space learning_rate=loguniform:1e-4:1e-1  a range, sampled on a log scale
    --space mlp_dropout=uniform:0:0.5           a range
    --space mlp_units=int:32:512:log            whole numbers, optionally on a log scale

A `--space_file` is a YAML mapping of flag names to the same specs, or to a
list of values (a choice). Nothing here imports Optuna: scripts/sweep.py
turns each Dimension into its distribution.
"""

import dataclasses
import difflib
import json
import re
from typing import Optional, Tuple

from kerasrun.cli.config import load_yaml
from kerasrun.core.errors import UsageError
from kerasrun.core.options import Float, Int

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")
_FLAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A comma preceded by a backslash belongs to the value (`--grid dataset_image_size=32\,32,64\,64`).
_VALUE_SEPARATOR = re.compile(r"(?<!\\),")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One hyperparameter of the search: a train.py flag and the values it may take.

    Args:
        name: The train.py flag.
        distribution: choice, uniform, loguniform or int.
        label: How errors name the entry (`--space=...`, `space.yaml: name`).
        values: The listed values, as typed (choice).
        low, high: The range's ends (uniform, loguniform, int).
        log: Whether an int range is sampled on a log scale.
    """

    name: str
    distribution: str
    label: str
    values: Tuple[str, ...] = ()
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False

    def spec(self):
        """Returns the entry as `--space` writes it, in one canonical form (what a study records)."""
        if self.distribution == "choice":
            return "choice:" + ",".join(value.replace(",", "\\,") for value in self.values)
        log = ["log"] if self.log and self.distribution == "int" else []
        return ":".join([self.distribution, _number(self.low), _number(self.high), *log])

    def probes(self):
        """Returns the values, as flag text, that stand for the dimension in checks: every choice, or both ends."""
        if self.distribution == "choice":
            return list(self.values)
        return [_number(self.low), _number(self.high)]

    def is_list(self):
        return self.distribution == "choice"


def _number(value):
    return str(int(value)) if isinstance(value, int) else repr(float(value))


def parse_grid_entry(spec):
    """Returns the Dimension of one `--grid name=v1,v2,...`."""
    name, listed = _name_and_rest(spec, "--grid", "NAME=V1,V2,... (a train.py flag, '=', its values)")
    return Dimension(name, "choice", f"--grid={spec}", values=split_values(f"--grid={spec}", listed))


def parse_space_entry(spec):
    """Returns the Dimension of one `--space name=distribution:...`."""
    name, rest = _name_and_rest(spec, "--space", "NAME=DISTRIBUTION:..., such as learning_rate=loguniform:1e-4:1e-1")
    return _dimension(name, rest, f"--space={spec}")


def _name_and_rest(spec, option, expected):
    name, equals, rest = spec.partition("=")
    if not equals:
        raise UsageError(f"{option}={spec}: expected {expected}")
    if not _FLAG_NAME.match(name):
        raise UsageError(f"{option}={spec}: {name!r} is not a flag name (write it without dashes)")
    return name, rest


def _dimension(name, text, label):
    kind, colon, args = text.partition(":")
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(kind, DISTRIBUTIONS, n=1)
        raise UsageError(f"{label}: {kind!r} is not a distribution; use one of {', '.join(DISTRIBUTIONS)}"
                         + (f" (did you mean {close[0]}?)" if close else ""))
    if not colon:
        raise UsageError(f"{label}: give the {_expected(kind)} after '{kind}:'")
    if kind == "choice":
        return Dimension(name, kind, label, values=split_values(label, args))
    parts = args.split(":")
    log = kind == "loguniform"
    if kind == "int" and len(parts) == 3 and parts[2] == "log":
        parts, log = parts[:2], True
    if len(parts) != 2:
        raise UsageError(f"{label}: expected {kind}:{_expected(kind)}")
    low, high = (_parse_number(label, kind, part) for part in parts)
    if low >= high:
        why = ("low is above high" if low > high else "a range of one value; give the flag after -- instead")
        raise UsageError(f"{label}: {why}")
    if log and low <= 0:
        raise UsageError(f"{label}: a log scale needs a low end above 0")
    return Dimension(name, kind, label, low=low, high=high, log=log)


def _expected(kind):
    return {"choice": "values, comma-separated", "uniform": "LOW:HIGH", "loguniform": "LOW:HIGH",
            "int": "LOW:HIGH or LOW:HIGH:log"}[kind]


def _parse_number(label, kind, text):
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        whole = " whole" if kind == "int" else ""
        raise UsageError(f"{label}: {text!r} is not a{whole} number") from None


def split_values(label, listed):
    """Returns the comma-separated values of a list (`\\,` is a comma inside a value), refusing empty and repeated ones."""
    if not listed:
        raise UsageError(f"{label}: no values after '{'=' if label.startswith('--grid') else ':'}'")
    # Spaces around a value are taken for the list's layout (`choice:adam, sgd`); inside one they stay.
    values = [value.replace("\\,", ",").strip() for value in _VALUE_SEPARATOR.split(listed)]
    for position, value in enumerate(values, 1):
        if not value:
            raise UsageError(f"{label}: value {position} is empty")
        if value in values[:position - 1]:
            raise UsageError(f"{label}: value {value!r} is listed twice")
    return tuple(values)


def read_space_file(path):
    """Returns the Dimensions of a YAML space file: {flag: spec string, or a list of values}."""
    label = f"--space_file={path}"
    content = load_yaml(path, "space_file")
    if not isinstance(content, dict) or not content:
        raise UsageError(f"{label}: expected a mapping of train.py flags to their ranges "
                         "(learning_rate: loguniform:1e-4:1e-1, batch_size: [16, 32])")
    dimensions = []
    for name, entry in content.items():
        where = f"{path}: {name}"
        if not isinstance(name, str) or not _FLAG_NAME.match(name):
            raise UsageError(f"{label}: {name!r} is not a flag name")
        if isinstance(entry, list):
            texts = [_yaml_text(where, item) for item in entry]
            dimensions.append(Dimension(name, "choice", where, values=split_values(where, ",".join(
                text.replace(",", "\\,") for text in texts))))
        elif isinstance(entry, str):
            dimensions.append(_dimension(name, entry, where))
        else:
            raise UsageError(f"{where}: expected a distribution (loguniform:1e-4:1e-1) or a list of values")
    return dimensions


def _yaml_text(where, item):
    if isinstance(item, bool):
        return str(item)
    if isinstance(item, (int, float, str)):
        return str(item)
    raise UsageError(f"{where}: {item!r} is not a single value")


def combine(dimensions):
    """Refuses a flag that two entries set; returns the dimensions in order."""
    seen = {}
    for dimension in dimensions:
        if dimension.name in seen:
            raise UsageError(f"{dimension.label}: {dimension.name} is already a dimension "
                             f"({seen[dimension.name]})")
        seen[dimension.name] = dimension.label
    return list(dimensions)


def check_against_flags(dimension, options):
    """Refuses a dimension train.py has no flag for, a range of the wrong kind, and two values it reads as one.

    Args:
        dimension: A Dimension.
        options: train.py's options, flag name -> Arg.
    """
    if dimension.name not in options:
        close = difflib.get_close_matches(dimension.name, options, n=1)
        raise UsageError(f"{dimension.label}: train.py has no flag --{dimension.name}"
                         + (f"; did you mean {close[0]}?" if close else ""))
    kind = options[dimension.name].kind
    if dimension.distribution in ("uniform", "loguniform") and not isinstance(kind, Float):
        hint = f"; use int:{_number(int(dimension.low))}:{_number(int(dimension.high))}" if isinstance(kind, Int) else \
            "; list its values with choice:"
        raise UsageError(f"{dimension.label}: --{dimension.name} does not take a number of any size{hint}")
    if dimension.distribution == "int" and not isinstance(kind, (Int, Float)):
        raise UsageError(f"{dimension.label}: --{dimension.name} is not a number; list its values with choice:")
    seen = {}
    for value in dimension.values:
        try:
            parsed = kind.from_text(value)
            # A --model_args mapping is compared by its content, whatever the order of its names.
            same = seen.setdefault(json.dumps(parsed, sort_keys=True) if isinstance(parsed, dict) else parsed, value)
        except ValueError:
            continue  # The check of each value against train.py says what is wrong with it.
        if same != value:
            raise UsageError(f"{dimension.label}: {value!r} is {same!r} again, as train.py reads them")
