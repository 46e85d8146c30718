"""The built-in models' hyperparameters, declared once as option groups.

Each built-in model (mlp, cnn, resnet) has a group whose prefix is its name:
`--mlp_units 256 --mlp_layers 2`, `--cnn_filters 32,64`, `--resnet_blocks 3`.
From these declarations come the flags, the YAML keys, --help, the README
tables, config.yaml, the results' hparams and the HParams tab, as for any
option; the builders take the group's values as keyword arguments of the same
names. The defaults build exactly the models the runner always built.

`--model_args name=value,...` (or a YAML mapping) passes keyword arguments to a
keras.applications constructor or to a plug-in builder; models/model_args.py
checks them against the function's parameters without importing TensorFlow.

Nothing here imports Keras.
"""

from kerasrun.core.groups import OptionGroup
from kerasrun.core.options import Arg, Choice, Float, Int, Ints, KeyValues, all_positive, at_least, fraction_below_one

# Activations a hidden layer may use: names keras.activations.get accepts (a test keeps them in step).
ACTIVATIONS = ("relu", "gelu", "silu", "swish", "elu", "selu", "leaky_relu", "relu6", "mish",
               "tanh", "sigmoid", "hard_sigmoid", "softplus", "softsign", "linear")
# What follows each hidden Dense or Conv2D layer before its activation.
NORMALIZATIONS = ("none", "batch", "layer")


def _non_negative(value):
    return None if value >= 0 else "must be at least 0 (0 adds no penalty)"


def _activation(help_text):
    return Arg("activation", Choice(*ACTIVATIONS), "relu", help_text)


def _dropout_before_output(default):
    return Arg("dropout", Float(), default, "Dropout rate before the output layer (0: no Dropout layer).",
               fraction_below_one)


def _l2(what):
    return Arg("l2", Float(), 0.0, f"L2 penalty on the kernels of the {what} (0: none).", _non_negative)


MLP = OptionGroup(
    name="mlp",
    title="MLP model",
    summary="The hyperparameters of --model mlp: Flatten, then `layers` hidden Dense layers (each followed by "
            "normalisation, the activation and dropout), then the task's output layer.",
    args=(
        Arg("units", Int(), 128, "Width of each hidden Dense layer.", at_least(1)),
        Arg("layers", Int(), 1, "Number of hidden Dense layers (0: a linear model on the flattened input).",
            at_least(0)),
        Arg("dropout", Float(), 0.1, "Dropout rate after each hidden layer (0: no Dropout layer).",
            fraction_below_one),
        _activation("Activation of the hidden layers."),
        Arg("normalization", Choice(*NORMALIZATIONS), "none",
            "Normalisation between each hidden Dense layer and its activation: none, batch or layer."),
        _l2("hidden Dense layers"),
    ),
)

CNN = OptionGroup(
    name="cnn",
    title="CNN model",
    summary="The hyperparameters of --model cnn: one Conv2D and 2x2 max-pooling block per entry of `filters`, "
            "then Flatten, dropout and the task's output layer.",
    args=(
        Arg("filters", Ints(), (32, 64), "Filters of each convolution block, comma-separated (one block each).",
            all_positive),
        Arg("kernel_size", Int(), 3, "Height and width of the convolution kernels.", at_least(1)),
        _dropout_before_output(0.25),
        _activation("Activation of the convolutions."),
        Arg("normalization", Choice(*NORMALIZATIONS), "none",
            "Normalisation between each convolution and its activation: none, batch or layer."),
        _l2("convolutions"),
    ),
)

RESNET = OptionGroup(
    name="resnet",
    title="ResNet model",
    summary="The hyperparameters of --model resnet: a stem, then one stage of residual blocks per entry of "
            "`filters` (each stage after the first halves the image), global average pooling, the output layer.",
    args=(
        Arg("filters", Ints(), (16, 32, 64), "Filters of each stage, comma-separated (one stage each).",
            all_positive),
        Arg("blocks", Int(), 2, "Residual blocks per stage (two 3x3 convolutions each).", at_least(1)),
        _dropout_before_output(0.0),
        _activation("Activation in the stem and the residual blocks."),
        Arg("normalization", Choice(*NORMALIZATIONS), "batch",
            "Normalisation after each convolution: batch, layer or none (convolutions then have a bias)."),
        _l2("convolutions"),
    ),
)

MODEL_ARGS = OptionGroup(
    name="",
    title="Model arguments",
    summary="Keyword arguments for a keras.applications model or a plug-in builder.",
    args=(
        Arg("model_args", KeyValues(), {},
            "Keyword arguments for a keras.applications constructor (alpha=0.5) or your plug-in builder "
            "(width=64,depth=3), as name=value,... (values are Python literals, else text) or a YAML "
            "mapping; checked against the function's parameters. Built-in models take their own flags."),
    ),
)

# The group of each built-in model, by model name.
BUILT_IN_GROUPS = {group.name: group for group in (MLP, CNN, RESNET)}


def option_groups():
    """Returns the option groups of the models: --model_args, then one per built-in model."""
    return (MODEL_ARGS, *BUILT_IN_GROUPS.values())


def hparams_of(values, model):
    """Returns {argument name: value} of the built-in `model`'s group, read from resolved values; {} for others."""
    group = BUILT_IN_GROUPS.get(model)
    return {} if group is None else group.values(values)
