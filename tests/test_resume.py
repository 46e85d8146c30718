"""A run killed at any moment and started again ends exactly where an uninterrupted run ends."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import TRAIN, write_images

RUN = ["--epochs=6", "--batch_size=8", "--verbose=2", "--seed=7", "--deterministic=True",
       "--backup_and_restore=True", "--csv_logger=True",
       # Callbacks whose state (patience counters, best values) must survive the restart.
       "--reduce_lr=True", "--reduce_lr_monitor=loss", "--reduce_lr_patience=1", "--reduce_lr_factor=0.5",
       "--reduce_lr_min_delta=0.08",
       "--early_stopping=True", "--early_stopping_monitor=val_loss", "--early_stopping_patience=20",
       "--early_stopping_restore_best_weights=True"]


def results(tmp_path, name):
    with open(tmp_path / "tensorboard_logs" / name / "results.json") as stream:
        return json.load(stream)


def run(tmp_path, name, *extra):
    result = subprocess.run([sys.executable, TRAIN, *RUN, *extra, f"--run_name={name}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def interrupt(tmp_path, name, signum, epoch, *extra):
    process = subprocess.Popen([sys.executable, TRAIN, *RUN, *extra, f"--run_name={name}"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith(f"Epoch {epoch}/"):
            time.sleep(0.05)  # into the epoch, not at its edge
            process.send_signal(signum)
            break
    process.communicate(timeout=120)
    return process.returncode


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["kill-9", "sigterm", "sigint"])
def test_a_resumed_run_ends_on_the_uninterrupted_runs_metrics(tmp_path, signum, exit_code):
    run(tmp_path, "whole")
    expected = results(tmp_path, "whole")
    assert expected["epochs_completed"] == 6

    assert interrupt(tmp_path, "cut", signum, epoch=4) == exit_code
    resumed = run(tmp_path, "cut")
    assert "Resuming the interrupted run" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 4/6" in resumed.stdout
    record = results(tmp_path, "cut")
    assert record["status"] == "completed" and record["epochs_completed"] == 6
    assert record["final"] == expected["final"]
    assert record["best"] == expected["best"]
    log = (tmp_path / "tensorboard_logs" / "cut" / "training.csv").read_text().splitlines()
    # The epoch cut short is in no log: each epoch appears once.
    assert [row.split(",")[0] for row in log[1:]] == ["0", "1", "2", "3", "4", "5"]


def test_a_resumed_run_on_a_streamed_image_folder_ends_on_the_uninterrupted_runs_metrics(tmp_path):
    write_images(tmp_path / "pictures", {"circle": 40, "square": 40, "star": 40}, size=(9, 9))
    images = ("--dataset=images:pictures", "--dataset_cache=none", "--dataset_image_size=8,8",
              "--validation_split=0.25", "--batch_size=4")
    run(tmp_path, "whole", *images)
    assert interrupt(tmp_path, "cut", signal.SIGKILL, 3, *images) == -9
    resumed = run(tmp_path, "cut", *images)
    assert "Resuming the interrupted run" in resumed.stdout and "Epoch 1/6" not in resumed.stdout
    expected, record = results(tmp_path, "whole"), results(tmp_path, "cut")
    assert record["epochs_completed"] == expected["epochs_completed"] == 6
    assert record["final"] == expected["final"] and record["best"] == expected["best"]
