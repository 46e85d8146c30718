"""--steps_per_execution auto: as many steps per call as helps, with every batch a callback acts on still seen."""

import glob
import json
import os
import re

import numpy as np
import pytest

from kerasrun.callbacks import stepping
from kerasrun.cli.config import resolve


def choice(*flags, steps_per_epoch=45, own=()):
    return stepping.choose(resolve(["train.py", *flags]), steps_per_epoch, own)


def test_auto_runs_a_tenth_of_the_epoch_at_most_the_largest_per_call():
    assert choice().steps == 4 and "a tenth of the epoch's 45 steps" in choice().line
    assert choice(steps_per_epoch=1875).steps == stepping.LARGEST
    assert choice(steps_per_epoch=5).steps == 1
    assert choice(steps_per_epoch=None).steps is None and "chosen once the data is loaded" in choice(
        steps_per_epoch=None).line
    # Epoch-level callbacks, the pruner among them, do not constrain it.
    assert choice("--early_stopping", "--reduce_lr", "--csv_logger", "--tensorboard", "--backup_and_restore",
                  "--model_checkpoint", steps_per_epoch=1875).steps == stepping.LARGEST
    assert choice("--steps_per_execution", "7").line == "steps per execution: 7 (--steps_per_execution)"


@pytest.mark.parametrize("flags, why", [
    (("--terminate_on_nan",), "--terminate_on_nan checks the loss of every batch"),
    (("--tensorboard", "--tensorboard_update_freq=batch"), "--tensorboard_update_freq writes every batch"),
    (("--tensorboard", "--tensorboard_update_freq=1"), "--tensorboard_update_freq writes every batch"),
    (("--tensorboard", "--tensorboard_profile_batch=3"), "--tensorboard_profile_batch profiles single batches"),
    (("--tensorboard", "--tensorboard_update_freq=10", "--tensorboard_write_steps_per_second"),
     "--tensorboard_write_steps_per_second"),
    (("--lambda_callback", "--lambda_callback_on_train_batch_end=operator:add"),
     "--lambda_callback_on_train_batch_end runs on every batch"),
])
def test_a_callback_acting_on_every_batch_gets_one_step_per_call(flags, why):
    chosen = choice(*flags, steps_per_epoch=1875)
    assert chosen.steps == 1 and why in chosen.line, chosen.line


def test_batch_frequencies_are_divided_with_the_epoch():
    # Saves every 15 batches, summaries every 30, epochs of 45: calls of 3 steps end on each of those batches.
    chosen = choice("--model_checkpoint", "--model_checkpoint_save_freq=15", "--tensorboard",
                    "--tensorboard_update_freq=30")
    assert chosen.steps == 3
    assert "--model_checkpoint_save_freq saves every 15 batches" in chosen.line
    assert "--tensorboard_update_freq writes every 30 batches" in chosen.line
    assert choice("--backup_and_restore", "--backup_and_restore_save_freq=100", steps_per_epoch=2000).steps == 25
    # Counted over the whole run: an epoch of 44 steps and saves every 10 leave nothing but 2.
    assert choice("--backup_and_restore", "--backup_and_restore_save_freq=10", steps_per_epoch=44).steps == 2
    assert choice("--backup_and_restore", "--backup_and_restore_save_freq=10", steps_per_epoch=43).steps == 1


