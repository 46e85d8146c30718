"""Help text and README tables, both generated from the option declarations."""

import textwrap

from kerasrun.core.options import Bool


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
        "Environment: KERASRUN_TF_LOGS=1 shows TensorFlow's start-up logs (kept back by default);",
        "KERASRUN_TRACEBACK=1 shows the traceback of an unexpected or a plug-in's error instead of one line.",
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


def _model_lines(config):
    """Returns --dry_run's lines on the model: what builds it, with which hyperparameters or arguments."""
    from kerasrun import models

    return [f"# Backend: Keras on {config.backend} (KERAS_BACKEND={config.backend})", "",
            "# Model, as a run would build it:",
            f"#   {models.describe(config.model, models.hparams_of(config, config.model), config.model_args)}", ""]


def dry_run_text(config, run, data_lines=None):
    """Returns what --dry_run prints: the resolved config as YAML, the data's lines, then the callbacks to be built.

    Args:
        config: The resolved Config.
        run: The RunPaths the run would write into, for the paths the callbacks get.
        data_lines: The lines the run prints about its data (the task, ...), or
            None when --dry_run leaves the data to the run. Defaults to None.
    """
    import yaml

    from kerasrun.callbacks import stepping
    from kerasrun.callbacks.builder import enabled_families
    from kerasrun.cli.config import saved_config

    lines = ["# Resolved configuration (python train.py --config FILE reruns it):",
             yaml.safe_dump(saved_config(config), sort_keys=False, allow_unicode=True).rstrip(), "",
             *_model_lines(config)]
    if data_lines is None:
        lines += ["# Data: loaded by the run (a download, image folder, plug-in loader or streamed file)",
                  f"#   {stepping.choose(config, None, stepping.own_classes(config)).line}", ""]
    else:
        lines += ["# Data, loaded and checked as the run will:",
                  *(f"#   {line}" for text in data_lines for line in text.splitlines()), ""]
    lines.append("# Callbacks, in the order they run, as a run starting now would build them:")
    families = enabled_families(config)
    for family in families:
        arguments = _call_arguments(family, family.with_run_paths(family.values(config), run), run, config)
        # Our subclass where there is one: it takes options Keras's class does not.
        built = family.subclass.replace(":", ".") if family.subclass else f"keras.callbacks.{family.keras_class}"
        lines.append(f"#   {built}({arguments})")
    lines += [f"#   {spec}()" for spec in config.callbacks]
    if not families and not config.callbacks:
        lines.append("#   (none)")
    lines += ["", "# After training:", *(f"#   {line}" for line in after_training_lines(config))]
    taken = f" ({config.run_name} exists already)" if config.run_name and run.name != config.run_name else ""
    lines += ["", f"# Run directory, for a run starting now: {run.dir}{taken}"]
    return "\n".join(lines) + "\n"


def after_training_lines(config):
    """Returns what a run does once training ends (runner/final.py), for --dry_run."""
    weights = ("the best weights" if config.evaluate_weights == "best" else "the weights training ends with")
    return [
        "saves the trained model as model.keras in the run directory" if config.save_model
        else "saves no model (--save_model False)",
        f"evaluates the test split, if the dataset has one, once, with {weights}",
        *([f"exports the model as {', '.join(config.export)} into export/<format>/"] if config.export else []),
    ]


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


README_START = "<!-- flag tables: generated by python scripts/readme_tables.py; tests/test_readme.py keeps them in step -->\n"
README_END = "<!-- end of flag tables -->"


def readme_tables(readme_text):
    """Returns the generated part of the README."""
    return readme_text[readme_text.index(README_START) + len(README_START): readme_text.index(README_END)]


def update_readme(path, tables):
    """Replaces the generated part of the README at `path` with `tables`."""
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    text = text.replace(readme_tables(text), tables, 1)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def _call_arguments(family, values, run, config):
    """Returns the arguments the family's class is built with, as Python text (secrets hidden)."""
    options = [f"{arg.name}={'<secret>' if arg.secret else repr(values[arg.name])}" for arg in family.class_args()]
    # Those of our subclass that are no option (a file in the run's directory); a mapping of many (the run's
    # hyperparameters) by its size.
    extra = family.run_kwargs(values, run, config) if family.run_kwargs else {}
    return ", ".join([*options, *(f"{name}={_shown_argument(value)}" for name, value in extra.items())])


def _shown_argument(value):
    return f"<{len(value)} items>" if isinstance(value, dict) and len(value) > 3 else repr(value)
