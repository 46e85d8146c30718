"""Tests for models/: validation, built-ins, applications, .keras files, plug-ins."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from conftest import IMPORT_KERASRUN
from kerasrun import models
from kerasrun.core.heads import Head
from kerasrun.core.errors import RunError, UsageError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS_PATH = os.path.join(REPO_ROOT, "datasets", "digits.npz")
DIGITS_SHAPE = (8, 8, 1)
DIGITS_CLASSES = 10
# The default number of epochs recommended for the mlp on the digits.
MLP_DIGITS_EPOCHS = 10


def _write_module(directory, filename, source):
    path = directory / filename
    path.write_text(textwrap.dedent(source))
    return path


def _tiny_model(input_shape=DIGITS_SHAPE, num_classes=DIGITS_CLASSES):
    return models.build("mlp", input_shape=input_shape, head=Head("classification", num_classes))


# check_source


@pytest.mark.parametrize("value", ["mlp", "cnn", "resnet", "MobileNetV2", "ResNet50"])
def test_check_source_accepts_names(value):
    models.check_source(value)


def test_check_source_accepts_existing_keras_file_and_plugin_file(tmp_path):
    saved = tmp_path / "model.keras"
    saved.write_bytes(b"not checked before build")
    plugin = _write_module(tmp_path, "builder.py", "def make(input_shape, num_classes): pass\n")
    models.check_source(str(saved))
    models.check_source(f"{plugin}:make")


def test_unknown_name_lists_built_ins_and_mentions_applications():
    with pytest.raises(UsageError) as raised:
        models.check_source("transformer")
    message = str(raised.value)
    assert "--model='transformer'" in message
    assert "cnn, mlp, resnet" in message
    assert "keras.applications" in message


def test_unknown_name_suggests_the_close_one_and_names_the_flag():
    with pytest.raises(UsageError, match=r"--teacher='mobilenetv2'.*did you mean 'MobileNetV2'"):
        models.check_source("mobilenetv2", flag="--teacher")


def test_missing_keras_file_is_refused(tmp_path):
    missing = str(tmp_path / "nowhere.keras")
    with pytest.raises(UsageError, match=r"--model=.*nowhere\.keras.*no such \.keras file"):
        models.check_source(missing)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("my models:build", "expected module:function"),
        ("no_such_module_xyz:build", "no module named 'no_such_module_xyz'"),
        ("missing_file.py:build", "does not exist"),
        ("builder.py", "also name the function"),
    ],
)
def test_malformed_or_missing_plugin_specs_are_refused(value, expected):
    with pytest.raises(UsageError, match=expected) as raised:
        models.check_source(value)
    assert f"--model={value!r}" in str(raised.value)


def test_check_source_imports_neither_tensorflow_nor_keras():
    script = (
        f"{IMPORT_KERASRUN}\nimport sys\nfrom kerasrun import models\n"
        "models.check_source('mlp')\n"
        "models.check_source('MobileNetV2')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# Built-ins


def test_names_are_the_sorted_built_ins():
    assert models.names() == ["cnn", "mlp", "resnet"]


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("input_shape, num_classes", [((8, 8, 1), 10), ((32, 32, 3), 4)])
def test_built_ins_build_with_a_softmax_over_the_classes(name, input_shape, num_classes):
    model = models.build(name, input_shape=input_shape, head=Head("classification", num_classes))
    assert model.output_shape == (None, num_classes)
    assert not model.compiled
    predictions = model.predict(np.random.rand(2, *input_shape).astype("float32"), verbose=0)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_image_models_refuse_flat_input(name):
    with pytest.raises(UsageError) as raised:
        models.build(name, input_shape=(64,), head=Head("classification", 10))
    assert str(raised.value) == (
        f"--model={name} needs image input (height, width, channels); the dataset gives (64,)"
    )


def test_mlp_learns_the_digits_in_the_recommended_epochs():
    digits = np.load(DIGITS_PATH)

    def as_images(pixels):
        return (pixels.astype("float32") / 16.0)[..., np.newaxis]

    keras.utils.set_random_seed(0)
    model = models.build("mlp", input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        as_images(digits["x_train"]),
        digits["y_train"],
        validation_data=(as_images(digits["x_val"]), digits["y_val"]),
        epochs=MLP_DIGITS_EPOCHS,
        batch_size=32,
        verbose=0,
    )
    assert history.history["val_accuracy"][-1] >= 0.9


# keras.applications


def test_application_names_match_keras_applications():
    provided = sorted(
        name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )
    assert models.application_names() == provided


def test_application_on_small_grayscale_images_gets_a_front_and_survives_saving(tmp_path):
    model = models.build("MobileNetV3Small", input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    layer_names = [layer.name for layer in model.layers]
    assert "resize_for_application" in layer_names
    assert "grayscale_to_rgb" in layer_names
    assert model.output_shape == (None, DIGITS_CLASSES)
    images = np.random.rand(2, *DIGITS_SHAPE).astype("float32")
    assert model.predict(images, verbose=0).shape == (2, DIGITS_CLASSES)
    # The front must load with safe_mode on, so a trained model can be reused.
    path = str(tmp_path / "mobilenet.keras")
    model.save(path)
    reloaded = models.build(path, input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    np.testing.assert_allclose(
        reloaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "input_shape, expected",
    [((64,), "needs image input"), ((8, 8, 4), "needs grayscale or RGB images")],
)
def test_application_refuses_input_it_cannot_take(input_shape, expected):
    with pytest.raises(UsageError, match=rf"--model=MobileNet {expected}"):
        models.build("MobileNet", input_shape=input_shape, head=Head("classification", 10))


def test_application_refuses_unknown_weights():
    with pytest.raises(UsageError, match=r"weights='imagenet21k' is not accepted"):
        models.build("MobileNet", input_shape=(32, 32, 3), head=Head("classification", 10), weights="imagenet21k")


def test_failed_weight_download_is_a_one_line_run_error(monkeypatch):
    def offline_get_file(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/w.h5: None -- offline")

    # Keras' own applications fetch their weights through this function.
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline_get_file)
    with pytest.raises(RunError) as raised:
        models.build("MobileNetV3Small", input_shape=DIGITS_SHAPE, head=Head("classification", 10), weights="imagenet")
    message = str(raised.value)
    assert "need the network to download once" in message
    assert "\n" not in message


# Saved .keras files


def test_keras_file_round_trip_keeps_the_weights(tmp_path):
    original = _tiny_model()
    path = str(tmp_path / "trained.keras")
    original.save(path)
    loaded = models.build(path, input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    assert not loaded.compiled
    for loaded_weights, original_weights in zip(loaded.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(loaded_weights, original_weights)


@pytest.mark.parametrize(
    "input_shape, num_classes, expected",
    [
        ((4, 4, 1), 10, r"takes input of shape \(8, 8, 1\) but the dataset gives \(4, 4, 1\)"),
        (DIGITS_SHAPE, 3, r"predicts 10 classes but the dataset has 3"),
    ],
)
def test_keras_file_that_does_not_fit_the_data_is_refused(tmp_path, input_shape, num_classes, expected):
    path = str(tmp_path / "trained.keras")
    _tiny_model().save(path)
    with pytest.raises(UsageError, match=expected) as raised:
        models.build(path, input_shape=input_shape, head=Head("classification", num_classes))
    assert f"--model={path!r}" in str(raised.value)


def test_corrupt_keras_file_is_refused(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(UsageError, match="cannot load this .keras file") as raised:
        models.build(str(path), input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    assert f"--model={str(path)!r}" in str(raised.value)


# Plug-ins

PLUGIN_SOURCE = """
    import keras

    received = {}

    def make_model(input_shape, num_classes):
        received.update(input_shape=input_shape, num_classes=num_classes)
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Flatten()(inputs)
        outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    def make_nothing(input_shape, num_classes):
        return None

    def make_positional_only(shape, classes, /):
        return None

    def make_unbuilt_sequential(input_shape, num_classes):
        return keras.Sequential([keras.layers.Dense(10)])  # keras.callbacks.EarlyStopping's example

    class Net(keras.Model):
        def __init__(self, classes):
            super().__init__()
            self.hidden, self.out = keras.layers.Dense(8), keras.layers.Dense(classes)

        def call(self, x):
            return self.out(self.hidden(keras.ops.reshape(x, (-1, 64))))

    def make_subclassed(input_shape, num_classes):
        return Net(num_classes)

    class OneChannel(Net):
        def call(self, x):
            if x.shape[-1] != 1:
                raise ValueError(f"expected one channel, got input of shape {x.shape}")
            return super().call(x)

    def make_one_channel(input_shape, num_classes):
        return OneChannel(num_classes)
