"""Help text and README tables, both generated from the option declarations."""

import textwrap

from runner.options import Bool


def _shown_default(arg):
    if isinstance(arg.kind, Bool):
        return "True" if arg.default else "False"
    return arg.kind.format(arg.default)


def help_text(groups):
    """Returns the `--help` text: usage, then every group's flags."""
    lines = [
        "usage: python train.py [--flag=value | --flag value | --bool_flag [True|False] | --nobool_flag] ...",
        "",
        "Trains a Keras model chosen by flags. Booleans accept True/False in any case.",
        "--config FILE.yaml sets any flag below by name; the command line overrides it.",
        "--flagfile FILE reads more flags from a file, one per line.",
    ]
    for group in groups:
        heading = f"--{group.name} [True|False]: " if group.switchable else ""
        lines += ["", f"{group.title}: {heading}{group.summary}"]
        for name, arg in group.options():
            if group.switchable and name == group.name:
                continue
            lines.append(f"  --{name}  ({arg.kind.description}; default: {_shown_default(arg)})")
            lines += textwrap.wrap(arg.help, width=96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def markdown_table(group):
    """Returns the README table of one group's flags."""
    rows = ["| flag | accepts | default | what it does |", "|---|---|---|---|"]
    for name, arg in group.options():
        help_text = arg.help.replace("|", "\\|")
        rows.append(f"| `--{name}` | {arg.kind.description} | `{_shown_default(arg)}` | {help_text} |")
    return "\n".join(rows)


def markdown_tables(groups):
    """Returns every group's table, each under a heading, as README markdown."""
    sections = []
    for group in groups:
        switch = f" Enable with `--{group.name} True`." if group.switchable else ""
        sections.append(f"#### {group.title}\n\n{group.summary}{switch}\n\n{markdown_table(group)}\n")
    return "\n".join(sections)


if __name__ == "__main__":
    from runner.config import all_groups

    print(markdown_tables(all_groups()), end="")
