"""`--model_args`: keyword arguments for a keras.applications constructor or a plug-in builder.

They are checked against the function's parameters before TensorFlow is
imported: the function's source is read with `ast`, never imported (the
plug-in's file, or keras's own source file of the application).
"""

import ast
import functools
import glob
import importlib.util
import os

from kerasrun.core.errors import UsageError
from kerasrun.core.plugins import plugin_file

# What the runner passes to an application itself; --model_weights gives the weights.
APPLICATION_RESERVED = ("include_top", "weights", "input_shape", "input_tensor", "classes", "classifier_activation")
# The pooling an application may end in: the task's output layer needs one vector per example.
APPLICATION_POOLING = ("avg", "max")
# What the runner passes to a plug-in builder itself.
PLUGIN_RESERVED = ("input_shape", "num_classes", "task")


class Parameters:
    """The keyword parameters of a function, read from its source.

    Args:
        names: The names it takes by keyword, in order.
        var_keyword: Whether it takes **kwargs.
    """

    def __init__(self, names, var_keyword, required=()):
        self.names = tuple(names)
        self.var_keyword = var_keyword
        self.required = tuple(required)  # Those without a default.


def requires_message(required):
    """Says that a plug-in builder requires arguments `required` that nothing passes (shared with models.plugin)."""
    return (f"the function requires {', '.join(required)}, which the runner does not pass (it passes "
            f"input_shape, num_classes and task, and --model_args); give {'it' if len(required) == 1 else 'them'} "
            f"a default or a value in --model_args")


def check(kind, model, model_args, flag="--model_args", model_flag="--model"):
    """Refuses `model_args` the model would not take, before anything is imported.

    Args:
        kind: How models/__init__.py classifies the --model value: "built-in",
            "application", "saved" or "plug-in".
        model: The --model value.
        model_args: {name: value} of --model_args.
        flag: How messages name --model_args (a YAML key, say).
        model_flag: How messages name --model.

    Raises:
        UsageError: naming --model_args for arguments given to a built-in or
            saved model, arguments the runner sets itself, or names the
            function does not take (listing those it does).
    """
    if kind == "plug-in":  # What the builder requires and nobody gives; --dry_run's import says the same.
        parameters = plugin_parameters(model)
        if parameters is not None:
            required = [name for name in parameters.required if name not in (*PLUGIN_RESERVED, *(model_args or {}))]
            if required:
                raise UsageError(f"{model_flag}={model!r}: {requires_message(required)}")
    if not model_args:
        return
    shown = ",".join(f"{name}={value!r}" for name, value in model_args.items())
    source = f"{flag}={shown}"
    if kind == "built-in":
        raise UsageError(f"{source}: --model={model} takes its own flags (--{model}_*; see --help), "
                         f"not --model_args")
    if kind == "saved":
        raise UsageError(f"{source}: a saved .keras model ({model_flag}={model}) is loaded as it is; "
                         f"it takes no arguments")
    reserved = APPLICATION_RESERVED if kind == "application" else PLUGIN_RESERVED
    for name in model_args:
        if name in reserved:
            why = "; use --model_weights" if name == "weights" else ""
            raise UsageError(f"{source}: {name!r} is set by the runner{why}")
    if kind == "application" and model_args.get("pooling", "avg") not in APPLICATION_POOLING:
        raise UsageError(f"{source}: pooling must be avg or max: the output layer needs one vector per example")
    parameters = application_parameters(model) if kind == "application" else plugin_parameters(model)
    if parameters is None or parameters.var_keyword:
        return  # Source not found (the call will tell), or it takes any keyword.
    accepted = [name for name in parameters.names if name not in reserved]
    for name in model_args:
        if name not in parameters.names:
            raise UsageError(f"{source}: {model_flag}={model} takes no argument {name!r}; it takes "
                             f"{', '.join(accepted) if accepted else 'none besides those the runner sets'}")


def plugin_parameters(spec):
    """Returns the Parameters of the function a plug-in spec names, read from its file; None if not found there."""
    path = plugin_file(spec)
    if not path or not os.path.isfile(path):
        return None
    return _functions_in(os.path.abspath(path)).get(spec.rsplit(":", 1)[1])


def application_parameters(name):
    """Returns the Parameters of keras.applications.`name`, read from keras's source files; None if not found."""
    return _application_functions().get(name)


@functools.cache
def _application_functions():
    spec = importlib.util.find_spec("keras")  # The top-level package is found, not imported.
    if spec is None or not spec.submodule_search_locations:
        return {}
    functions = {}
    for location in spec.submodule_search_locations:
        for path in sorted(glob.glob(os.path.join(location, "src", "applications", "*.py"))):
            functions.update(_functions_in(path))
    return functions


@functools.cache
def _functions_in(path):
    """Returns {name: Parameters} of the functions defined at the top level of a Python file."""
    try:
        with open(path, encoding="utf-8") as stream:
            tree = ast.parse(stream.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return {}
    functions = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            names = [argument.arg for argument in (*arguments.args, *arguments.kwonlyargs)]
            positional = [*arguments.posonlyargs, *arguments.args]
            required = [argument.arg for argument in positional[:len(positional) - len(arguments.defaults)]]
            required += [argument.arg for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults)
                         if default is None]
            functions[node.name] = Parameters(names, arguments.kwarg is not None, required)
    return functions
