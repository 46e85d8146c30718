"""--export: the formats refused before TensorFlow, and exports that serve what the saved Keras model predicts."""

import glob
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import IMPORT_KERASRUN, REPO
from kerasrun.core.errors import UsageError
from kerasrun.cli import export_options
from kerasrun.runner import export
from kerasrun.runner.run_paths import RunPaths

HAS_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnx", "onnxruntime"))

# Run in a fresh process (nothing of the training process's TensorFlow state): loads the run's saved Keras
# model and each export, feeds them the same inputs, and prints the largest difference per format as JSON.
CHECKER = textwrap.dedent("""
    import json, os, sys
    {import_kerasrun}
    import keras
    import numpy as np
    import tensorflow as tf

    run_dir, table = sys.argv[1], sys.argv[2] == "table"
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    rng = np.random.default_rng(1)
    if table:  # The CSV's columns, raw: numbers and text (one category never seen in training).
        inputs = {{"size": rng.random((5, 1)).astype("float32"),
                   "color": np.array([["red"], ["green"], ["blue"], ["red"], ["mauve"]], dtype=object)}}
        expected = model({{"size": tf.constant(inputs["size"]), "color": tf.constant(inputs["color"])}}).numpy()
    else:
        inputs = rng.random((5, *model.inputs[0].shape[1:])).astype("float32")
        expected = model.predict(inputs, verbose=0)
    differences = {{}}
    root = os.path.join(run_dir, "export")
    if os.path.isdir(os.path.join(root, "tf_saved_model")):
        served = tf.saved_model.load(os.path.join(root, "tf_saved_model"))
        fed = {{name: tf.constant(value) for name, value in inputs.items()}} if table else tf.constant(inputs)
        differences["tf_saved_model"] = float(np.abs(served.serve(fed).numpy() - expected).max())
    if os.path.isfile(os.path.join(root, "litert", "model.tflite")):
        interpreter = tf.lite.Interpreter(model_path=os.path.join(root, "litert", "model.tflite"))
        runner = interpreter.get_signature_runner()
        (name,) = runner.get_input_details()
        (output,) = runner(**{{name: inputs}}).values()
        differences["litert"] = float(np.abs(output - expected).max())
    if os.path.isfile(os.path.join(root, "onnx", "model.onnx")):
        import onnxruntime
        session = onnxruntime.InferenceSession(os.path.join(root, "onnx", "model.onnx"))
        (output,) = session.run(None, {{session.get_inputs()[0].name: inputs}})
        differences["onnx"] = float(np.abs(output - expected).max())
    print(json.dumps(differences))
""").format(import_kerasrun=IMPORT_KERASRUN)


def served_differences(tmp_path, run_dir, table=False):
    """Returns {format: largest |export's prediction - saved model's|} computed in a fresh process."""
    script = tmp_path / "check_exports.py"
    script.write_text(CHECKER)
    done = subprocess.run([sys.executable, str(script), str(run_dir), "table" if table else "plain"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def only_run_dir(tmp_path):
    (run_dir,) = glob.glob(str(tmp_path / "tensorboard_logs" / "*"))
    return run_dir


def leftovers(run_dir):
    """Returns the temporary directories an export left in export/ (there must be none)."""
    return [name for name in os.listdir(os.path.join(run_dir, "export")) if name.startswith(".tmp")]


# ---- Checks before TensorFlow ----

def test_formats_are_checked_by_name_once_each():
    assert export_options.check_formats(()) is None
    assert export_options.check_formats(("tf_saved_model", "litert")) is None
    message = export_options.check_formats(("tf_savedmodel",))
    assert "'tf_savedmodel' is not an export format" in message and "did you mean tf_saved_model?" in message
    assert "did you mean litert?" in export_options.check_formats(("LiteRT",))
    assert export_options.check_formats(("litert", "tf_saved_model", "litert")) == "names 'litert' twice"


def test_a_format_whose_package_is_missing_names_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "tf2onnx" else object())
    message = export_options.check_formats(("onnx",))
    assert message == "onnx needs the package tf2onnx, which is not installed: pip install tf2onnx"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert export_options.check_formats(("litert", "onnx")).endswith("pip install tf2onnx onnx")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())  # Everything installed.
    assert export_options.check_formats(("onnx", "litert", "tf_saved_model")) is None


def test_formats_that_cannot_serve_a_tables_model_are_refused():
    numbers, mixed = {"size": "numeric"}, {"size": "numeric", "color": "text", "zip": "integer-coded"}
    export_options.check_table(("onnx", "litert"), None, "--export")  # Not a table: anything goes.
    export_options.check_table(("tf_saved_model", "litert"), numbers, "--export")  # A table of numbers converts to LiteRT.
    export_options.check_table(("tf_saved_model",), mixed, "--export")
    with pytest.raises(UsageError, match=r"--export=litert: .*\(color, zip\).*Flex delegate.*tf_saved_model"):
        export_options.check_table(("litert",), mixed, "--export")
    with pytest.raises(UsageError, match=r"run.yaml: export=onnx: tf2onnx cannot export a table's model"):
        export_options.check_table(("onnx",), numbers, "run.yaml: export")
    with pytest.raises(UsageError, match=r"--export=onnx: .*table"):
        export_options.check_dataset(("onnx",), "csv:t.csv", "--export")
    export_options.check_dataset(("onnx", "litert"), "digits", "--export")