"""


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Writes a plug-in module under a name unique to the test and returns that name."""
    name = f"plugin_{os.path.basename(tmp_path)}".replace("-", "_")
    _write_module(tmp_path, f"{name}.py", PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_plugin_module_function_receives_keywords(plugin_module):
    model = models.build(f"{plugin_module}:make_model", input_shape=DIGITS_SHAPE, head=Head("classification", 7))
    assert model.output_shape == (None, 7)
    assert sys.modules[plugin_module].received == {"input_shape": DIGITS_SHAPE, "num_classes": 7}


def test_plugin_file_function_receives_keywords(tmp_path):
    path = _write_module(tmp_path, "my_model.py", PLUGIN_SOURCE)
    model = models.build(f"{path}:make_model", input_shape=(5,), head=Head("classification", 3))
    assert model.output_shape == (None, 3)


@pytest.mark.parametrize("function, width", [("make_unbuilt_sequential", 10), ("make_subclassed", 4),
                                             ("make_model", 4)])
def test_output_width_builds_a_model_without_shapes_on_the_input_shape(plugin_module, function, width):
    model = models.build(f"{plugin_module}:{function}", input_shape=DIGITS_SHAPE, head=Head("classification", 4))
    assert models.output_width(model, "m", DIGITS_SHAPE) == width
    assert model.built and model.weights
    assert model.predict(np.zeros((2, *DIGITS_SHAPE)), verbose=0).shape[-1] == width


def test_a_model_that_cannot_take_the_input_shape_is_refused_naming_the_flag(plugin_module):
    model = models.build(f"{plugin_module}:make_one_channel", input_shape=(5,), head=Head("classification", 4))
    with pytest.raises(UsageError, match=r"^--model='m': the model cannot take the dataset's input of shape \(5,\): "
                                         r"expected one channel"):
        models.output_width(model, "m", (5,))


def test_plugin_returning_something_else_is_refused(plugin_module):
    with pytest.raises(UsageError, match=r"make_nothing'?: the function returned None, not a keras.Model"):
        models.build(f"{plugin_module}:make_nothing", input_shape=DIGITS_SHAPE, head=Head("classification", 10))


def test_plugin_without_the_keywords_is_refused(plugin_module):
    with pytest.raises(UsageError, match="must accept the keyword arguments input_shape and num_classes"):
        models.build(f"{plugin_module}:make_positional_only", input_shape=DIGITS_SHAPE, head=Head("classification", 10))


def test_keras_file_with_code_is_refused_in_safe_mode_naming_the_flag(tmp_path):
    inputs = keras.Input(DIGITS_SHAPE)
    flat = keras.layers.Flatten()(inputs)
    doubled = keras.layers.Lambda(lambda x: x * 2)(flat)
    model = keras.Model(inputs, keras.layers.Dense(DIGITS_CLASSES, activation="softmax")(doubled))
    path = str(tmp_path / "with_code.keras")
    model.save(path)
    with pytest.raises(UsageError) as caught:
        models.build(path, input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES))
    assert "--model_safe_mode False" in str(caught.value)
    loaded = models.build(path, input_shape=DIGITS_SHAPE, head=Head("classification", DIGITS_CLASSES), safe_mode=False)
    assert loaded.output_shape == (None, DIGITS_CLASSES)
