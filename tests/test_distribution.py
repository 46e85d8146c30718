"""tf.distribute: two workers of train.py on 127.0.0.1, a restarted cluster, mirrored on one machine.

The workers are real train.py processes, told of each other by TF_CONFIG (or
by Slurm's variables, as srun sets them); they talk over 127.0.0.1.
"""

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import TRAIN
from test_train import final_metric, own_lines

# Same data order and steps in every run below; 23 steps of 64 per epoch.
COMMON = ["--epochs=3", "--batch_size=64", "--seed=3", "--deterministic=True"]
# Every writer on, so that the test sees which process writes what.
WRITERS = ["--backup_and_restore=True", "--model_checkpoint=True", "--tensorboard=True",
           "--csv_logger=True", "--results_file=results.jsonl"]

PROBE = '''
import hashlib, json, os, signal, time
import keras, numpy as np

def task_index():
    if "TF_CONFIG" in os.environ:
        return json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    return int(os.environ.get("SLURM_PROCID", 0))

class WeightsProbe(keras.callbacks.Callback):
    """Writes a digest of each worker's weights when training ends; can slow epochs down."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("PROBE_EPOCH_SLEEP", 0)))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # PROBE_SIGTERM_AT=worker:epoch:batch: that worker is sent SIGTERM there (its machine is preempted).
        if os.environ.get("PROBE_SIGTERM_AT") == f"{task_index()}:{self.epoch}:{batch}":
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_end(self, logs=None):
        digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in self.model.weights)).hexdigest()
        with open(f"weights-{task_index()}.txt", "w") as stream:
            stream.write(digest)
'''
WORKER_FLAGS = ["--distribution_strategy=multi_worker_mirrored", "--callbacks=probe.py:WeightsProbe"]


def free_ports(count, consecutive=False):
    """Returns `count` ports that were free a moment ago (consecutive ones if asked)."""
    for _ in range(50):
        sockets = [socket.socket() for _ in range(count)]
        try:
            sockets[0].bind(("127.0.0.1", 0))
            first = sockets[0].getsockname()[1]
            for offset, extra in enumerate(sockets[1:], start=1):
                extra.bind(("127.0.0.1", first + offset if consecutive else 0))
            return [s.getsockname()[1] for s in sockets]
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


def tf_config_env(ports, index):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}


def slurm_env(index, tasks=2):
    return {"SLURM_PROCID": str(index), "SLURM_STEP_NUM_TASKS": str(tasks),
            "SLURM_STEP_NODELIST": "127.0.0.1", "SLURM_STEP_TASKS_PER_NODE": str(tasks)}