def test_a_users_callback_with_batch_hooks_gets_one_step_per_call():
    import keras

    class EveryBatch(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

    class OldStyle(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    class EpochsOnly(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    assert choice(own=[EveryBatch]).line == (
        "steps per execution: 1 (auto: --callbacks EveryBatch defines on_test_batch_end)")
    assert choice(own=[OldStyle()]).steps == 1
    instance = EpochsOnly()
    assert choice(own=[EpochsOnly, instance]).steps == 4
    instance.on_train_batch_begin = lambda batch, logs=None: None  # A hook set on the instance counts.
    assert choice(own=[instance]).steps == 1


def test_dry_run_says_what_auto_chooses(train, tmp_path):
    result = train("--dry_run", "--model_checkpoint", "--model_checkpoint_save_freq=9")
    assert result.returncode == 0, result.stderr
    assert "#   steps per execution: 3 (auto: the largest number up to 4 that divides the epoch's 45 steps" in (
        result.stdout)
    result = train("--dry_run", "--dataset=mnist")  # Its data is left to the run.
    assert result.returncode == 0, result.stderr
    assert "#   steps per execution: auto, chosen once the data is loaded (at most 32)" in result.stdout


def batch_scalars(run_dir):
    """{tag: [(step, value)]} of the batch summaries in a run's train/ event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(os.path.join(run_dir, "train"), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [(event.step, float(tensor_util.make_ndarray(event.tensor_proto))) for event in events.Tensors(tag)]
            for tag in events.Tags()["tensors"] if tag.startswith("batch_")}


def test_auto_ends_where_one_step_per_call_does_and_acts_on_the_same_batches(train, tmp_path):
    """Checkpoints every 15 batches and summaries every 15, on epochs of 45 steps: auto runs 3 per call."""
    common = ["--epochs=2", "--verbose=2", "--seed=3", "--deterministic=True",
              "--model_checkpoint", "--model_checkpoint_save_freq=15", "--model_checkpoint_save_weights_only",
              "--tensorboard", "--tensorboard_update_freq=15"]
    runs = {}
    for name, steps in (("auto", "auto"), ("one", "1")):
        result = train(*common, f"--steps_per_execution={steps}", f"--run_name={name}",
                       f"--model_checkpoint_filepath={name}/e{{epoch}}-b{{batch}}.weights.h5")
        assert result.returncode == 0, result.stderr
        runs[name] = result
    assert "steps per execution: 3 (auto:" in runs["auto"].stdout
    assert "steps per execution: 1 (--steps_per_execution)" in runs["one"].stdout
    run_dirs = {name: os.path.join(tmp_path, "tensorboard_logs", name) for name in runs}
    finals = {}
    for name, directory in run_dirs.items():
        with open(os.path.join(directory, "results.json")) as stream:
            finals[name] = json.load(stream)["final"]
    assert finals["auto"] == finals["one"]  # --seed with --deterministic: the same numbers, exactly.
    saved = {name: sorted(os.path.basename(path) for path in glob.glob(os.path.join(tmp_path, name, "*")))
             for name in run_dirs}
    # Keras names the batch in the epoch, from 1: batches 15, 30 and 45 of each epoch.
    assert saved["auto"] == saved["one"] == sorted(
        f"e{epoch}-b{batch}.weights.h5" for epoch in (1, 2) for batch in (15, 30, 45))
    scalars = {name: batch_scalars(directory) for name, directory in run_dirs.items()}
    assert [step for step, _ in scalars["auto"]["batch_loss"]] == [15, 30, 45, 60, 75, 90]
    for tag, points in scalars["one"].items():
        assert [step for step, _ in scalars["auto"][tag]] == [step for step, _ in points], tag
        np.testing.assert_allclose([value for _, value in scalars["auto"][tag]], [value for _, value in points],
                                   rtol=1e-6, err_msg=tag)


def test_terminate_on_nan_still_stops_at_the_bad_batch(train, tmp_path):
    x = np.random.default_rng(0).random((640, 4)).astype("float32")
    x[300, 2] = 3e38  # Finite (NaN and infinity are refused before training), but the sums overflow.
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=np.arange(640) % 2)
    stops = {}
    for steps in ("auto", "1"):
        result = train("--dataset=npz:nan.npz", "--epochs=2", "--verbose=2", "--terminate_on_nan",
                       f"--steps_per_execution={steps}", f"--run_name=nan{steps}")
        assert result.returncode == 3, result.stderr
        stops[steps] = re.findall(r"Batch (\d+): Invalid loss", result.stdout + result.stderr)
    assert stops["auto"] == stops["1"] and len(stops["1"]) == 1, stops
    assert int(stops["1"][0]) > 0  # Not the first batch: a call of several steps would have hidden where.


def test_multi_worker_runs_take_one_step_per_call(monkeypatch):
    from kerasrun.core.errors import UsageError

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    chosen = choice("--distribution_strategy=multi_worker_mirrored", steps_per_epoch=1875)
    assert chosen.steps == 1 and "fails under tf.distribute's mirrored strategies" in chosen.line
    assert choice("--distribution_strategy=mirrored", steps_per_epoch=1875).steps == 1
    with pytest.raises(UsageError, match=r"^--steps_per_execution=4: must be 1 or auto with multi_worker_mirrored on TensorFlow"):
        resolve(["train.py", "--distribution_strategy=multi_worker_mirrored", "--steps_per_execution=4"])


def test_batch_summaries_asked_for_every_batch_get_every_batch(train, tmp_path):
    result = train("--epochs=1", "--verbose=0", "--tensorboard", "--tensorboard_update_freq=batch", "--run_name=b")
    assert result.returncode == 0, result.stderr
    assert "steps per execution: 1 (auto: --tensorboard_update_freq writes every batch)" in result.stdout
    scalars = batch_scalars(os.path.join(tmp_path, "tensorboard_logs", "b"))
    assert [step for step, _ in scalars["batch_loss"]] == list(range(1, 46))  # 1,437 digits in batches of 32


@pytest.mark.parametrize("steps", [1, 3])
def test_backups_every_n_batches_land_on_their_batches_with_several_steps_per_call(tmp_path, steps):
    """Two epochs of 45 steps, a backup every 15 batches, as fit calls the hooks with `steps` steps per call."""
    from kerasrun.callbacks.subclasses.backup_and_restore import BackupAndRestore

    backup = BackupAndRestore(str(tmp_path), save_freq=15)
    saved = []
    backup._save_model = lambda: saved.append((backup._current_epoch, backup._last_batch_seen))
    for epoch in range(2):
        backup.on_epoch_begin(epoch)
        for begin in range(0, 45, steps):
            backup.on_train_batch_end(begin + steps - 1)
        backup._current_epoch = epoch + 1  # What Keras's on_epoch_end sets (it saves only with save_freq epoch).
        backup._last_batch_seen = 0
    assert saved == [(epoch, batch) for epoch in (0, 1) for batch in (14, 29, 44)]
