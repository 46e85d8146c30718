"""Reads `images:DIR`: one sub-folder of images per class, streamed from disk."""

from datasets.data import Data
from runner.errors import UsageError

COLOR_MODES = ("grayscale", "rgb", "rgba")


def read(directory, *, image_size, color_mode, validation_split, seed, context):
    """Returns a `Data` whose `train` and `val` are unbatched `tf.data.Dataset`s.

    Images are decoded file by file as the datasets are iterated, so folders
    larger than memory work. Keras shuffles the file names with `seed` before
    holding out validation files (so both parts mix classes) and reshuffles
    the training file names every epoch.

    Args:
        directory: The folder holding one sub-folder per class.
        image_size: `(height, width)` every image is resized to.
        color_mode: One of "grayscale", "rgb", "rgba".
        validation_split: Fraction of the images held out for validation,
            in [0, 1).
        seed: Seed of the file-name shuffles.
        context: The flag and value, as a message prefix.

    Raises:
        UsageError: if the folder holds no images in class sub-folders, or
            Keras refuses an option.
    """
    import keras  # Deferred: validating flags must not load TensorFlow.

    options = dict(
        labels="inferred",
        label_mode="int",
        batch_size=None,
        image_size=tuple(image_size),
        color_mode=color_mode,
        shuffle=True,
        seed=seed,
    )
    if validation_split > 0:
        options.update(validation_split=validation_split, subset="both")
    try:
        loaded = keras.utils.image_dataset_from_directory(directory, **options)
    except ValueError as error:
        raise UsageError(
            f"{context}: {error} (expected one sub-folder of images per class)"
        ) from None
    train, val = loaded if validation_split > 0 else (loaded, None)
    class_names = tuple(train.class_names)
    return Data(
        train=_scaled_to_unit_range(train),
        val=None if val is None else _scaled_to_unit_range(val),
        input_shape=tuple(train.element_spec[0].shape),
        num_classes=len(class_names),
        label_kind="int",
        class_names=class_names,
    )


def _scaled_to_unit_range(dataset):
    import tensorflow as tf

    return dataset.map(
        lambda image, label: (image / 255.0, label), num_parallel_calls=tf.data.AUTOTUNE
    )