class FakeModel:
    """Stands for a Keras model: its `export` writes a file, or fails half way as a converter can."""

    def __init__(self, fail=False):
        self.fail = fail

    def export(self, path, format, verbose, input_signature):
        if format == "tf_saved_model":
            path = os.path.join(path, "saved_model.pb")
        with open(path, "w") as stream:
            stream.write(format)
        if self.fail:
            raise ValueError("Unsupported op\nmore lines")


def test_an_export_replaces_an_earlier_one_and_a_failed_one_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KERASRUN_TRACEBACK", raising=False)  # It makes a failure raise, with its traceback.
    paths = RunPaths(str(tmp_path), "run")
    os.makedirs(paths.path("export", "litert"))
    with open(paths.path("export", "litert", "stale.tflite"), "w") as stream:
        stream.write("old")
    exports = export.export_model(FakeModel(), paths, ("litert", "tf_saved_model"))
    assert exports == {"litert": paths.path("export", "litert", "model.tflite"),
                       "tf_saved_model": paths.path("export", "tf_saved_model")}
    assert os.listdir(paths.path("export", "litert")) == ["model.tflite"]
    assert os.listdir(paths.path("export", "tf_saved_model")) == ["saved_model.pb"]
    assert f"Exported litert: {paths.path('export', 'litert', 'model.tflite')}" in capsys.readouterr().out
    assert leftovers(paths.dir) == []

    exports = export.export_model(FakeModel(fail=True), paths, ("onnx",))
    assert exports == {"onnx": "failed: ValueError: Unsupported op"}
    assert ("train.py: warning: exporting onnx failed, nothing written for it: ValueError: Unsupported op"
            in capsys.readouterr().err)
    assert not os.path.exists(paths.path("export", "onnx")) and leftovers(paths.dir) == []


# ---- End to end ----

def test_refusals_exit_2_before_anything_is_written(train, tmp_path):
    with open(tmp_path / "t.csv", "w") as stream:
        stream.write("size,color,label\n0.1,red,0\n0.7,blue,1\n0.3,red,0\n0.9,blue,1\n")
    refusals = [(("--export", "tf_saved_model,tflite"), "--export=tf_saved_model,tflite: 'tflite' is not an export"),
                (("--dataset", "csv:t.csv", "--export", "litert"), "--export=litert: the model of a table")]
    if not HAS_ONNX:
        refusals.append((("--export", "onnx"), "pip install tf2onnx"))
    for args, message in refusals:
        done = train(*args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tensorboard_logs").exists()


def test_the_refusals_import_no_tensorflow(tmp_path):
    (tmp_path / "t.csv").write_text("size,color,label\n0.1,red,0\n0.7,blue,1\n0.3,red,0\n0.9,blue,1\n")
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        sys.path.insert(0, {REPO!r})
        import train
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            # A run reads the columns' kinds after TensorFlow starts (as every check of loaded data);
            # --dry_run refuses litert for them first.
            for args in (["--export=litert,tflite"], ["--export=onnx", "--dataset=csv:t.csv"],
                         ["--export=litert", "--dataset=csv:t.csv", "--dry_run=True"]):
                assert train.main(["train.py", *args]) == 2, args
        assert err.getvalue().count("error: --export=") == 3, err.getvalue()
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
    assert not (tmp_path / "tensorboard_logs").exists()


def test_saved_model_and_litert_predict_as_the_saved_model(train, tmp_path):
    done = train("--epochs", "2", "--export", "tf_saved_model,litert")
    assert done.returncode == 0, done.stderr
    run_dir = only_run_dir(tmp_path)
    assert f"Exported tf_saved_model: {os.path.relpath(run_dir, tmp_path)}/export/tf_saved_model" in done.stdout
    assert "/export/litert/model.tflite" in done.stdout
    assert leftovers(run_dir) == [] and "warning" not in done.stderr
    differences = served_differences(tmp_path, run_dir)
    assert set(differences) == {"tf_saved_model", "litert"}
    assert all(difference < 1e-5 for difference in differences.values()), differences


def test_a_tables_model_is_served_from_raw_columns(train, tmp_path):
    rng = np.random.default_rng(0)
    with open(tmp_path / "t.csv", "w") as stream:
        stream.write("size,color,label\n")
        for size in rng.random(40):
            stream.write(f"{size:.3f},{rng.choice(['red', 'green', 'blue'])},{int(size > 0.5)}\n")
    done = train("--dataset", "csv:t.csv", "--epochs", "1", "--export", "tf_saved_model")
    assert done.returncode == 0, done.stderr
    differences = served_differences(tmp_path, only_run_dir(tmp_path), table=True)
    assert differences.keys() == {"tf_saved_model"} and differences["tf_saved_model"] < 1e-5, differences


@pytest.mark.skipif(not HAS_ONNX, reason="needs tf2onnx, onnx and onnxruntime (pip install tf2onnx onnxruntime)")
def test_onnx_predicts_as_the_saved_model(train, tmp_path):
    done = train("--epochs", "1", "--export", "onnx")
    assert done.returncode == 0, done.stderr
    run_dir = only_run_dir(tmp_path)
    assert "/export/onnx/model.onnx" in done.stdout and leftovers(run_dir) == []
    differences = served_differences(tmp_path, run_dir)
    assert differences.keys() == {"onnx"} and differences["onnx"] < 1e-5, differences
