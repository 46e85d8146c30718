"""Reads `images:DIR`: one sub-folder of images per class, held in memory or streamed from disk.

DIR may instead hold split folders, `train/` with `val/` (or `validation/`)
and/or `test/`, each holding the class sub-folders; `--dataset_test DIR2`
names a test folder of the same classes.
"""

import dataclasses
import os

import numpy as np

from kerasrun.core.errors import UsageError, first_line
from kerasrun.datasets import arrays, memory, split
from kerasrun.datasets.data import Data

COLOR_MODES = ("grayscale", "rgb", "rgba")
CACHE_MODES = ("auto", "memory", "none")
# What tf.io.decode_image reads, as Keras's own image loader does.
EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# How tf.io.decode_image tells the formats it reads apart: by their first bytes, whatever the file's name.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"\xff\x0a",
               b"\x00\x00\x00\x0cJXL \r\n\x87\n")
_WEBP = (b"RIFF", b"WEBP")  # bytes 0-3 and 8-11
_HEADER_BYTES = 12
# The split folders DIR may hold instead of class folders: the split each is.
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
# Checking the first bytes of this many files or more takes long enough to say so.
_MANY_FILES = 20_000


@dataclasses.dataclass(frozen=True, eq=False)
class ImageFiles:
    """Images on disk with their labels, decoded as a pipeline reads them.

    Args:
        paths: File paths, a numpy array of str.
        labels: Class ids, a numpy array of int32, one per path.
        image_size: `(height, width)` every image is resized to.
        channels: 1, 3 or 4.
    """

    paths: np.ndarray
    labels: np.ndarray
    image_size: tuple
    channels: int

    def __len__(self):
        return len(self.paths)

    def decode(self, path):
        """Returns the image at `path` (a string tensor), resized, float32 in [0, 1]."""
        import tensorflow as tf

        image = tf.io.decode_image(tf.io.read_file(path), channels=self.channels, expand_animations=False)
        image = tf.image.resize(image, self.image_size)  # bilinear, float32, as Keras's loader does
        image.set_shape((*self.image_size, self.channels))
        return image / 255.0

    def decoded_bytes(self):
        height, width = self.image_size
        return len(self) * height * width * self.channels * 4


def read(directory, *, image_size, color_mode, validation_split, seed, cache, context, test=None):
    """Returns a `Data` of the images in `directory`'s class sub-folders (or its split folders).

    Classes are the sub-folders in sorted order; each one's images are found
    in it and its own sub-folders. When `directory` holds split folders
    (`split_folders`), classes are those of `train/`, and `val/` and `test/`
    are the validation and test splits. With a validation split, a seeded
    draw holds out images from all classes. Decoded images are held in memory
    (numpy arrays, decoded once here) when `cache` says so; otherwise
    the parts are `ImageFiles` that the pipeline decodes every epoch,
    so folders larger than memory work. Either way the pipeline orders each
    epoch by seed and epoch number, so a resumed run sees the same order.

    Args:
        directory: The folder holding one sub-folder per class.
        image_size: `(height, width)` every image is resized to.
        color_mode: One of "grayscale", "rgb", "rgba".
        validation_split: Fraction of the images held out for validation,
            in [0, 1).
        seed: Seed of the hold-out.
        cache: "memory", "none", or "auto": memory when the decoded images
            take at most a quarter of the memory free now.
        context: The flag and value, as a message prefix.
        test: The --dataset_test folder, of the same classes, or None.

    Raises:
        UsageError: if the folder holds no images in class sub-folders, or
            an option is not one of those accepted.
    """
    folders = split_folders(directory, context, validation_split, test)
    if folders:
        print(f"{context}: found the split folders {', '.join(name + '/' for name in folders.values())}: "
              "training, " + " and ".join({"val": "validation", "test": "test"}[part] for part in folders
                                          if part != "train") + " images", flush=True)
    class_names, paths, labels = _index(os.path.join(directory, folders["train"]) if folders else directory, context)
    channels = _CHANNELS[color_mode]
    size = tuple(image_size)
    parts = {"train": ImageFiles(paths, labels, size, channels)}
    origins = {}
    if validation_split > 0:
        (paths, labels), (val_paths, val_labels) = split.hold_out(paths, labels, validation_split, seed)
        parts = {"train": ImageFiles(paths, labels, size, channels),
                 "val": ImageFiles(val_paths, val_labels, size, channels)}
        origins["validation"] = arrays.held_out_words(validation_split)
    others = {part: (os.path.join(directory, name), context) for part, name in folders.items() if part != "train"}
    if test:
        others["test"] = (test, f"--dataset_test={test!r}")
    for part, (folder, where) in others.items():
        parts[part] = ImageFiles(*_index_split(folder, class_names, where), size, channels)
        origins[{"val": "validation"}.get(part, part)] = (f"--dataset_test {folder}" if folder == test
                                                          else f"{os.path.basename(folder)}/")
    if _held_in_memory(cache, parts.values()):
        parts = {part: _decoded(files, context) for part, files in parts.items()}
    return Data(
        train=parts["train"],
        val=parts.get("val"),
        test=parts.get("test"),
        origins=origins,
        input_shape=(*size, channels),
        num_classes=len(class_names),
        label_kind="int",
        class_names=class_names,
    )


