"""Declarations of options: one `Arg` per flag, typed by a small set of kinds.

A kind knows how to read a value from command-line text and from a YAML
scalar, how to describe what it accepts, and how to print a value. Everything
else (absl flags, YAML keys, validation, help and README tables) is derived
from the declarations, so an option is declared in exactly one place.
"""

import ast
import dataclasses
import difflib
import math
from typing import Any, Callable, Optional

_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")
_NONE_WORDS = ("None", "none", "null", "")


class Kind:
    """What values an option accepts. Subclasses override the hooks below."""

    description = "value"

    def from_text(self, text):
        """Converts command-line text; raises ValueError saying what is accepted."""
        raise NotImplementedError

    def from_yaml(self, value):
        """Checks and converts a value read from YAML; raises ValueError."""
        if isinstance(value, str):
            return self.from_text(value)
        raise ValueError(f"must be {self.description}")

    def format(self, value):
        """Returns `value` as the user would type it."""
        return "None" if value is None else str(value)


class Bool(Kind):
    description = "true or false"

    def from_text(self, text):
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError("must be true or false")

    def from_yaml(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):  # "True" quoted, as the other kinds take "5" quoted
            return self.from_text(value)
        raise ValueError("must be true or false")


class Int(Kind):
    """An integer; with `optional=True` also None (typed as `None` or YAML null)."""

    def __init__(self, optional=False):
        self.optional = optional
        self.description = "an integer or None" if optional else "an integer"

    def from_text(self, text):
        if self.optional and text.strip() in _NONE_WORDS:
            return None
        try:
            number = int(text.strip())
        except ValueError:
            raise ValueError(f"must be {self.description}") from None
        return _within_32_bits(number)

    def from_yaml(self, value):
        if value is None and self.optional:
            return None
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be {self.description}")
        return _within_32_bits(value)


def _within_32_bits(number):
    # Seeds go to NumPy as unsigned 32-bit numbers; a count beyond 64 bits fails deep inside TensorFlow.
    if abs(number) > 2**32 - 1:
        raise ValueError(f"must be at most {2**32 - 1:,} in size")
    return number


