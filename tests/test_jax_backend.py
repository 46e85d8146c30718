"""--backend jax, run as a user runs train.py: a few processes, each checking many things.

The callbacks' end-to-end run (test_train_callbacks.py), resume after kill -9
(test_resume.py) and the refusals (test_bad_input.py) run on JAX there too.
"""

import json
import os
import textwrap

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_train, write_images
from test_train import own_lines

PLUGINS = """
import keras
import numpy as np


def load():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return (x[:240], y[:240]), (x[240:], y[240:])


def build(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Dropout(0.2)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(hidden))
"""

RUN = ["--backend=jax", "--dataset=plugins:load", "--model=plugins:build", "--epochs=4", "--batch_size=16",
       "--seed=3", "--deterministic=True", "--verbose=2", "--class_weight=balanced",
       "--mixed_precision=mixed_bfloat16",
       "--tensorboard=True", "--tensorboard_histogram_freq=1",
       "--model_checkpoint=True", "--early_stopping=True", "--early_stopping_patience=3",
       "--early_stopping_restore_best_weights=True", "--reduce_lr=True", "--reduce_lr_patience=1"]


def results(workdir, name):
    with open(workdir / "tensorboard_logs" / name / "results.json") as stream:
        return json.load(stream)


def tags(event_dir):
    accumulator = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator.Tags()["tensors"]


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """The same seeded run twice: once plain, once with KERAS_BACKEND=tensorflow in the environment."""
    workdir = tmp_path_factory.mktemp("jax")
    (workdir / "plugins.py").write_text(textwrap.dedent(PLUGINS))
    first = run_train([*RUN, "--run_name=first"], cwd=workdir)
    second = run_train([*RUN, "--run_name=second"], cwd=workdir, env={"KERAS_BACKEND": "tensorflow"})
    return workdir, first, second


def test_a_run_on_jax_uses_jax_and_every_callback_acts(twice):
    workdir, first, _ = twice
    assert first.returncode == 0, first.stderr[-3000:]
    record = results(workdir, "first")
    assert record["status"] == "completed" and record["epochs_completed"] == 4
    assert record["hparams"]["backend"] == "jax"
    assert "backend: jax" in (workdir / "tensorboard_logs" / "first" / "config.yaml").read_text()
    run = workdir / "tensorboard_logs" / "first"
    # TensorBoard: epoch scalars, weight histograms; HParams with the backend among them.
    train_tags = tags(run / "train")
    assert "epoch_loss" in train_tags and "epoch_learning_rate" in train_tags
    assert any(tag.endswith("/histogram") for tag in train_tags), train_tags
    assert "epoch_loss" in tags(run / "validation")
    assert any(tag.startswith("final/") for tag in tags(run))
    # ModelCheckpoint and best.keras; ReduceLROnPlateau and early stopping logged and restored.
    assert sorted(os.listdir(run / "checkpoints")) == [f"epoch{n:02d}.keras" for n in (1, 2, 3, 4)]
    assert (run / "best.keras").is_file() and (run / "model.keras").is_file()
    assert "learning_rate" in record["final"]
    # The runner's own lines on stderr: none but TensorFlow's start-up ones.
    assert own_lines(first.stderr) == [], first.stderr


def test_the_flag_wins_over_keras_backend_in_the_environment_and_seeded_runs_repeat(twice):
    workdir, first, second = twice
    assert second.returncode == 0, second.stderr[-3000:]
    assert own_lines(second.stderr) == [
        "train.py: warning: KERAS_BACKEND=tensorflow in the environment is overridden by --backend=jax; "
        "the run trains on jax"]
    assert results(workdir, "second")["hparams"]["backend"] == "jax"
    # --deterministic True on JAX: the same seed, the same numbers, to the last bit.
    one, other = results(workdir, "first"), results(workdir, "second")
    assert one["final"] == other["final"] and one["best"] == other["best"]