def start_workers(workdir, args, envs, extra_env=None):
    """Starts one train.py per environment in `envs`, all in `workdir`; returns the Popen objects."""
    base = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    base.update(TMPDIR=str(workdir / "scratch"), **(extra_env or {}))
    (workdir / "scratch").mkdir(exist_ok=True)
    return [subprocess.Popen([sys.executable, TRAIN, *args], cwd=workdir, env={**base, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for env in envs]


def finish(workers, timeout=300):
    """Waits for every worker; returns [(exit code, stdout, stderr)]."""
    outcomes = []
    deadline = time.monotonic() + timeout
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            raise
        outcomes.append((worker.returncode, out, err))
    return outcomes


def run_dirs(workdir):
    root = workdir / "tensorboard_logs"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Two workers from TF_CONFIG, trained to the end without a stop."""
    workdir = tmp_path_factory.mktemp("two_workers")
    (workdir / "probe.py").write_text(PROBE)
    ports = free_ports(2)
    workers = start_workers(workdir, [*COMMON, *WRITERS, *WORKER_FLAGS],
                            [tf_config_env(ports, index) for index in (0, 1)])
    return workdir, finish(workers)


def test_two_workers_finish_in_step_with_identical_weights(two_workers):
    workdir, ((chief_code, chief_out, chief_err), (code, out, err)) = two_workers
    assert chief_code == 0 and code == 0, chief_err + err
    assert "Trained 3 epochs" in chief_out
    (line,) = out.strip().splitlines()
    assert line.startswith("worker 1: trained 3 epochs (completed); final ")
    assert f"loss: {final_metric(chief_out, 'loss'):.6g}" in line
    assert (workdir / "weights-0.txt").read_text() == (workdir / "weights-1.txt").read_text()


def test_only_the_chief_writes(two_workers):
    workdir, outcomes = two_workers
    (run_dir,) = run_dirs(workdir)
    names = sorted(os.listdir(run_dir))
    assert {"config.yaml", "results.json", "training.csv", "checkpoints"} <= set(names)
    assert "backup" not in names  # deleted when training finished
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["epoch01.keras", "epoch02.keras", "epoch03.keras"]
    (record,) = (workdir / "results.jsonl").read_text().splitlines()
    assert json.loads(record)["run_dir"] == json.loads((run_dir / "results.json").read_text())["run_dir"]
    # The other worker wrote into a scratch directory, and removed it.
    assert os.listdir(workdir / "scratch") == []
    assert "Run directory" not in outcomes[1][1]


def test_two_workers_train_like_two_mirrored_replicas(two_workers, train, tmp_path):
    """Splitting each global batch between two workers is the same training as between two devices."""
    workdir, ((_, chief_out, _), _) = two_workers
    result = train(*COMMON, "--distribution_strategy=mirrored", "--distribution_devices=CPU:0,CPU:1")
    assert result.returncode == 0, result.stderr
    assert final_metric(result.stdout, "loss") == pytest.approx(final_metric(chief_out, "loss"), abs=1e-5)
    (directory,) = (tmp_path / "tensorboard_logs").iterdir()
    assert json.loads((directory / "results.json").read_text())["status"] == "completed"


def test_a_restarted_cluster_resumes_and_ends_on_the_same_weights(two_workers, tmp_path):
    """Slurm launches the workers; both are killed in epoch 2; the same command resumes them."""
    baseline, _ = two_workers
    (tmp_path / "probe.py").write_text(PROBE)
    port = free_ports(2, consecutive=True)[0]
    args = [*COMMON, *WRITERS, *WORKER_FLAGS, f"--distribution_slurm_port={port}"]
    workers = start_workers(tmp_path, args, [slurm_env(0), slurm_env(1)], {"PROBE_EPOCH_SLEEP": "3"})
    metadata = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and all(w.poll() is None for w in workers):
        dirs = run_dirs(tmp_path)
        # The runner's state is saved with the backup, before the metadata that completes it.
        metadata = dirs and read_json(dirs[0] / "backup" / "training_metadata.json")
        if metadata and metadata.get("epoch") == 1:
            break
        time.sleep(0.1)
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
    finish(workers)
    assert metadata and metadata["epoch"] == 1, "the first epoch's backup never appeared"
    assert os.listdir(tmp_path / "scratch")  # the killed worker's scratch directory is left behind
    (run_dir,) = run_dirs(tmp_path)
    assert not (run_dir / "results.json").exists()

    port = free_ports(2, consecutive=True)[0]
    resumed = finish(start_workers(tmp_path, args[:-1] + [f"--distribution_slurm_port={port}"],
                                   [slurm_env(0), slurm_env(1)]))
    assert [code for code, _, _ in resumed] == [0, 0], resumed[0][2] + resumed[1][2]
    assert "Resuming the interrupted run" in resumed[0][1]
    assert "Epoch 1/3" not in resumed[0][1] and "Epoch 2/3" in resumed[0][1]
    assert run_dirs(tmp_path) == [run_dir]
    finished = json.loads((run_dir / "results.json").read_text())
    uninterrupted = json.loads(run_dirs(baseline)[0].joinpath("results.json").read_text())
    assert finished["final"] == uninterrupted["final"]
    for index in (0, 1):
        assert (tmp_path / f"weights-{index}.txt").read_text() == (baseline / "weights-0.txt").read_text()


def test_a_worker_stopped_by_sigterm_stops_the_cluster_at_one_step_and_the_rerun_resumes_all_there(two_workers,
                                                                                                   tmp_path):
    """A preempted machine: worker 1 gets SIGTERM inside epoch 2; every worker backs up at one step and exits 143."""
    baseline, _ = two_workers
    (tmp_path / "probe.py").write_text(PROBE)
    args = [*COMMON, *WRITERS, *WORKER_FLAGS]
    # Worker 1 is signalled after batch 7 of the second epoch: both stop before batch 8.
    ports = free_ports(2)
    workers = start_workers(tmp_path, args, [tf_config_env(ports, index) for index in (0, 1)],
                            {"PROBE_SIGTERM_AT": "1:1:7"})
    stopped = finish(workers)
    assert [code for code, _, _ in stopped] == [143, 143], stopped[0][2][-2000:] + stopped[1][2][-2000:]
    assert "another worker of the cluster received SIGTERM" in stopped[0][2]
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "interrupted"
    assert record["interruptions"] == [{"epoch": 2, "batch": 8, "signal": "SIGTERM"}]

    ports = free_ports(2)
    resumed = finish(start_workers(tmp_path, args, [tf_config_env(ports, index) for index in (0, 1)]))
    assert [code for code, _, _ in resumed] == [0, 0], resumed[0][2][-2000:] + resumed[1][2][-2000:]
    assert "at epoch 2, after batch 8 of 23" in resumed[0][1]
    finished = json.loads((run_dir / "results.json").read_text())
    uninterrupted = json.loads(run_dirs(baseline)[0].joinpath("results.json").read_text())
    assert finished["final"] == uninterrupted["final"]
    for index in (0, 1):
        assert (tmp_path / f"weights-{index}.txt").read_text() == (baseline / "weights-0.txt").read_text()


def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_a_strategy_runs_on_one_device(train):
    result = train("--epochs=1", "--distribution_strategy=one_device", "--distribution_devices=CPU:0")
    assert result.returncode == 0, result.stderr
    assert "Trained 1 epoch" in result.stdout


def test_tf_config_without_a_strategy_warns(train):
    env = tf_config_env([1, 2], 0)
    result = train("--dry_run", env=env)
    assert result.returncode == 0
    assert own_lines(result.stderr) == [
        "train.py: TF_CONFIG is set but --distribution_strategy is default: training on this machine alone"]


def test_keras_still_has_what_the_multi_worker_workaround_relies_on():
    """Fails on a Keras upgrade: re-check keras_fixes/multi_worker.py against Keras issue #20585."""
    import keras
    from keras.src.backend.tensorflow import trainer

    from kerasrun.keras_fixes import multi_worker

    assert keras.version().startswith(multi_worker.WRITTEN_FOR + "."), (
        f"Keras is now {keras.version()}; keras_fixes/multi_worker.py was written for "
        f"{multi_worker.WRITTEN_FOR}: check {multi_worker.ISSUE}, run this module's tests, "
        "and update WRITTEN_FOR")
    multi_worker.check_keras()
    # The two failures it works around are still in Keras's code.
    assert "self.distribute_strategy.reduce(" in inspect.getsource(trainer.TensorFlowTrainer._maybe_symbolic_build)
    assert 'strategy.reduce("MEAN", v, axis=0)' in inspect.getsource(trainer.reduce_per_replica)
    assert "reduce_per_replica(" in inspect.getsource(trainer.TensorFlowTrainer._make_function)


def test_ctrl_c_ends_the_wait_for_the_other_workers(tmp_path):
    (worker,) = start_workers(tmp_path, ["--distribution_strategy=multi_worker_mirrored"],
                              [tf_config_env(free_ports(2), 0)])
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = worker.stderr.readline()
        lines.append(line)
        if "Waiting for the 2 workers" in line or not line:
            break
    time.sleep(2)  # into TensorFlow's wait
    worker.send_signal(signal.SIGINT)
    worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGINT, "".join(lines)
    assert not (tmp_path / "tensorboard_logs").exists()
