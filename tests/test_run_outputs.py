"""What a run leaves behind: model.keras, the test split's score, and what refuses to touch the test split."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMPORT_KERASRUN


def _results(tmp_path):
    (run_dir,) = [path for path in (tmp_path / "tensorboard_logs").iterdir() if path.is_dir()]
    return run_dir, json.loads((run_dir / "results.json").read_text())


def _fresh_process(code, cwd):
    """Runs `code` in a new Python process (our package importable) and returns what it printed, parsed as JSON."""
    done = subprocess.run([sys.executable, "-c", f"{IMPORT_KERASRUN}\n{code}"], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_default_run_leaves_a_model_that_reproduces_its_final_validation_score(train, tmp_path):
    done = train("--epochs", "2", "--results_file", "all.jsonl")
    assert done.returncode == 0, done.stderr
    run_dir, results = _results(tmp_path)
    model_file = run_dir / "model.keras"
    assert results["model_file"] == os.path.relpath(model_file, tmp_path)
    assert f"Saved the trained model to {results['model_file']}" in done.stdout
    assert results["test"] is None and "Test " not in done.stdout  # digits has no test split
    line = json.loads((tmp_path / "all.jsonl").read_text())
    assert line["model_file"] == results["model_file"] and line["test"] is None
    assert not [name for name in os.listdir(run_dir) if name.startswith(".tmp-")]

    scores = _fresh_process(f"""
import json, keras
from kerasrun.datasets import builtin
(_, _), (x, y) = builtin.digits()
model = keras.saving.load_model({str(model_file)!r})
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print(json.dumps(model.evaluate(x, y, verbose=0, return_dict=True)))
""", tmp_path)
    assert scores["accuracy"] == pytest.approx(results["final"]["val_accuracy"], abs=1e-6)
    assert scores["loss"] == pytest.approx(results["final"]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("args, flag, words", [
    (["--early_stopping", "True", "--early_stopping_monitor", "test_accuracy"], "--early_stopping_monitor",
     "the test split is evaluated once, after training"),
    (["--model_checkpoint", "True", "--model_checkpoint_monitor", "test_loss"], "--model_checkpoint_monitor",
     "'val_loss'"),
    (["--evaluate_weights", "best"], "--evaluate_weights", "--model_checkpoint True"),
    (["--evaluate_weights", "best", "--early_stopping", "True"], "--evaluate_weights",
     "--early_stopping_restore_best_weights True"),
])
def test_the_test_split_cannot_guide_training_and_best_weights_need_a_keeper(train, tmp_path, args, flag, words):
    done = train(*args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"train.py: error: {flag}") and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tensorboard_logs").exists()


def write_npz_with_test(path, seed=0):
    """Writes a small separable 3-class problem with train, validation and test arrays."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6)) * 3

    def part(count):
        y = rng.integers(0, 3, count)
        return (centres[y] + rng.normal(size=(count, 6))).astype("float32"), y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(240), part(60), part(90)
    np.savez(path, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test)


def _scalars(run_dir):
    """The scalar summaries of the run directory's own event file (the HParams session): tag -> value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    import tensorflow as tf

    return {tag: float(tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto)) for tag in events.Tags()["tensors"]
            if tag.startswith(("final/", "test/"))}


def test_a_test_split_is_scored_once_after_training_and_recorded_everywhere(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    done = train("--dataset", "npz:data.npz", "--epochs", "3", "--results_file", "all.jsonl")
    assert done.returncode == 0, done.stderr
    assert "splits: 240 training, 60 validation (x_val, y_val), 90 test (x_test, y_test)" in done.stdout
    assert "Evaluating the weights training ended with on the test split (90 examples)..." in done.stdout
    run_dir, results = _results(tmp_path)
    test = results["test"]
    assert set(test) == {"loss", "accuracy"} and results["test_weights"] == "last"
    assert f"Test accuracy: {test['accuracy']:.6g}  loss: {test['loss']:.6g}" in done.stdout
    assert json.loads((tmp_path / "all.jsonl").read_text())["test"] == test
    scalars = _scalars(run_dir)
    assert scalars["test/accuracy"] == pytest.approx(test["accuracy"])
    assert scalars["test/loss"] == pytest.approx(test["loss"])
    assert scalars["final/val_accuracy"] == pytest.approx(results["final"]["val_accuracy"])

    scores = _fresh_process(f"""
