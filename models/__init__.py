"""Models the runner can train, named by one `--model` value.

The value is one of: a built-in name (`mlp`, `cnn`, `resnet`), a
keras.applications name (`MobileNetV2`, `ResNet50`, ...), the path of a saved
`.keras` file, or a plug-in `module:function` / `path/to/file.py:function`.

`check_source` validates a value without importing TensorFlow or Keras, so
train.py can refuse a bad command line at once; `build` makes the model.
Nothing in this package imports Keras at module level, for the same reason.
"""

import difflib
import os

from kerasrun.core.errors import UsageError, first_line
from kerasrun.core.plugins import check_plugin_spec
from kerasrun.models import cnn, mlp, resnet  # noqa: F401  Importing them registers the built-ins.
from kerasrun.models import model_args as model_arguments
from kerasrun.models.applications import APPLICATION_NAMES, build_application
from kerasrun.models.hyperparameters import BUILT_IN_GROUPS, hparams_of, option_groups  # noqa: F401
from kerasrun.models.builtin_registry import BUILT_IN_MODELS
from kerasrun.core.heads import TASKS, Head
from kerasrun.models.plugin import build_from_plugin, load_builder
from kerasrun.models.saved import load_saved_model, load_table_model as _load_table_model

SAVED_MODEL_SUFFIX = ".keras"

_BUILT_IN = "built-in"
_APPLICATION = "application"
_SAVED = "saved"
_PLUGIN = "plug-in"


def names():
    """Returns the built-in model names, sorted."""
    return BUILT_IN_MODELS.names()


def application_names():
    """Returns the keras.applications model names, sorted, without importing Keras."""
    return sorted(APPLICATION_NAMES)


def check_source(value, flag="--model"):
    """Checks a model value cheaply, before TensorFlow is imported.

    Args:
        value: A built-in name, a keras.applications name, the path of an
            existing `.keras` file, or a plug-in spec.
        flag: The flag or config key the value came from, for messages.
            Defaults to "--model".

    Raises:
        UsageError: naming the flag and value and saying what is accepted,
            if the value is none of the above (an unknown name, a missing
            `.keras` file, a malformed plug-in spec or one naming a module or
            file that does not exist).
    """
    _kind_of(value, flag)


def check_plugin(value, flag="--model", model_args=None):
    """Imports a plug-in model's module and checks the function it names, without calling it.

    Does nothing for other values. Slower than `check_source` (the user's
    module most likely imports Keras), so only --dry_run and a sweep's check use it.

    Raises:
        UsageError: if the attribute is missing, not callable, or does not take
            `input_shape` and `num_classes`, or requires an argument that
            neither the runner nor `model_args` (--model_args) gives, or the module fails to import.
    """
    if _kind_of(value, flag) == _PLUGIN:
        load_builder(value, flag, model_args)


def check_model_args(value, model_args, flag="--model_args", model_flag="--model"):
    """Refuses --model_args that the model named by `value` would not take, without importing anything.

    Built-in and saved models take none (built-ins have flags of their own);
    a keras.applications constructor or a plug-in builder takes the names in
    its signature (read from its source with `ast`), or any with **kwargs,
    but not those the runner passes itself.

    Raises:
        UsageError: naming --model_args and the names accepted.
    """
    model_arguments.check(_kind_of(value, model_flag), value, model_args, flag, model_flag)


def check_hparams_apply(values, typed, label=lambda name: f"--{name}"):
    """Refuses a built-in model's hyperparameter typed on the command line for another --model.

    `--mlp_units 64 --model cnn` would train a cnn as if the flag had been left
    out; a sweep over it would train the same model again and again. A config
    file may hold them (a run's saved config.yaml lists every option).

    Args:
        values: {flag name: value}, resolved.
        typed: The flag names given on the command line.
        label: Returns how messages name a flag.

    Raises:
        UsageError: naming the flag and --model.
    """
    for model, group in BUILT_IN_GROUPS.items():
        if values["model"] == model:
            continue
        for name, arg in group.options():
            if name in typed:
                raise UsageError(f"{label(name)}={arg.kind.format(values[name])}: applies to --model {model}, "
                                 f"not {label('model')}={values['model']}")


def build(value, *, input_shape, head, weights=None, safe_mode=True, hparams=None, model_args=None,
          flag="--model"):
    """Builds the model a `--model` value names. Imports Keras.

    Args:
        value: A value `check_source` accepts.
        input_shape: The shape of one example, without the batch axis, e.g.
            (8, 8, 1).
        head: The `models.heads.Head` the model must end in (its task and width).
        weights: For keras.applications only: None for random
            initialization, "imagenet" (downloaded once, needs the network) or
            the path of a weights file. Defaults to None.
        safe_mode: For `.keras` files only: refuse files that hold code
            (Lambda layers). Defaults to True.
        hparams: For built-ins only: {argument: value} of the model's
            hyperparameters (`hparams_of`); None for the defaults.
        model_args: For keras.applications and plug-ins: keyword arguments
            passed on to the constructor or builder. Defaults to None.
        flag: The flag or config key the value came from, for messages.
            Defaults to "--model".

    Returns:
        A `keras.Model` ending in `head`: uncompiled
        for built-ins, applications and `.keras` files, and as the function
        returned it for plug-ins.

    Raises:
        UsageError: if the value is refused by `check_source`, the model
            cannot take the dataset's input (e.g. `cnn` on flat vectors), a
            `.keras` file is damaged or does not fit the dataset, a plug-in
            or a plug-in does not return a fitting `keras.Model`. (That only
            keras.applications models take `weights` is checked with the config.)
        RunError: if pretrained weights cannot be downloaded.
    """
    kind = _kind_of(value, flag)
    input_shape = tuple(input_shape)
    if kind == _BUILT_IN:
        return BUILT_IN_MODELS.get(value)(input_shape, head, **(hparams or {}))
    if kind == _APPLICATION:
        return build_application(value, input_shape, head, weights=weights, model_args=model_args, flag=flag)
    if kind == _SAVED:
        return load_saved_model(value, input_shape, head, safe_mode=safe_mode, flag=flag)
    return build_from_plugin(value, input_shape, head, model_args=model_args, flag=flag)