def split_folders(directory, context, validation_split=0.0, test=None):
    """Returns {"train": name, "val": name, "test": name} of the split folders `directory` holds, or {}.

    A folder holds split folders when its (visible) sub-folders include
    `train/` with `val/` (or `validation/`) and/or `test/`, and `train/`
    holds sub-folders of its own (the classes). Cheap: lists two folders.

    Raises:
        UsageError: for other folders beside the splits (they would be read
            as classes, test/ among them), both val/ and validation/, a val/ folder with
            --validation_split, or a test/ folder with --dataset_test.
    """
    names = [entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith(".")]
    splits = [name for name in names if name in SPLIT_FOLDERS]
    if "train" not in names or len(splits) < 2:
        return {}
    if not any(entry.is_dir() and not entry.name.startswith(".")
               for entry in os.scandir(os.path.join(directory, "train"))):
        return {}  # train/ holds images: a class called "train".
    others = sorted(set(names) - set(SPLIT_FOLDERS))
    if others:  # Read as classes, test/ would be trained on.
        raise UsageError(f"{context}: holds the split folders {', '.join(sorted(splits))}/ and also "
                         f"{', '.join(others[:3])}{', ...' if len(others) > 3 else ''}/; a folder of splits holds "
                         "only train/, val/ (or validation/) and test/: move the others out (or hide them: .name)")
    if "val" in names and "validation" in names:
        raise UsageError(f"{context}: holds both val/ and validation/; keep one validation folder")
    folders = {SPLIT_FOLDERS[name]: name for name in sorted(names, key=list(SPLIT_FOLDERS).index)}
    if "val" in folders and validation_split > 0:
        raise UsageError(f"--validation_split={validation_split}: {context} has its own validation folder "
                         f"{folders['val']}/; leave out --validation_split to use it, or remove the folder")
    if "test" in folders and test:
        raise UsageError(f"--dataset_test={test!r}: {context} has its own test/ folder; leave out "
                         "--dataset_test to use it, or remove the folder")
    return folders


def check_folder(directory, context, test=None, validation_split=0.0):
    """Refuses a folder `read` would refuse while indexing it (nothing is decoded).

    Raises:
        UsageError: as `read` does, for the folder's classes and files.
    """
    folders = split_folders(directory, context, validation_split, test)
    class_names = _index(os.path.join(directory, folders["train"]) if folders else directory, context)[0]
    for part, name in folders.items():
        if part != "train":
            _index_split(os.path.join(directory, name), class_names, context)
    if test:
        _index_split(test, class_names, f"--dataset_test={test!r}")


def _index_split(directory, class_names, context):
    """Returns `(paths, labels)` of a validation or test folder, labelled with the training folder's classes.

    Raises:
        UsageError: for a class folder the training folder lacks (a class
            training lacks may be missing), or no images at all.
    """
    names, paths, labels = _index(directory, context, allow_empty=True)
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise UsageError(f"{context}: class folder(s) {', '.join(unknown)} in {directory} are not classes of the "
                         f"training images ({', '.join(class_names)}), so the model would never learn them")
    ids = np.array([class_names.index(name) for name in names], dtype=np.int32)
    return paths, ids[labels] if len(labels) else labels