class Float(Kind):
    """A number; with `optional=True` also None (typed as `None` or YAML null)."""

    def __init__(self, optional=False):
        self.optional = optional
        self.description = "a number or None" if optional else "a number"

    def from_text(self, text):
        if self.optional and text.strip() in _NONE_WORDS:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"must be {self.description}") from None
        return self._finite(number)

    def from_yaml(self, value):
        if value is None and self.optional:
            return None
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as text.
            return self.from_text(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be {self.description}")
        return self._finite(float(value))

    def _finite(self, number):
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, not {number}")
        return number


class Str(Kind):
    """Free text; with `optional=True` an empty text or YAML null means None."""

    def __init__(self, optional=False):
        self.optional = optional
        self.description = "text"

    def from_text(self, text):
        if self.optional and text == "":
            return None
        return text

    def from_yaml(self, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value

    def format(self, value):
        return "''" if value in (None, "") else value


class Choice(Kind):
    """One word out of a fixed set, in any case (as Keras takes its names: Adam or adam)."""

    def __init__(self, *choices):
        self.choices = choices
        self.description = "one of " + ", ".join(choices)

    def from_text(self, text):
        by_lower = {choice.lower(): choice for choice in self.choices}
        if text.strip().lower() in by_lower:
            return by_lower[text.strip().lower()]
        close = difflib.get_close_matches(text.strip().lower(), list(by_lower), n=1)
        raise ValueError(f"must be {self.description}" + (f"; did you mean {by_lower[close[0]]}?" if close else ""))

    def from_yaml(self, value):
        if isinstance(value, bool):  # YAML reads an unquoted true or false as a boolean: the word was meant.
            value = str(value).lower()
        return super().from_yaml(value)


class IntOrChoice(Kind):
    """An integer of at least `minimum`, or one word out of a fixed set ('epoch' or a step count)."""

    def __init__(self, *choices, minimum=None):
        self.choices = choices
        self.minimum = minimum
        at_least = "" if minimum is None else f" of at least {minimum}"
        self.description = f"an integer{at_least} or " + " or ".join(repr(c) for c in choices)

    def from_text(self, text):
        if text.strip().lower() in self.choices:
            return text.strip().lower()
        try:
            return self._checked(int(text))
        except ValueError:
            raise ValueError(f"must be {self.description}") from None

    def _checked(self, number):
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"must be {self.description}")
        return number

    def from_yaml(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return self._checked(value)
        if isinstance(value, str):
            return self.from_text(value)
        raise ValueError(f"must be {self.description}")


class IntList(Kind):
    """One integer or a comma-separated list of `length` integers ("10,20")."""

    def __init__(self, lengths=(1, 2)):
        self.lengths = lengths
        self.description = "an integer or two, comma-separated" if 1 in lengths else (
            f"{lengths[0]} comma-separated integers"
        )

    def from_text(self, text):
        try:
            numbers = tuple(int(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"must be {self.description}") from None
        return self._checked(numbers)

    def from_yaml(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return self._checked((value,))
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return self._checked(tuple(value))
        if isinstance(value, str):
            return self.from_text(value)
        raise ValueError(f"must be {self.description}")

    def _checked(self, numbers):
        if len(numbers) not in self.lengths:
            raise ValueError(f"must be {self.description}")
        return numbers[0] if len(numbers) == 1 else numbers

    def format(self, value):
        return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


class StrList(Kind):
    """A comma-separated list of words; empty text is the empty list."""

    description = "a comma-separated list (may be empty)"

    def from_text(self, text):
        return tuple(part.strip() for part in text.split(",") if part.strip())

    def from_yaml(self, value):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if value is None:
            return ()
        if isinstance(value, str):
            return self.from_text(value)
        raise ValueError("must be a list of names or a comma-separated text")

    def format(self, value):
        return ",".join(value) if value else "''"


class Ints(IntList):
    """A comma-separated list of at least one integer ("32,64"), always a tuple."""

    description = "comma-separated integers"

    def __init__(self):
        pass  # Any number of integers: IntList's lengths do not apply.

    def _checked(self, numbers):
        if not numbers:
            raise ValueError(f"must be {self.description}")
        return tuple(_within_32_bits(number) for number in numbers)


class KeyValues(Kind):
    """Keyword arguments: `name=value,...` typed (each value a Python literal, else text), or a YAML mapping.

    A comma inside brackets or quotes belongs to its value (`shape=(2,2)`). The
    value is a dict; nothing typed is ever evaluated as code (ast.literal_eval).
    """

    description = "name=value pairs, comma-separated (may be empty)"

    def from_text(self, text):
        pairs = {}
        for item in _split_top_level(text):
            name, equals, raw = item.partition("=")
            name = name.strip()
            if not equals or not name.isidentifier():
                raise ValueError(f"{item.strip()!r} is not name=value (a Python identifier, '=', a value)")
            if name in pairs:
                raise ValueError(f"names {name!r} twice")
            pairs[name] = _plain(name, _literal(raw.strip()))
        return pairs

    def from_yaml(self, value):
        if value is None:
            return {}
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, dict) and all(isinstance(name, str) and name.isidentifier() for name in value):
            return {name: _plain(name, item) for name, item in value.items()}
        raise ValueError("must be a mapping of argument names to values, or name=value,... text")

    def format(self, value):
        return ",".join(f"{name}={item!r}" for name, item in value.items()) if value else "''"


def _split_top_level(text):
    """Splits on the commas that are outside brackets and quotes; drops empty items."""
    items, depth, quote, current = [], 0, None, ""
    for character in text:
        if quote:
            quote = None if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
        elif character == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        current += character
    items.append(current)
    return [item for item in items if item.strip()]


def _plain(name, value):
    """Returns `value` as YAML and JSON hold it (tuples become lists), or raises ValueError for a set or bytes.

    So a value typed and the same value read back from the run's config.yaml are equal.
    """
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(name, item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{name}: a value must be a number, text, True, False, None, or a list or mapping of those, "
                     f"not a {type(value).__name__}")


def _literal(raw):
    """A Python literal (3, 0.5, True, None, 'x', (1, 2)); any other text is the text itself (relu)."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw


@dataclasses.dataclass(frozen=True)
class Arg:
    """One option.

    Args:
        name: The option's name without its group prefix.
        kind: A `Kind` instance saying what values are accepted.
        default: The default value (already converted).
        help: One line of help.
        check: Optional function of the value returning an error text (for
            example "must be at least 1") or None when the value is fine.
        secret: If True the value (a credential, say) is never written to
            config.yaml, the results, the HParams or printed.
        bookkeeping: If True the option steers where a run is written or
            launched from, not what it trains: a default run name leaves it
            out, a run can be resumed whatever it says, and scripts/summarize.py
            does not count it as a difference between runs.
        applies: Optional function of every option's value returning why this
            option has no effect with them (for example "it applies to
            --dataset images:DIR"), or None when it has; a user who types it
            in vain is told so, after the rule of its group (an option of a
            group that is off has no effect). `always` says the option has
            an effect even when its group is off.
    """

    name: str
    kind: Kind
    default: Any
    help: str
    check: Optional[Callable[[Any], Optional[str]]] = None
    secret: bool = False
    bookkeeping: bool = False
    applies: Optional[Callable[[dict], Optional[str]]] = None


def always(values):
    """An `applies` for an option that has an effect whatever the other options say, its group's switch too."""
    return None


def when(flag, wanted, description):
    """Returns an `applies` for an option that has an effect only while option `flag` is one of `wanted`.

    Args:
        flag: The other option's flag name.
        wanted: The values of it with which the option has an effect.
        description: How to say those, as in "it applies with {description}".
    """
    return lambda values: (None if values[flag] in wanted
                           else f"it applies with {description}, not --{flag}={values[flag]}")


def at_least(minimum):
    """Returns a check that refuses values below `minimum`."""
    return lambda value: None if value >= minimum else f"must be at least {minimum}"


def positive(value):
    """A check that refuses zero and negative numbers."""
    return None if value > 0 else "must be greater than 0"


def all_positive(values):
    """A check for tuples of numbers that must all be above 0."""
    return None if min(values) > 0 else "must all be greater than 0"


def fraction_below_one(value):
    """A check for values in [0, 1)."""
    return None if 0 <= value < 1 else "must be at least 0 and below 1"


def optional(check):
    """Wraps a check so that None passes it."""
    return lambda value: None if value is None else check(value)
