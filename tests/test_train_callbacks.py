"""End-to-end proof that every other Keras callback group acts, run as a user runs train.py."""

import csv
import http.server
import json
import math
import threading
import textwrap

import numpy as np
import pytest

from kerasrun.callbacks.schedules import ScheduleParams, rate_at
from kerasrun.cli.config import resolve
from kerasrun.core.errors import UsageError
from test_train import run_dir

HOOKS = """
import json
import os

import keras
import numpy as np


def _append(name, record):
    with open(name, "a") as stream:
        stream.write(json.dumps(record) + "\\n")


def record_epoch(epoch, logs):
    try:  # The epochs the backup holds, as this epoch ends.
        with open(os.path.join("backup_here", "training_metadata.json")) as stream:
            backed_up = json.load(stream)["epoch"]
    except OSError:
        backed_up = None
    _append("epochs.jsonl", {"epoch": epoch, "backed_up": backed_up, "loss": logs["loss"]})


def linear_model(input_shape, num_classes):
    # No ReLU: TensorFlow's CPU ReLU maps NaN to 0, which would hide the NaN in the data.
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes, activation="softmax")])


def keras_doc_schedule(epoch, lr):
    return lr if epoch < 10 else lr * float(np.exp(-0.1))


class EmaProbe(keras.callbacks.Callback):
    # With SwapEMAWeights(swap_on_epoch=True) ordered before it, the model holds the
    # averaged weights at the end of each epoch, not the ones of the last step.

    def on_train_batch_end(self, batch, logs=None):
        self.last_step = [w.numpy().copy() for w in self.model.trainable_weights]

    def on_epoch_end(self, epoch, logs=None):
        now = [w.numpy() for w in self.model.trainable_weights]
        swapped = not all(np.array_equal(a, b) for a, b in zip(now, self.last_step))
        _append("ema.jsonl", {"epoch": epoch, "swapped": swapped})
"""


class Collector(http.server.BaseHTTPRequestHandler):
    posts = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.posts.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_collector():
    Collector.posts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Collector.posts
    server.shutdown()


@pytest.fixture
def hooks(tmp_path):
    (tmp_path / "hooks.py").write_text(textwrap.dedent(HOOKS))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_many_groups_act_in_one_run(train, tmp_path, hooks, http_collector, backend):
    root, posts = http_collector
    result = train(
        f"--backend={backend}", "--epochs=4", "--verbose=0", "--learning_rate=0.01",
        "--learning_rate_scheduler", "True", "--learning_rate_scheduler_schedule=step",
        "--learning_rate_scheduler_step_size=2", "--learning_rate_scheduler_factor=0.5",
        "--csv_logger", "True",
        "--lambda_callback", "True", "--lambda_callback_on_epoch_end=hooks:record_epoch",
        "--backup_and_restore", "True", "--backup_and_restore_backup_dir=backup_here",
        "--remote_monitor", "True", f"--remote_monitor_root={root}",
        "--remote_monitor_send_as_json", "True", "--remote_monitor_headers=X-Run: sweep-7",
        "--swap_ema_weights", "True", "--swap_ema_weights_swap_on_epoch", "True",
        "--swap_ema_weights_ema_momentum=0.5",
        "--callbacks=hooks:EmaProbe",
    )
    assert result.returncode == 0, result.stderr

    # --verbose 0: no per-epoch progress lines.
    assert "Epoch" not in result.stdout and "ms/step" not in result.stdout
    assert "steps per execution: 1 (auto: --callbacks EmaProbe defines on_train_batch_end)" in result.stdout

    # CSVLogger: a header and one row per epoch, in the run's directory; the
    # scheduler's rates follow the formula epoch by epoch.
    rows = read_csv(f"{run_dir(tmp_path)}/training.csv")
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    assert [float(row["learning_rate"]) for row in rows] == pytest.approx([0.01, 0.01, 0.005, 0.005])

    # LambdaCallback: the hook ran once per epoch; BackupAndRestore's backup
    # existed during training and was deleted at the end.
    records = read_jsonl(tmp_path / "epochs.jsonl")
    assert [record["epoch"] for record in records] == [0, 1, 2, 3]
    # Each epoch's backup is written once every callback has ended the epoch: the next epoch's hook sees it.
    assert [record["backed_up"] for record in records] == [None, 1, 2, 3]
    assert not (tmp_path / "backup_here").exists()

    # RemoteMonitor: one JSON post per epoch, with the header.
    assert len(posts) == 4
    path, headers, body = posts[0]
    assert path == "/publish/epoch/end/" and headers["X-Run"] == "sweep-7"
    assert json.loads(body)["epoch"] == 0 and "loss" in json.loads(body)

    # SwapEMAWeights: the EMA weights were swapped in at each epoch's end, before our own callback.
    assert [record["swapped"] for record in read_jsonl(tmp_path / "ema.jsonl")] == [True] * 4