def _index(directory, context, allow_empty=False):
    """Returns `(class_names, paths, labels)`: every image under the class sub-folders, sorted.

    `allow_empty` lets class folders be empty (in a test folder) while some
    image is found.
    """
    folders = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    hidden = [name for name in folders if name.startswith(".")]
    if hidden:  # .ipynb_checkpoints, .git, ...: not classes.
        print(f"{context}: skipping hidden folder(s) {', '.join(hidden)}: not classes", flush=True)
    class_names = tuple(name for name in folders if not name.startswith("."))
    paths, labels, empty = [], [], []
    for label, name in enumerate(class_names):
        found = []
        for folder, subfolders, files in os.walk(os.path.join(directory, name)):
            subfolders[:] = [sub for sub in subfolders if not sub.startswith(".")]
            found.extend(os.path.join(folder, file) for file in files  # ._x.jpg is macOS's metadata, say.
                         if file.lower().endswith(EXTENSIONS) and not file.startswith("."))
        paths.extend(sorted(found))
        labels.extend([label] * len(found))
        empty.extend([] if found else [name])
    # An empty training class would still count as one: the model would get an output for it.
    if paths and empty and not allow_empty:
        raise UsageError(f"{context}: class folder(s) {', '.join(empty)} in {directory} hold no images "
                         f"({', '.join(EXTENSIONS)}); remove them or add images")
    if not paths:
        raise UsageError(
            f"{context}: no images ({', '.join(EXTENSIONS)}) in the sub-folders of {directory} "
            "(expected one sub-folder of images per class)"
        )
    _check_headers(paths, context)
    return class_names, np.array(paths), np.array(labels, dtype=np.int32)


def _check_headers(paths, context):
    """Refuses the first file that is not an image TensorFlow can decode, by its first bytes.

    Cheap (a few bytes per file), so a file that is not an image at all (an
    empty file, a web page saved as .jpg) is named before training, even when
    the images are streamed from disk; a damaged image is found by decoding.
    """
    if len(paths) >= _MANY_FILES:
        print(f"{context}: checking the first bytes of {len(paths)} images", flush=True)
    for path in paths:
        try:
            with open(path, "rb") as stream:
                header = stream.read(_HEADER_BYTES)
        except OSError as error:
            raise UsageError(f"{context}: cannot read {path}: {error.strerror or error}") from None
        if not (header.startswith(_SIGNATURES) or (header[:4], header[8:12]) == _WEBP):
            what = "it is empty" if not header else "it is not a JPEG, PNG, GIF or BMP image"
            raise UsageError(f"{context}: cannot decode {path}: {what}")


def _held_in_memory(cache, parts):
    if cache != "auto":
        return cache == "memory"
    return memory.fits_in_free_memory(sum(part.decoded_bytes() for part in parts))


def _decoded(files, context):
    """Returns `(x, y)` numpy arrays: every image of `files` decoded once, in order."""
    import tensorflow as tf

    count = len(files)
    print(f"{context}: decoding {count} images into memory ({files.decoded_bytes() / 2**20:.0f} MiB; "
          "--dataset_cache none streams them from disk instead)", flush=True)
    x = np.empty((count, *files.image_size, files.channels), np.float32)
    images = (tf.data.Dataset.from_tensor_slices(files.paths)
              .map(files.decode, num_parallel_calls=tf.data.AUTOTUNE).batch(256).prefetch(1))
    start = 0
    try:
        for batch in images.as_numpy_iterator():
            x[start:start + len(batch)] = batch
            start += len(batch)
    except tf.errors.OpError as error:
        raise UsageError(f"{context}: {undecodable(files, start) or f'cannot decode an image: {first_line(error)}'}"
                         ) from None
    return x, files.labels


def undecodable(files, start=0):
    """Returns "cannot decode PATH: reason" for the first image from `start` on that does not decode, or None."""
    import tensorflow as tf

    for path in files.paths[start:]:
        try:
            files.decode(tf.constant(path))
        except tf.errors.OpError as error:
            return f"cannot decode {path}: {first_line(error)}"
    return None
