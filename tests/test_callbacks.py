"""The callback declarations against Keras itself, and the builder."""

import inspect

import keras
import pytest

from callbacks.builder import build_callbacks, families
from runner.config import resolve
from runner.run_paths import RunPaths

FAMILY_NAMES = ("reduce_lr", "early_stopping", "model_checkpoint", "tensorboard")


def keras_parameters(family):
    signature = inspect.signature(getattr(keras.callbacks, family.keras_class))
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


def test_the_four_core_families_exist_in_running_order():
    names = [family.name for family in families()]
    assert names[: len(FAMILY_NAMES)] == list(FAMILY_NAMES)


@pytest.mark.parametrize("family", families(), ids=lambda family: family.name)
def test_every_keras_argument_is_a_flag_with_keras_default(family):
    parameters = keras_parameters(family)
    declared = {arg.name: arg.default for arg in family.args}
    assert set(declared) == set(parameters)
    for name, keras_default in parameters.items():
        if keras_default is inspect.Parameter.empty:
            continue  # ModelCheckpoint's filepath: ours defaults into the run directory.
        if family.name == "tensorboard" and name == "log_dir":
            continue  # The logs root the README promises, not Keras's "logs".
        assert declared[name] == keras_default, f"--{family.flag_name(name)}"


def test_groups_are_off_by_default():
    assert build_callbacks(resolve(["train.py"]), RunPaths("root", "run")) == []


def test_builder_passes_every_flag_through(tmp_path):
    config = resolve([
        "train.py", "--early_stopping", "True", "--early_stopping_patience=3",
        "--early_stopping_baseline=0.5", "--early_stopping_restore_best_weights",
        "--reduce_lr", "--reduce_lr_factor=0.5", "--reduce_lr_min_lr=0.0001",
        "--model_checkpoint", "--model_checkpoint_save_freq=7", "--model_checkpoint_save_weights_only",
        "--tensorboard", f"--tensorboard_log_dir={tmp_path}", "--tensorboard_update_freq=batch",
        "--tensorboard_profile_batch=2,3", "--tensorboard_embeddings_metadata=emb=meta.tsv",
    ])
    reduce_lr, early, checkpoint, board = build_callbacks(config, RunPaths(str(tmp_path), "run"))
    assert isinstance(reduce_lr, keras.callbacks.ReduceLROnPlateau) and reduce_lr.factor == 0.5
    assert reduce_lr.min_lr == 0.0001
    assert isinstance(early, keras.callbacks.EarlyStopping) and early.patience == 3
    assert early.baseline == 0.5 and early.restore_best_weights is True
    assert checkpoint.save_freq == 7 and checkpoint.save_weights_only is True
    assert checkpoint.filepath == str(tmp_path / "run" / "checkpoints" / "epoch{epoch:02d}.weights.h5")
    assert board.log_dir == str(tmp_path / "run") and board.update_freq == 1
    assert board.embeddings_metadata == {"emb": "meta.tsv"}