def test_dry_run_shows_the_backend(tmp_path):
    result = run_train(["--backend=jax", "--dry_run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "backend: jax" in result.stdout and "# Backend: Keras on jax (KERAS_BACKEND=jax)" in result.stdout
    assert not (tmp_path / "tensorboard_logs").exists()


def test_data_parallel_on_two_jax_devices_with_cached_images_ema_and_a_test_split(tmp_path):
    write_images(tmp_path / "pictures" / "train", {"circle": 21, "square": 20}, size=(9, 9))
    write_images(tmp_path / "pictures" / "test", {"circle": 5, "square": 4}, size=(9, 9))
    result = run_train(
        ["--backend=jax", "--dataset=images:pictures", "--dataset_cache=memory", "--dataset_image_size=8,8",
         "--validation_split=0.2", "--epochs=2", "--batch_size=8", "--distribution_strategy=mirrored",
         "--swap_ema_weights=True", "--backup_and_restore=True", "--run_name=parallel"],
        cwd=tmp_path, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train.py: data parallel over 2 JAX devices (cpu:0, cpu:1)" in result.stderr
    # 41 images: 33 training, 8 validation; 9 test. Each pass's last batch is cut to an even size.
    assert "leaving out 1 training, 1 test example(s)" in result.stdout
    assert "on the test split (8 examples)" in result.stdout
    record = results(tmp_path, "parallel")
    assert record["status"] == "completed" and record["epochs_completed"] == 2
    assert set(record["test"]) == {"accuracy", "loss"}
    assert not (tmp_path / "tensorboard_logs" / "parallel" / "backup").exists()  # Removed once training completed.


def test_predict_on_jax_with_a_jax_runs_model(twice):
    workdir, first, _ = twice
    assert first.returncode == 0
    result = run_train(["--backend=jax", "--mode=predict", "--model=tensorboard_logs/first", "--dataset=plugins:load",
                        "--predictions_file=predictions.npz"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(workdir / "predictions.npz") as saved:
        assert saved["predictions"].shape == (300, 3) and saved["predicted"].shape == (300,)
        assert np.allclose(saved["predictions"].sum(axis=1), 1, atol=1e-2)  # Softmax rows, computed in bfloat16.


def test_the_backend_is_set_before_validation_and_refused_when_it_cannot_be(monkeypatch):
    import importlib.util
    import sys

    from kerasrun.cli import config
    from kerasrun.cli.backend import check_backend
    from kerasrun.core.errors import UsageError

    import keras

    # As in train.py, before anything imported Keras (another test of this process may have).
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    environ = {"KERAS_BACKEND": "torch"}
    assert config.use_backend("jax", environ, typed=False) == [
        "KERAS_BACKEND=torch in the environment is overridden by --backend=jax (the default); the run trains on "
        "jax (--backend takes tensorflow or jax)"]
    assert config.use_backend("tensorflow", {"KERAS_BACKEND": "jax"}, typed=False) == [
        "KERAS_BACKEND=jax in the environment is overridden by --backend=tensorflow (the default); the run trains "
        "on tensorflow (--backend jax trains on it)"]
    assert environ == {"KERAS_BACKEND": "jax"}
    assert config.use_backend("jax", environ) == []  # Already so: nothing to say.
    # This process imported Keras on TensorFlow: it cannot become JAX.
    monkeypatch.setitem(sys.modules, "keras", keras)
    with pytest.raises(UsageError, match=r"--backend=jax: Keras was imported already, on tensorflow"):
        config.use_backend("jax", {})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real_find_spec(name, *a))
    with pytest.raises(UsageError, match=r"--backend=jax: JAX is not installed; pip install 'jax\[cpu\]==0.10.2'"):
        config.use_backend("jax", {})
    assert "keras" in sys.modules

    # Keras profiles JAX from Python 3.12 on: refused before, let through after.
    profiled = {**dict(config.resolve(["train.py", "--backend=jax"])), "tensorboard": True,
                "tensorboard_profile_batch": 2}
    with pytest.raises(UsageError, match="--tensorboard_profile_batch=2: Keras profiles training on --backend jax"):
        check_backend(config.Checker(profiled, {}, config.all_options(), has_validation=True), version=(3, 11, 7))
    check_backend(config.Checker(profiled, {}, config.all_options(), has_validation=True), version=(3, 12, 0))
