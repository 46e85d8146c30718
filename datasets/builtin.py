"""The built-in datasets: the bundled digits and Keras' downloadable ones.

Each built-in returns `((x_train, y_train), (x_val, y_val) or None)`, or
with a third pair `(x_test, y_test)`, with `x` scaled to [0, 1] float32 and
channels last, the same contract as a user's plug-in. Keras's datasets give their
official test split as the test split and no validation data: `HELD_OUT`
of their training data is held out for it (`datasets.load`), so early
stopping and the best checkpoint never choose on the test set.
"""

import functools
import os

import numpy as np

from kerasrun.core.errors import RunError
from kerasrun.core.registry import Registry

REGISTRY = Registry("dataset", "--dataset")

DEFAULT = "digits"

_DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
_DIGITS_MAX_VALUE = 16

# Keras dataset name -> whether its images lack a channel axis (grayscale).
_KERAS_DATASETS = {"mnist": True, "fashion_mnist": True, "cifar10": False, "cifar100": False}
# Fraction of a Keras dataset's training data held out for validation when --validation_split is 0.
HELD_OUT = 0.1


def is_keras_dataset(name):
    """Whether a built-in name is one of Keras's downloadable datasets (which come with a test split)."""
    return name in _KERAS_DATASETS


@REGISTRY.register("digits")
def digits():
    """Returns the bundled 8x8 handwritten digits (1437 train, 360 val, no test split)."""
    with np.load(_DIGITS_PATH, allow_pickle=False) as arrays:
        return (
            (_scale_images(arrays["x_train"], _DIGITS_MAX_VALUE, True), arrays["y_train"]),
            (_scale_images(arrays["x_val"], _DIGITS_MAX_VALUE, True), arrays["y_val"]),
        )


def load_keras_dataset(name, add_channel_axis):
    """Returns a `keras.datasets` dataset: `(train, None, test)`, its official test split as the test split.

    Args:
        name: The module name under `keras.datasets` ("mnist").
        add_channel_axis: Whether to add a trailing channel axis.

    Raises:
        RunError: if the dataset cannot be downloaded or read.
    """
    import keras  # Deferred: validating flags must not load TensorFlow.

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # Keras raises a bare Exception when offline.
        raise RunError(
            f"the Keras dataset {name!r} could not be downloaded or read ({error}); it needs "
            f"the network once to download, then is cached under {keras_cache_dir()} "
            "(delete a damaged copy there to download it again)"
        ) from error
    return (
        (_scale_images(x_train, 255, add_channel_axis), y_train.reshape(-1)),
        None,
        (_scale_images(x_test, 255, add_channel_axis), y_test.reshape(-1)),
    )


for _name, _add_channel_axis in _KERAS_DATASETS.items():
    REGISTRY.register(_name)(functools.partial(load_keras_dataset, _name, _add_channel_axis))


def keras_cache_dir():
    """Returns the folder where Keras keeps downloaded datasets."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return os.path.join(os.path.expanduser(keras_home), "datasets")


def _scale_images(images, max_value, add_channel_axis):
    # Scale in place after one copy: cifar is 600 MB as float32 already.
    scaled = images.astype(np.float32)
    scaled /= max_value
    return scaled[..., np.newaxis] if add_channel_axis else scaled