import json, keras, numpy as np
arrays = np.load("data.npz")
model = keras.saving.load_model({str(run_dir / "model.keras")!r})
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print(json.dumps(model.evaluate(arrays["x_test"], arrays["y_test"], verbose=0, return_dict=True)))
""", tmp_path)
    assert scores["accuracy"] == pytest.approx(test["accuracy"], abs=1e-6)
    assert scores["loss"] == pytest.approx(test["loss"], rel=1e-5)

    # Later, by hand: --mode evaluate on the run's directory scores the same split the same.
    done = train("--mode", "evaluate", "--model", str(run_dir), "--dataset", "npz:data.npz")
    assert done.returncode == 0, done.stderr
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["split"] == "test" and evaluation["examples"] == 90
    assert evaluation["metrics"]["loss"] == pytest.approx(test["loss"], rel=1e-6)
    assert evaluation["metrics"]["accuracy"] == pytest.approx(test["accuracy"], abs=1e-7)


def test_best_weights_restored_by_early_stopping_are_the_ones_scored_and_no_model_is_saved_when_asked(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    done = train("--dataset", "npz:data.npz", "--epochs", "3", "--save_model", "False", "--early_stopping", "True",
                 "--early_stopping_restore_best_weights", "True", "--evaluate_weights", "best")
    assert done.returncode == 0, done.stderr
    run_dir, results = _results(tmp_path)
    assert results["model_file"] is None and not (run_dir / "model.keras").exists()
    assert "Saved the trained model" not in done.stdout
    assert results["test_weights"] == "best"
    assert re.search(r"Evaluating the best weights by val_loss \(epoch [123]\), as early stopping restored them on "
                     r"the test split \(90 examples\)", done.stdout)
    assert set(results["test"]) == {"loss", "accuracy"}


def test_best_weights_of_the_checkpoint_are_scored_while_model_keras_keeps_the_last(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    done = train("--dataset", "npz:data.npz", "--epochs", "3", "--model_checkpoint", "True",
                 "--evaluate_weights", "best", "--model_checkpoint_monitor", "val_accuracy")
    assert done.returncode == 0, done.stderr
    assert "Evaluating the best weights by val_accuracy, from best.keras on the test split" in done.stdout
    run_dir, results = _results(tmp_path)
    assert results["test_weights"] == "best"
    scores = _fresh_process(f"""
import json, keras, numpy as np
arrays = np.load("data.npz")
scores = {{}}
for name, x, y in [("best.keras", "x_test", "y_test"), ("model.keras", "x_val", "y_val")]:
    model = keras.saving.load_model({str(run_dir)!r} + "/" + name)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    scores[name] = model.evaluate(arrays[x], arrays[y], verbose=0, return_dict=True)
print(json.dumps(scores))
""", tmp_path)
    assert scores["best.keras"]["loss"] == pytest.approx(results["test"]["loss"], rel=1e-5)
    assert scores["model.keras"]["loss"] == pytest.approx(results["final"]["val_loss"], rel=1e-5)


def test_best_weights_are_only_claimed_when_early_stopping_restored_some(train, tmp_path):
    write_npz_with_test(tmp_path / "data.npz")
    done = train("--dataset", "npz:data.npz", "--epochs", "2", "--evaluate_weights", "best", "--early_stopping", "True",
                 "--early_stopping_restore_best_weights", "True", "--early_stopping_start_from_epoch", "5")
    assert done.returncode == 0, done.stderr
    assert ("Evaluating the weights training ended with (not the best: early stopping watched no epoch, see "
            "--early_stopping_start_from_epoch) on the test split" in done.stdout)
    assert _results(tmp_path)[1]["test_weights"] == "last"
    # The averaged weights rank the epochs, the raw ones are kept: best would score weights no epoch had.
    done = train("--evaluate_weights", "best", "--model_checkpoint", "True", "--swap_ema_weights", "True")
    assert done.returncode == 2 and "--swap_ema_weights_swap_on_epoch True" in done.stderr


def test_a_streamed_test_image_that_cannot_be_decoded_is_named_and_the_trained_run_kept(train, tmp_path):
    from conftest import write_images

    write_images(tmp_path / "photos" / "train", {"cat": 3, "dog": 3})
    write_images(tmp_path / "photos" / "test", {"cat": 1, "dog": 1})
    broken = tmp_path / "photos" / "test" / "cat" / "cut.png"
    broken.write_bytes((tmp_path / "photos" / "test" / "cat" / "0.png").read_bytes()[:60])  # A header, then nothing.
    done = train("--dataset", "images:photos", "--dataset_cache", "none", "--epochs", "1",
                 "--dataset_image_size", "12,12")
    assert done.returncode == 0, done.stderr
    run_dir, results = _results(tmp_path)
    assert results["status"] == "completed" and results["test"] is None and (run_dir / "model.keras").exists()
    (warning,) = results["warnings"]
    assert warning.startswith("evaluating on the test split failed") and "photos/test/cat/cut.png" in warning
    assert f"train.py: warning: {warning}" in done.stderr


def test_saving_the_model_clears_what_a_kill_while_saving_left_and_writes_a_loadable_file(tmp_path):
    import keras

    from kerasrun.runner.final import save_final_model
    from kerasrun.runner.run_paths import RunPaths

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = run_dir / f".tmp-{'0' * 32}-model.keras"  # Left by a kill of the run's first part while it saved.
    stale.write_bytes(b"half a zip")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = save_final_model(model, RunPaths(str(tmp_path), "run"))
    assert os.listdir(run_dir) == ["model.keras"] and path == str(run_dir / "model.keras")
    assert keras.saving.load_model(path).count_params() == model.count_params()


def test_a_test_score_that_overflowed_is_recorded_and_printed_as_text():
    from kerasrun.runner import results
    from kerasrun.runner.fit import summary
    from kerasrun.runner.run_paths import RunPaths

    record = results.make_record(RunPaths("logs", "run"), "completed", 0, {"loss": [0.5]}, [1], None, {}, 1.0,
                                 products={"test": {"loss": float("inf"), "accuracy": 0.5}, "test_weights": "last"})
    assert record["test"] == {"loss": "inf", "accuracy": 0.5}  # JSON has no infinity
    assert "Test loss: inf  accuracy: 0.5" in summary(record, 1.0).splitlines()
