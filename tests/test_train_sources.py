"""End-to-end runs of train.py on every dataset source and every model source.

The Keras downloads (mnist, cifar...) are tested up to the download in
tests/test_datasets.py; everything else runs here as a user would run it.
"""

import json
import textwrap

import numpy as np
import pytest

from test_train import final_metric

PLUGIN = """
import numpy as np
import keras


def load_data():
    rng = np.random.default_rng(0)
    x = rng.random((120, 6)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    return (x[:100], y[:100]), (x[100:], y[100:])


def small_model(input_shape, num_classes):
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Dense(8, activation="relu", name="plugin_hidden"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
"""


def separable(n, features, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    return x, (x[:, 0] > 0.5).astype("int64")


def trained(result):
    assert result.returncode == 0, result.stderr
    assert "Trained" in result.stdout, result.stdout
    return result.stdout


def test_npz_with_and_without_validation_arrays(train, tmp_path):
    x, y = separable(100, 4)
    np.savez(tmp_path / "with_val.npz", x_train=x[:80], y_train=y[:80], x_val=x[80:], y_val=y[80:])
    output = trained(train("--dataset", f"npz:{tmp_path / 'with_val.npz'}", "--epochs=2", "--verbose=2"))
    assert "val_accuracy" in output
    np.savez(tmp_path / "train_only.npz", x_train=x, y_train=y)
    output = trained(train("--dataset", f"npz:{tmp_path / 'train_only.npz'}", "--epochs=1",
                           "--validation_split=0.2", "--verbose=2"))
    assert "val_accuracy" in output


def test_csv_with_a_named_label_column(train, tmp_path):
    x, y = separable(60, 3)
    rows = ["f1,kind,f2,f3"] + [f"{a},{'yes' if label else 'no'},{b},{c}" for (a, b, c), label in zip(x, y)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    output = trained(train("--dataset=csv:table.csv", "--dataset_label_column=kind",
                           "--validation_split=0.25", "--epochs=2", "--verbose=2"))
    assert "val_loss" in output


def test_image_folder(train, tmp_path):
    import tensorflow as tf

    for index, label in enumerate(["cats", "dogs"] * 6):
        folder = tmp_path / "pictures" / label
        folder.mkdir(parents=True, exist_ok=True)
        shade = 40 if label == "cats" else 220
        pixels = np.full((10, 12, 3), shade, dtype=np.uint8)
        (folder / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    output = trained(train("--dataset=images:pictures", "--dataset_image_size=8,8", "--model=cnn",
                           "--validation_split=0.25", "--epochs=2", "--verbose=2"))
    assert "val_accuracy" in output
    # A damaged image passes the check of first bytes; streamed from disk, it stops training, named.
    damaged = tmp_path / "pictures" / "dogs" / "5.png"
    damaged.write_bytes(damaged.read_bytes()[:40])
    result = train("--dataset=images:pictures", "--dataset_image_size=8,8", "--dataset_cache=none",
                   "--epochs=2", "--run_name=damaged")
    line = ("error: training failed: --dataset='images:pictures': cannot decode pictures/dogs/5.png: "
            "Invalid PNG. Failed to initialize decoder.")
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == f"train.py: {line}", result.stderr
    assert json.loads((tmp_path / "tensorboard_logs" / "damaged" / "results.json").read_text())["message"] == line


@pytest.mark.parametrize("form", ["module", "file"])
def test_plugin_dataset_and_model(train, tmp_path, form):
    (tmp_path / "my_project.py").write_text(textwrap.dedent(PLUGIN))
    prefix = "my_project" if form == "module" else str(tmp_path / "my_project.py")
    output = trained(train(f"--dataset={prefix}:load_data", f"--model={prefix}:small_model",
                           "--epochs=2", "--verbose=2"))
    assert "val_accuracy" in output


@pytest.mark.parametrize("model", ["cnn", "resnet", "MobileNetV3Small"])
def test_image_models_train_on_the_digits(train, model):
    output = trained(train(f"--model={model}", "--epochs=1", "--verbose=2", "--batch_size=64"))
    assert final_metric(output, "val_accuracy") >= 0.0
