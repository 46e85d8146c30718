"""A user's own modules and installed packages are what their plug-ins import, never ours.

Our code is the package `kerasrun`; the folders named models/, callbacks/ and
datasets/ must not shadow a user's models.py and callbacks.py in the directory
they run from, nor an installed package called `datasets` (Hugging Face's).
"""

import json
import os
import subprocess
import sys
import textwrap

from conftest import TRAIN, run_train

LOGS = "tensorboard_logs"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def only_result(directory):
    (run,) = os.listdir(directory / LOGS)
    with open(directory / LOGS / run / "results.json") as stream:
        return json.load(stream)


def test_users_models_callbacks_and_an_installed_datasets_package_win(tmp_path):
    project, site = tmp_path / "project", tmp_path / "site"
    # A stand-in for Hugging Face's `datasets`, installed on PYTHONPATH.
    write(site / "datasets" / "__init__.py", '''
        def load_dataset(name):
            return {"name": name}
    ''')
    write(project / "models.py", '''
        import keras

        def build_net(input_shape, num_classes):
            return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                     keras.layers.Dense(num_classes, activation="softmax")], name="users_net")
    ''')
    write(project / "callbacks.py", '''
        def hook(epoch, logs):
            with open("hook.log", "a") as stream:
                stream.write(f"{epoch}\\n")
    ''')
    write(project / "loader.py", '''
        import numpy as np
        from datasets import load_dataset

        def load():
            assert load_dataset("tiny") == {"name": "tiny"}
            rng = np.random.default_rng(0)
            return (rng.normal(size=(40, 6)).astype("float32"), np.arange(40) % 3), None
    ''')
    result = run_train(
        ["--model", "models:build_net", "--dataset", "loader:load", "--epochs", "2", "--verbose", "0",
         "--lambda_callback", "True", "--lambda_callback_on_epoch_end", "callbacks:hook"],
        cwd=project, env={"PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr
    assert (project / "hook.log").read_text().split() == ["0", "1"]
    record = only_result(project)
    assert record["status"] == "completed" and record["epochs_completed"] == 2


def test_kerass_early_stopping_example_runs_as_plug_ins(tmp_path):
    # keras.callbacks.EarlyStopping's docstring: an unbuilt Sequential, loss="mse", SGD, batch_size=1.
    write(tmp_path / "example.py", '''
        import keras
        import numpy as np

        def model(input_shape, num_classes):
            return keras.Sequential([keras.layers.Dense(10)])

        def data():
            return (np.arange(100).reshape(5, 20), np.zeros(5)), None
    ''')
    result = run_train(
        ["--model", "example:model", "--dataset", "example:data", "--loss", "mse", "--metrics", "",
         "--optimizer", "sgd", "--learning_rate", "0.01", "--batch_size", "1", "--epochs", "10", "--verbose", "0",
         "--early_stopping", "True", "--early_stopping_monitor", "loss", "--early_stopping_patience", "3"],
        cwd=tmp_path,
    )
    record = only_result(tmp_path)
    assert "Traceback" not in result.stderr
    # The loss grows from the first epoch on, so early stopping ends training after 1 + patience epochs, as in
    # the docstring. With inputs up to 99 SGD diverges: where the loss overflows the run is reported as such.
    assert record["epochs_completed"] == 4, result.stderr
    if record["status"] == "nan":
        assert result.returncode == 3 and "train.py: stopped: the loss became infinite" in result.stderr
    else:
        assert (record["status"], result.returncode) == ("early_stopped", 0), result.stderr
    assert record["hparams"]["loss"] == "mse"


def test_the_readmes_plug_in_example_repeats_exactly_with_a_seed(tmp_path):
    # Its loader draws its data with np.random.rand: the seed must be set before the loader runs.
    write(tmp_path / "my_project.py", '''
        import keras
        import numpy as np


        def load_data():
            x = np.random.rand(256, 16).astype("float32")
            y = (x.sum(axis=1) > 8).astype("int64")
            return (x[:200], y[:200]), (x[200:], y[200:])


        def small_model(input_shape, num_classes):
            return keras.Sequential([
                keras.Input(input_shape),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(num_classes, activation="softmax"),
            ])
    ''')
    flags = ["--dataset", "my_project:load_data", "--model", "my_project:small_model", "--seed", "0",
             "--deterministic", "True", "--epochs", "2", "--verbose", "0"]
    processes = [subprocess.Popen([sys.executable, TRAIN, *flags, "--run_name", name], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name in ("first", "second")]
    for process in processes:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
    first, second = (json.loads((tmp_path / LOGS / name / "results.json").read_text())["final"]
                     for name in ("first", "second"))
    assert first == second and set(first) >= {"loss", "val_loss", "val_accuracy"}


def test_a_plug_in_that_raises_is_one_line_naming_it_and_the_users_line(tmp_path):
    write(tmp_path / "broken.py", '''
        import keras
        import numpy as np

        def helper():
            return np.load("missing.npz")

        def load():
            return helper()

        def model(input_shape, num_classes):
            raise ValueError("no layer of that size")

        class Tracker(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                raise RuntimeError("no tracking server")

        def quits(input_shape, num_classes):
            raise SystemExit(3)
    ''')
    expected = {
        "loader": (["--dataset", "broken:load"],
                   "--dataset='broken:load' raised FileNotFoundError: [Errno 2] No such file or directory: "
                   "'missing.npz' (at broken.py:6)"),
        "builder": (["--model", "broken.py:model"],
                    "--model='broken.py:model' raised ValueError: no layer of that size (at broken.py:12)"),
        "callback": (["--callbacks", "broken:Tracker"],
                     "--callbacks='broken:Tracker' raised RuntimeError: no tracking server (at broken.py:17)"),
        # sys.exit() in a plug-in must not pass for another exit status (3 means a NaN loss).
        "exits": (["--model", "broken:quits"], "--model='broken:quits' raised SystemExit: 3 (at broken.py:20)"),
    }
    for name, (flags, message) in expected.items():
        result = run_train([*flags, "--run_name", name, "--results_file", "all.jsonl"], cwd=tmp_path)
        line = f"error: {message}; set KERASRUN_TRACEBACK=1 for the traceback"
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"train.py: {line}"
        # The run failed as far as the user is concerned: its directory and the results file say so.
        record = json.loads((tmp_path / LOGS / name / "results.json").read_text())
        assert (record["status"], record["exit_code"], record["message"], record["epochs_completed"]) == (
            "failed", 1, line, 0)
        assert (tmp_path / LOGS / name / "config.yaml").is_file()
    lines = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert [(line["run_name"], line["status"]) for line in lines] == [(name, "failed") for name in expected]
    result = run_train(["--dataset", "broken:load", "--run_name", "traced"], cwd=tmp_path,
                       env={"KERASRUN_TRACEBACK": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr and 'broken.py", line 6' in result.stderr

