"""absl flags derived from the option declarations, and parsing of argv.

Every call defines its flags in a fresh `FlagValues`, so parsing has no global
state: tests (and a sweep driver) can resolve many command lines in one process.
"""

import difflib

from absl import flags

from runner.errors import UsageError
from runner.options import Bool


class _KindParser(flags.ArgumentParser):
    """Lets absl read a flag through one of our kinds."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def parse(self, argument):
        # absl also hands defaults through here; those are already values.
        return self.kind.from_text(argument) if isinstance(argument, str) else argument

    def flag_type(self):
        return self.kind.description


def define_flags(options):
    """Returns a new FlagValues holding one flag per option.

    Args:
        options: A mapping of flag name to `Arg`.
    """
    flag_values = flags.FlagValues()
    for name, arg in options.items():
        if isinstance(arg.kind, Bool):
            flags.DEFINE_boolean(name, arg.default, arg.help, flag_values=flag_values)
        else:
            flags.DEFINE(_KindParser(arg.kind), name, arg.default, arg.help, flag_values=flag_values)
    return flag_values


def join_boolean_words(argv, boolean_names):
    """Rewrites `--flag True` (any case, also false/yes/no/1/0) as `--flag=true`.

    absl reads `--flag False` as `--flag` followed by a stray word, which would
    silently switch the flag on; joining the two makes the word count.

    Args:
        argv: The command line, program name first.
        boolean_names: Names of the boolean flags.
    """
    joined = list(argv[:1])
    index = 1
    while index < len(argv):
        token = argv[index]
        name = token.lstrip("-")
        following = argv[index + 1] if index + 1 < len(argv) else None
        if token.startswith("-") and name in boolean_names and following is not None:
            try:
                value = Bool().from_text(following)
            except ValueError:
                value = None
            if value is not None:
                joined.append(f"--{name}={'true' if value else 'false'}")
                index += 2
                continue
        joined.append(token)
        index += 1
    return joined


def parse(flag_values, argv):
    """Parses `argv` into `flag_values`.

    Raises:
        UsageError: for an unknown flag, a bad value or a stray positional word.
    """
    try:
        rest = flag_values(argv)
    except flags.UnrecognizedFlagError as error:
        raise UsageError(_unknown_flag_message(error, flag_values)) from None
    except flags.Error as error:
        raise UsageError(str(error).replace("flag --", "--", 1)) from None
    if len(rest) > 1:
        raise UsageError(
            f"unexpected argument {rest[1]!r}: flags are written --name=value or --name value"
        )


def _unknown_flag_message(error, flag_values):
    name = error.flagname
    shown = error.flagvalue or f"--{name}"
    close = difflib.get_close_matches(name, list(flag_values), n=1)
    hint = f" (did you mean --{close[0]}?)" if close else " (python train.py --help lists the flags)"
    return f"{shown}: unknown flag{hint}"