@pytest.mark.parametrize("schedule_flags", [
    ["--learning_rate_scheduler_schedule=exponential", "--learning_rate_scheduler_start_epoch=10",
     "--learning_rate_scheduler_decay_rate=0.1"],
    ["--learning_rate_scheduler_schedule=hooks:keras_doc_schedule"],
], ids=["built_in", "user_function"])
def test_the_keras_docs_schedule_both_ways(train, tmp_path, hooks, schedule_flags):
    # Keep 0.01 for 10 epochs, then multiply by exp(-0.1) each epoch; after 15 epochs about 0.00607.
    # Both runs append to one CSV, which grows; the monitor is unreachable and only warns.
    result = train(
        "--epochs=15", "--verbose=0", "--optimizer=sgd", "--learning_rate=0.01",
        "--learning_rate_scheduler=True", *schedule_flags,
        "--csv_logger=True", "--csv_logger_filename=rates.csv", "--csv_logger_append=True",
        "--remote_monitor=True", "--remote_monitor_root=http://127.0.0.1:9",
    )
    assert result.returncode == 0, result.stderr
    assert "Could not reach RemoteMonitor root server at http://127.0.0.1:9" in result.stderr
    rows = read_csv(tmp_path / "rates.csv")
    assert len(rows) == 15
    rates = [float(row["learning_rate"]) for row in rows]
    expected = [0.01 if epoch < 10 else 0.01 * math.exp(-0.1 * (epoch - 9)) for epoch in range(15)]
    assert rates == pytest.approx(expected, rel=1e-5)
    assert rates[-1] == pytest.approx(0.00607, abs=1e-5)
    again = train("--epochs=2", "--verbose=0", "--csv_logger=True", "--csv_logger_filename=rates.csv",
                  "--csv_logger_append=True")
    assert again.returncode == 0, again.stderr
    assert len(read_csv(tmp_path / "rates.csv")) == 17


@pytest.mark.parametrize("raise_error", ["False", "True"])
def test_nan_loss_stops_in_the_epoch_it_appears_with_exit_3(train, tmp_path, hooks, raise_error):
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    x[5, 2] = 3e38  # Finite (NaN and infinity are refused before training), but the sums overflow.
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=np.arange(64) % 2)
    result = train("--dataset=npz:nan.npz", "--model=hooks:linear_model", "--epochs=5", "--verbose=2",
                   "--terminate_on_nan", "True", f"--terminate_on_nan_raise_error={raise_error}")
    assert result.returncode == 3, result.stderr
    assert "train.py: stopped:" in result.stderr and "NaN" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Epoch 3/5" not in result.stdout  # The first step's weights overflow, so the second epoch's loss does.


def test_schedules_match_their_documented_formulas():
    params = ScheduleParams(initial_lr=1.0, epochs=10, start_epoch=2, step_size=3, factor=0.5,
                            decay_rate=0.2, min_lr=0.1, warmup_epochs=2, warmup_start_lr=0.0)
    assert [rate_at("constant", params, e) for e in range(4)] == [1.0] * 4
    assert [rate_at("step", params, e) for e in range(9)] == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert rate_at("exponential", params, 1) == 1.0
    assert rate_at("exponential", params, 4) == pytest.approx(math.exp(-0.6))
    assert rate_at("cosine", params, 2) == pytest.approx(1.0)
    assert rate_at("cosine", params, 9) == pytest.approx(0.1)
    # warmup: the hold, then the warm-up from 0, then cosine from lr0 down to min_lr in the last epoch.
    assert [rate_at("warmup", params, e) for e in range(4)] == [1.0, 1.0, 0.0, 0.5]
    assert rate_at("warmup", params, 4) == pytest.approx(1.0)
    assert rate_at("warmup", params, 9) == pytest.approx(0.1)


@pytest.mark.parametrize("args, expected", [
    (["--lambda_callback", "--lambda_callback_on_epoch_end=print('hi')"], "expected module:function"),
    (["--lambda_callback", "--lambda_callback_on_epoch_end=__import__('os').system"], "expected module:function"),
    (["--lambda_callback"], "set at least one --lambda_callback_on_* flag"),
    (["--lambda_callback", "--lambda_callback_on_epoch_end=os:no_such_function"], "has no attribute"),
    (["--lambda_callback", "--lambda_callback_on_epoch_end=os:sep"], "not a function"),
    (["--learning_rate_scheduler", "--learning_rate_scheduler_schedule=linear"], "cosine, exponential"),
    (["--learning_rate_scheduler", "--learning_rate_scheduler_factor=1"], "below 1"),
    (["--callbacks=os:path"], "not a function or class"),
    (["--callbacks=os:getcwd"], "is not a class"),
    (["--remote_monitor", "--remote_monitor_headers=Authorization"], "'Name: value'"),
    (["--remote_monitor", "--remote_monitor_root=localhost:9000"], "http://"),
    (["--remote_monitor", "--remote_monitor_timeout=0"], "--remote_monitor_timeout=0.0: must be greater than 0"),
    (["--csv_logger", "--csv_logger_separator=;;"], "one character"),
    (["--backup_and_restore", "--backup_and_restore_save_freq=0"], "at least 1"),
    (["--swap_ema_weights", "--swap_ema_weights_ema_momentum=1"], "below 1"),
    (["--early_stopping", "--early_stopping_monitor=learning_rate"], "will never be logged"),
])
def test_callback_group_mistakes_are_refused(args, expected):
    with pytest.raises(UsageError) as caught:
        resolve(["train.py", *args])
    assert expected in str(caught.value)


def test_a_scheduler_makes_learning_rate_monitorable_with_a_direction():
    args = ["train.py", "--learning_rate_scheduler", "--early_stopping", "--early_stopping_monitor=learning_rate"]
    with pytest.raises(UsageError, match="--early_stopping_mode=auto: Keras cannot tell"):
        resolve(args)
    assert resolve([*args, "--early_stopping_mode=min"]).early_stopping_monitor == "learning_rate"
