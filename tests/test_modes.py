"""--mode evaluate and --mode predict, end to end: a run's saved model used later on another file.

One tiny run per kind of data (classes in an .npz, named classes in a CSV,
a regression CSV) is trained once for the module; every test reuses it.
"""

import csv
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMPORT_KERASRUN, run_train

CLASSES = ("cat", "dog", "eel")


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)


def _model_file(run_dir):
    """Returns the run's model.keras; a run without one (before every run saved it) gets its last checkpoint's copy."""
    model = os.path.join(run_dir, "model.keras")
    if not os.path.exists(model):
        checkpoints = sorted(glob.glob(os.path.join(run_dir, "checkpoints", "*.keras")))
        assert checkpoints, os.listdir(run_dir)
        with open(checkpoints[-1], "rb") as source, open(model, "wb") as target:
            target.write(source.read())
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Trains the three runs; returns {"dir": the working directory, kind: its run directory}."""
    work = tmp_path_factory.mktemp("modes")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    np.savez(work / "arrays.npz", x_train=x[:40], y_train=y[:40], x_val=x[40:], y_val=y[40:])
    np.savez(work / "validation.npz", x_train=x[40:], y_train=y[40:])  # The run's validation data, as a dataset.
    np.savez(work / "x_only.npz", x_test=x[40:50])
    colors = ["red", "blue"]
    _write_csv(work / "classes.csv", ["a", "b", "color", "animal"],
               [[f"{x[i, 0]:.4f}", f"{x[i, 1]:.4f}", colors[i % 2], CLASSES[y[i]]] for i in range(60)])
    _write_csv(work / "prices.csv", ["a", "b", "price"],
               [[f"{x[i, 0]:.4f}", f"{x[i, 1]:.4f}", f"{3 * x[i, 0] + 1:.4f}"] for i in range(60)])
    common = ["--epochs=2", "--verbose=2", "--model_checkpoint=True", "--model_checkpoint_monitor=loss"]
    for name, args in {"arrays": ["--dataset", "npz:arrays.npz"],
                       "classes": ["--dataset", "csv:classes.csv", "--dataset_label_column", "animal"],
                       "prices": ["--dataset", "csv:prices.csv", "--dataset_label_column", "price"]}.items():
        result = run_train([*args, *common, "--run_name", name], cwd=work)
        assert result.returncode == 0, result.stderr
        _model_file(work / "tensorboard_logs" / name)
    return work


def _run(runs, *args):
    return run_train(list(args), cwd=runs)


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_evaluate_gives_the_runs_validation_scores_and_keras_own(runs):
    run_dir = runs / "tensorboard_logs" / "arrays"
    (run_dir / "evaluation.json").unlink(missing_ok=True)
    output = _ok(_run(runs, "--mode", "evaluate", "--model", "tensorboard_logs/arrays", "--dataset",
                      "npz:validation.npz", "--verbose", "0"))
    assert "all 20 examples" in output
    record = json.loads((run_dir / "evaluation.json").read_text())
    assert record["split"] == "all" and record["examples"] == 20 and record["dataset"] == "npz:validation.npz"
    final = json.loads((run_dir / "results.json").read_text())["final"]
    # The model of the last epoch on the validation data: what the run logged for it.
    assert record["metrics"]["loss"] == pytest.approx(final["val_loss"], abs=1e-5)
    assert record["metrics"]["accuracy"] == pytest.approx(final["val_accuracy"], abs=1e-5)
    # And what Keras's own evaluate says in a fresh process.
    script = (f"{IMPORT_KERASRUN}\nimport json, keras, numpy as np\n"
              f"m = keras.saving.load_model({str(run_dir / 'model.keras')!r}, compile=False)\n"
              "m.compile(loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
              f"a = np.load({str(runs / 'validation.npz')!r})\n"
              "print(json.dumps(m.evaluate(a['x_train'], a['y_train'], verbose=0, return_dict=True)))")
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    keras_scores = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert record["metrics"]["loss"] == pytest.approx(keras_scores["loss"], abs=1e-6)
    assert record["metrics"]["accuracy"] == pytest.approx(keras_scores["accuracy"], abs=1e-6)


def test_evaluate_named_classes_of_a_subset_appends_to_the_results_file(runs):
    rows = list(csv.reader(open(runs / "classes.csv", encoding="utf-8")))
    _write_csv(runs / "no_cats.csv", rows[0], [row for row in rows[1:] if row[3] != "cat"])
    checkpoint = sorted(glob.glob(str(runs / "tensorboard_logs" / "classes" / "checkpoints" / "*.keras")))[-1]
    result = _run(runs, "--mode", "evaluate", "--model", checkpoint, "--dataset", "csv:no_cats.csv",
                  "--results_file", "evaluations.jsonl", "--epochs", "5")
    output = _ok(result)
    assert "--epochs has no effect: it applies to --mode train" in result.stderr
    lines = (runs / "evaluations.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["examples"] == len(rows) - 1 - sum(row[3] == "cat" for row in rows[1:])
    assert not os.path.exists(os.path.join(os.path.dirname(checkpoint), "evaluation.json"))
    assert "Evaluation:" in output
    # Labels map through the run's class names (dog stays 1 though the file has no cat): check by hand.
    import tensorflow as tf  # Only here: the rest of the module runs train.py.
    import keras

    model = keras.saving.load_model(checkpoint, compile=False)
    kept = [row for row in rows[1:] if row[3] != "cat"]
    columns = {"a": tf.constant([[float(row[0])] for row in kept]), "b": tf.constant([[float(row[1])] for row in kept]),
               "color": tf.constant([[row[2]] for row in kept])}
    probabilities = np.asarray(model(columns))
    labels = np.array([CLASSES.index(row[3]) for row in kept])
    assert record["metrics"]["accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == labels), abs=1e-6)


def test_predict_a_csv_without_labels_writes_class_names_and_values(runs):
    rows = list(csv.reader(open(runs / "classes.csv", encoding="utf-8")))
    _write_csv(runs / "unlabelled.csv", rows[0][:3], [row[:3] for row in rows[1:8]])
    _ok(_run(runs, "--mode", "predict", "--model", "tensorboard_logs/classes", "--dataset", "csv:unlabelled.csv",
             "--predictions_file", "out/classes.csv", "--batch_size", "3"))
    written = list(csv.DictReader(open(runs / "out" / "classes.csv", encoding="utf-8")))
    assert len(written) == 7
    assert list(written[0]) == ["predicted", *(f"p_{name}" for name in CLASSES)]
    for row in written:
        probabilities = [float(row[f"p_{name}"]) for name in CLASSES]
        assert row["predicted"] == CLASSES[int(np.argmax(probabilities))]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)

    # A regression's file with its label column: the column is not read, one value per row.
    _ok(_run(runs, "--mode", "predict", "--model", "tensorboard_logs/prices", "--dataset", "csv:prices.csv",
             "--predictions_file", "prices_out.csv", "--verbose", "0"))
    values = list(csv.DictReader(open(runs / "prices_out.csv", encoding="utf-8")))
    assert len(values) == 60 and list(values[0]) == ["price"]
    assert all(np.isfinite(float(row["price"])) for row in values)


def test_predict_to_npz_of_x_test(runs):
    output = _ok(_run(runs, "--mode", "predict", "--model", "tensorboard_logs/arrays", "--dataset",
                      "npz:x_only.npz", "--predictions_file", "arrays_out.npz"))
    assert "x_test" in output
    with np.load(runs / "arrays_out.npz") as archive:
        assert archive["predictions"].shape == (10, 3)
        np.testing.assert_array_equal(archive["predicted"], archive["predictions"].argmax(axis=1))
        assert "class_names" not in archive.files  # The run's classes are plain ids.


@pytest.mark.parametrize("args, flag, words", [
    (["--model", "missing.keras"], "--model", "no such"),
    (["--model", "tensorboard_logs"], "--model", "holds no model.keras"),
    (["--model", "tensorboard_logs/classes", "--dataset", "csv:prices.csv"], "--dataset", "missing color"),
    (["--model", "tensorboard_logs/arrays", "--dataset", "csv:classes.csv"], "--dataset", "one array"),
    (["--model", "tensorboard_logs/arrays", "--dataset", "digits"], "--dataset", "(8, 8, 1)"),
    (["--model", "tensorboard_logs/arrays", "--dataset", "npz:arrays.npz", "--predictions_file", None],
     "--predictions_file", "required"),
    (["--model", "tensorboard_logs/arrays", "--predictions_file", "refused.txt"], "--predictions_file", ".csv"),
    (["--model", "tensorboard_logs/arrays", "--predictions_file", "arrays.npz"], "--predictions_file", "exists already"),
    (["--model", "tensorboard_logs/classes", "--dataset", "csv:gaps.csv"], "--dataset", "line 3, column 'a'"),
    (["--model", "tensorboard_logs/arrays", "--dataset", "npz:nan.npz"], "--dataset", "x_test holds nan in row 1"),
    (["--model", "tensorboard_logs/classes", "--dataset", "csv:twice.csv"], "--dataset", "'a' appears 2 times"),
    (["--model", "tensorboard_logs/arrays", "--predictions_file", "x_only.npz"], "--predictions_file",
     "exists already"),
    (["--mode", "evaluate", "--model", "tensorboard_logs/arrays", "--predictions_file", None, "--results_file",
      "tensorboard_logs/arrays/results.json"], "--results_file", "is a file of the run directory"),
    (["--mode", "evaluate", "--model", "tensorboard_logs/arrays", "--dataset", "npz:seven.npz",
      "--predictions_file", None], "--dataset", "holds the class id 7, but the model has 3 classes"),
], ids=["missing-model", "no-model-keras", "wrong-columns", "table-for-array", "wrong-shape", "no-file",
        "bad-suffix", "overwrites-dataset", "missing-cell", "nan", "column-twice", "existing-predictions",
        "results-into-run", "class-beyond"])
def test_refusals_name_the_flag_and_write_nothing(runs, args, flag, words):
    _write_csv(runs / "gaps.csv", ["a", "b", "color"], [["0.5", "1", "red"], ["", "2", "blue"]])
    _write_csv(runs / "twice.csv", ["a", "b", "color", "a"], [["0.5", "1", "red", "x"]])
    np.savez(runs / "seven.npz", x_train=np.zeros((4, 4), "float32"), y_train=np.array([0, 1, 2, 7]))
    np.savez(runs / "nan.npz", x_test=np.array([[0, 0, 0, 0], [np.nan, 0, 0, 0]], dtype="float32"))
    values = {"--dataset": "npz:arrays.npz", "--predictions_file": "refused.csv"}
    pairs = dict(zip(args[::2], args[1::2]))
    values.update(pairs)
    command = ["--mode", values.pop("--mode", "predict"), *(item for key, value in values.items() if value is not None
                                      for item in (key, value))]
    before = set(os.listdir(runs))
    result = _run(runs, *command)
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"train.py: error: {flag}") and words in error, error
    assert "Traceback" not in result.stderr
    assert set(os.listdir(runs)) == before


def test_evaluate_refuses_a_label_the_model_does_not_know(runs):
    rows = list(csv.reader(open(runs / "classes.csv", encoding="utf-8")))
    _write_csv(runs / "fox.csv", rows[0], rows[1:4] + [rows[4][:3] + ["fox"]])
    result = _run(runs, "--mode", "evaluate", "--model", "tensorboard_logs/classes", "--dataset", "csv:fox.csv")
    assert result.returncode == 2
    assert "--dataset='csv:fox.csv': label 'fox' is not one of the model's classes" in result.stderr
    assert "Traceback" not in result.stderr
    # Numbers for named classes: which id is which name is anyone's guess.
    _write_csv(runs / "ids.csv", rows[0], [row[:3] + [str(CLASSES.index(row[3]))] for row in rows[1:]])
    result = _run(runs, "--mode", "evaluate", "--model", "tensorboard_logs/classes", "--dataset", "csv:ids.csv")
    assert result.returncode == 2 and "the labels are numbers, but the model's classes are named" in result.stderr


def test_dry_run_says_what_would_be_done_and_does_nothing(runs):
    before = set(os.listdir(runs))
    result = _run(runs, "--mode", "predict", "--model", "tensorboard_logs/prices", "--dataset", "csv:prices.csv",
                  "--predictions_file", "dry.csv", "--dry_run", "--learning_rate", "0.5")
    output = _ok(result)
    assert "predicting 60 rows of prices.csv: every row" in output and "would write 60 rows of predictions to dry.csv" in output
    assert "--learning_rate has no effect: it applies to --mode train, not --mode predict" in result.stderr
    assert set(os.listdir(runs)) == before


@pytest.mark.skipif("x_test" not in __import__("kerasrun.datasets.npz_source", fromlist=["x"]).OPTIONAL_ARRAYS,
                    reason="npz files have no test split yet")
def test_evaluate_takes_the_test_split_when_there_is_one(runs):
    with np.load(runs / "arrays.npz") as archive:
        np.savez(runs / "with_test.npz", x_train=archive["x_train"], y_train=archive["y_train"],
                 x_test=archive["x_val"][:10], y_test=archive["y_val"][:10])
    output = _ok(_run(runs, "--mode", "evaluate", "--model", "tensorboard_logs/arrays", "--dataset",
                      "npz:with_test.npz", "--results_file", "test_split.jsonl", "--verbose", "0"))
    assert "the dataset's test split: 10 examples" in output
    record = json.loads((runs / "test_split.jsonl").read_text())
    assert record["split"] == "test" and record["examples"] == 10