def load_table_model(value, kinds, head, safe_mode=True, flag="--model"):
    """Returns the saved model a `--model` value names if it takes a table's columns itself, else None. Imports Keras.

    A checkpoint of a CSV run holds its FeatureSpace and takes the raw columns
    by name: it continues training as it is, not wrapped in a second
    FeatureSpace. Any other value (and a `.keras` file of one plain input)
    gives None: the runner puts it behind the table's FeatureSpace.

    Args:
        value: A value `check_source` accepts.
        kinds: The table's {column: kind}.
        head: The `Head` the task needs.
        safe_mode: As for `build`.
        flag: The flag the value came from. Defaults to "--model".

    Raises:
        UsageError: if the file cannot be loaded, or its model takes named
            columns other than the table's, or its output does not fit the task.
    """
    if _kind_of(value, flag) != _SAVED:
        return None
    return _load_table_model(value, kinds, head, safe_mode=safe_mode, flag=flag)


def describe(value, hparams=None, model_args=None):
    """Returns one line saying how the model a `--model` value names is built, for --dry_run; imports nothing.

    Args:
        value: A value `check_source` accepts.
        hparams: A built-in's hyperparameters (`hparams_of`), or None.
        model_args: --model_args, or None.
    """
    kind = _kind_of(value, "--model")
    if kind == _SAVED:
        return f"the saved model {value}, loaded as it is"
    arguments = dict(hparams or {}) if kind == _BUILT_IN else dict(model_args or {})
    if kind == _APPLICATION:
        arguments = {"include_top": False, "pooling": "avg", **arguments}
    shown = ", ".join(f"{name}={argument!r}" for name, argument in arguments.items())
    if kind == _BUILT_IN:
        return f"{value}({shown}), ending in the task's output layer"
    if kind == _APPLICATION:
        return f"keras.applications.{value}({shown}), then the task's output layer"
    return f"{value}(input_shape=..., num_classes=...{', ' if shown else ''}{shown})"


def builds_head(value):
    """Whether the runner builds the model's last layer itself (a built-in or a keras.applications model)."""
    return value in BUILT_IN_MODELS or value in APPLICATION_NAMES


def output_width(model, value, input_shape, flag="--model"):
    """Returns the size of the model's last output axis, or None for a model with several outputs.

    A model whose shapes are not known yet (a `keras.Sequential` without an
    Input, a subclassed model) is called on a symbolic batch of the dataset's
    input shape, which builds it as Keras's first training step would. Call
    it in the distribution's scope: building creates the weights.

    Args:
        model: The built `keras.Model`.
        value: The --model value, for messages.
        input_shape: The shape of one example, without the batch axis.
        flag: The flag the value came from. Defaults to "--model".

    Raises:
        UsageError: if the model cannot be called on input of that shape.
    """
    import keras

    try:
        shape = model.output_shape
    except AttributeError:
        try:
            output = model(keras.KerasTensor((None, *input_shape)))
        except Exception as error:  # The user's layers raise what they raise; the user needs one line.
            raise UsageError(f"{flag}={value!r}: the model cannot take the dataset's input of shape "
                             f"{tuple(input_shape)}: {first_line(error)}") from None
        shape = output.shape if isinstance(output, keras.KerasTensor) else None
    return shape[-1] if isinstance(shape, tuple) else None


def _kind_of(value, flag):
    if value in BUILT_IN_MODELS:
        return _BUILT_IN
    if value in APPLICATION_NAMES:
        return _APPLICATION
    if value.endswith(SAVED_MODEL_SUFFIX):
        if not os.path.isfile(value):
            raise UsageError(f"{flag}={value!r}: no such {SAVED_MODEL_SUFFIX} file")
        return _SAVED
    if ":" in value:
        check_plugin_spec(flag, value)
        return _PLUGIN
    raise UsageError(_unknown_model_message(value, flag))


def _unknown_model_message(value, flag):
    if value.endswith(".py"):
        return (
            f"{flag}={value!r}: also name the function that builds the model, "
            f"as {value}:function_name"
        )
    message = (
        f"{flag}={value!r}: unknown model; use a built-in ({', '.join(names())}), "
        f"any keras.applications name (e.g. MobileNetV2, ResNet50, EfficientNetB0), "
        f"a saved {SAVED_MODEL_SUFFIX} file, or module:function / path/to/file.py:function"
    )
    suggestion = _closest_name(value)
    if suggestion:
        message += f"; did you mean {suggestion!r}?"
    return message


def _closest_name(value):
    # Case-insensitive, since "mobilenetv2" for MobileNetV2 is the common slip.
    by_lowercase = {name.lower(): name for name in names() + application_names()}
    matches = difflib.get_close_matches(value.lower(), by_lowercase, n=1, cutoff=0.8)
    return by_lowercase[matches[0]] if matches else None
