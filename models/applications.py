"""keras.applications models by name, behind a front that adapts the images.

The applications want RGB images of at least some size (32x32 for most).
Smaller or grayscale datasets get a Resizing layer and a grayscale -> RGB
channel repeat in front, so `--model MobileNetV2` works on 8x8 digits too.
"""

import os

from kerasrun.models.heads import output_layer
from kerasrun.core.errors import RunError, UsageError, first_line
from kerasrun.models.image_input import require_image_input

# The model constructors in keras.applications (Keras 3.15). A literal, so
# that validating --model needs no Keras import; a test keeps it in step.
APPLICATION_NAMES = (
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3",
    "MobileNet", "MobileNetV2", "MobileNetV3Large", "MobileNetV3Small",
    "NASNetLarge", "NASNetMobile",
    "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2", "ResNet50", "ResNet50V2",
    "VGG16", "VGG19",
    "Xception",
)

# Smallest height and width each model accepts: the `min_size` its Keras
# source passes to imagenet_utils.obtain_input_shape (MobileNetV3 checks 32
# itself). Every model not listed accepts 32.
_MIN_SIDE = {"InceptionResNetV2": 75, "InceptionV3": 75, "Xception": 71}
DEFAULT_MIN_SIDE = 32

# MobileNetV3 refuses ImageNet weights at any input size but 224x224.
_PRETRAINED_SIDE = {"MobileNetV3Large": 224, "MobileNetV3Small": 224}

RGB_CHANNELS = 3
PRETRAINED_WEIGHTS = "imagenet"


def build_application(name, input_shape, head, weights=None, model_args=None, flag="--model"):
    """Builds a keras.applications model with a fresh head for the task.

    The application is built with `include_top=False, pooling="avg"`; images
    smaller than it accepts are resized up and grayscale is repeated to RGB.

    Args:
        name: A name in `APPLICATION_NAMES`, e.g. "MobileNetV2".
        input_shape: The dataset's image shape, (height, width, channels).
        head: The `Head` the model ends in.
        weights: None for random initialization, "imagenet" to download the
            pretrained weights, or the path of a weights file. Defaults to None.
        flag: The flag the model was named with, for messages. Defaults to
            "--model".

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        UsageError: if the input is not an image with 1 or 3 channels, or
            `weights` is none of the accepted values.
        RunError: if pretrained weights are needed and cannot be downloaded.
    """
    require_image_input(input_shape, name, flag)
    height, width, channels = input_shape
    if channels not in (1, RGB_CHANNELS):
        raise UsageError(
            f"{flag}={name} needs grayscale or RGB images (1 or 3 channels); "
            f"the dataset gives {tuple(input_shape)}"
        )
    _check_weights(name, weights, flag)
    import keras

    target_size = _target_size(name, height, width, weights)
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    if target_size != (height, width):
        x = keras.layers.Resizing(*target_size, name="resize_for_application")(x)
    if channels == 1:
        # A Concatenate rather than a Lambda, so a saved model still loads
        # with safe_mode on.
        x = keras.layers.Concatenate(name="grayscale_to_rgb")([x] * RGB_CHANNELS)
    backbone = _construct_backbone(name, target_size + (RGB_CHANNELS,), weights, flag, model_args or {})
    x = backbone(x)
    outputs = output_layer(head, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{name.lower()}_{head.task}")


def _check_weights(name, weights, flag):
    if weights is None or weights == PRETRAINED_WEIGHTS:
        return
    if isinstance(weights, str) and os.path.isfile(weights):
        return
    raise UsageError(
        f"{flag}={name}: weights={weights!r} is not accepted; use none (random "
        f"initialization), {PRETRAINED_WEIGHTS!r} or the path of an existing weights file"
    )


def _target_size(name, height, width, weights):
    if weights == PRETRAINED_WEIGHTS and name in _PRETRAINED_SIDE:
        side = _PRETRAINED_SIDE[name]
        return (side, side)
    min_side = _MIN_SIDE.get(name, DEFAULT_MIN_SIDE)
    return (max(height, min_side), max(width, min_side))


def _construct_backbone(name, input_shape, weights, flag, model_args):
    import keras

    constructor = getattr(keras.applications, name)
    arguments = {"pooling": "avg", **model_args}
    try:
        return constructor(
            include_top=False, weights=weights, input_shape=input_shape, **arguments
        )
    except Exception as error:  # Keras reports a failed download as a bare Exception.
        if weights == PRETRAINED_WEIGHTS and _is_download_failure(error):
            raise RunError(
                f"{flag}={name}: pretrained weights need the network to download once "
                f"(Keras then caches them in ~/.keras/models); the download failed: "
                f"{first_line(error)}"
            ) from None
        if weights is not None and isinstance(error, ValueError):
            raise UsageError(
                f"{flag}={name}: cannot load weights={weights!r}: {first_line(error)}"
            ) from None
        if model_args and isinstance(error, (ValueError, TypeError)):
            shown = ",".join(f"{key}={value!r}" for key, value in model_args.items())
            raise UsageError(f"--model_args={shown}: keras.applications.{name} refused them: "
                             f"{first_line(error)}") from None
        raise


def _is_download_failure(error):
    # keras.utils.get_file turns HTTP and URL errors into this message; a
    # timeout or a refused connection while reading arrives as an OSError.
    return isinstance(error, OSError) or "URL fetch failure" in str(error)
