"""absl flags derived from the option declarations, and parsing of argv.

Every call defines its flags in a fresh `FlagValues`, so parsing has no global
state: tests (and a sweep driver) can resolve many command lines in one process.
"""

import difflib
import reprlib

from absl import flags

from kerasrun.core.errors import UsageError, shortened
from kerasrun.core.options import Bool


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


def normalize_booleans(argv, options):
    """Rewrites every boolean flag as `--flag=true` or `--flag=false`.

    absl reads `--flag False` as `--flag` followed by a stray word, which would
    silently switch the flag on; joining the two makes the word count. Words
    absl does not know (yes, no, any case) are read here too, so `--flag yes`
    and `--flag=yes` mean the same. The value of a non-boolean flag is passed
    through untouched, even when it looks like a flag or a boolean word.

    Args:
        argv: The command line, program name first.
        options: Flag name -> Arg.

    Raises:
        UsageError: for a value of a boolean flag that is not true or false.
    """
    result = list(argv[:1])
    index = 1
    while index < len(argv):
        token = argv[index]
        index += 1
        name, has_value, text = token.lstrip("-").partition("=")
        kind = options[name].kind if token.startswith("-") and name in options else None
        negated = token.startswith("-") and name.startswith("no") and isinstance(
            getattr(options.get(name[2:]), "kind", None), Bool)
        if negated:
            if has_value:
                raise UsageError(f"{token}: --{name} takes no value; write --{name[2:]}={text} instead")
            result.append(f"--{name[2:]}=false")
        elif kind is None:
            result.append(token)
        elif not isinstance(kind, Bool):
            result.append(token)
            if not has_value and index < len(argv):  # `--name value`
                result.append(argv[index])
                index += 1
        elif has_value:
            result.append(f"--{name}={_boolean_word(name, text)}")
        elif index < len(argv) and not argv[index].startswith("-"):
            result.append(f"--{name}={_boolean_word(name, argv[index])}")
            index += 1
        else:
            result.append(f"--{name}=true")
    return result


def _boolean_word(name, text):
    try:
        return "true" if Bool().from_text(text) else "false"
    except ValueError:
        raise UsageError(f"--{name}={text}: must be true or false") from None


def flag_files(argv):
    """Returns the files `--flagfile` names on the command line (absl reads them as it parses)."""
    files = []
    for index, word in enumerate(argv):
        if word.startswith("--flagfile="):
            files.append(word.split("=", 1)[1])
        elif word == "--flagfile" and index + 1 < len(argv):
            files.append(argv[index + 1])
    return files


def parse(flag_values, argv):
    """Parses `argv` into `flag_values`.

    Raises:
        UsageError: for an unknown flag, a bad value or a stray positional word.
    """
    for word in argv[1:]:
        name = word.lstrip("-").split("=", 1)[0]
        if word.startswith("-") and len(name) > 120:  # absl's suggestions for it would recurse too deep.
            raise UsageError(f"{shortened(word)}: unknown flag (python train.py --help lists the flags)")
    try:
        rest = flag_values(argv)
    except flags.UnrecognizedFlagError as error:
        raise UsageError(_unknown_flag_message(error, flag_values)) from None
    except flags.CantOpenFlagFileError as error:
        raise UsageError(f"--flagfile: {str(error).replace('ERROR:: ', '')}") from None
    except (flags.Error, ValueError) as error:
        # absl words a bad boolean (from a --flagfile, which normalize_booleans never sees) as a tuple.
        message = str(error).replace("flag --", "--", 1)
        tuple_start = "('Non-boolean argument to boolean flag', "
        if tuple_start in message and message.endswith(")"):
            message = message.replace(tuple_start, "must be true or false, not ")[:-1]
        raise UsageError(message) from None
    if len(rest) > 1:
        raise UsageError(
            f"unexpected argument {reprlib.repr(rest[1])}: flags are written --name=value or --name value"
        )


def _unknown_flag_message(error, flag_values):
    name = error.flagname
    shown = error.flagvalue or f"--{name}"
    shown = shortened(shown)
    close = difflib.get_close_matches(name, list(flag_values), n=1)
    hint = f" (did you mean --{close[0]}?)" if close else " (python train.py --help lists the flags)"
    return f"{shown}: unknown flag{hint}"
