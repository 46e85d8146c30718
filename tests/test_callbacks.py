"""The callback declarations against Keras itself, and the builder."""

import inspect

import keras
import pytest

from kerasrun.callbacks.builder import build_callbacks, callback_class, families, family_of
from kerasrun.callbacks.subclasses.tensorboard import TensorBoard
from kerasrun.cli.config import resolve, worker_overrides
from kerasrun.runner.run_paths import RunPaths

RUNNING_ORDER = (
    "learning_rate_scheduler", "reduce_lr", "terminate_on_nan", "early_stopping", "optuna", "swap_ema_weights",
    "model_checkpoint", "backup_and_restore", "csv_logger", "tensorboard", "remote_monitor",
    "mlflow", "lambda_callback",
)
# Keras arguments without a default, or whose default we place in the run's directory.
RUN_DEFAULTS = {
    ("model_checkpoint", "filepath"), ("tensorboard", "log_dir"), ("csv_logger", "filename"),
    ("backup_and_restore", "backup_dir"), ("learning_rate_scheduler", "schedule"),
}
# Families whose class is only ours: Keras has none for what they do.
OWN_CLASS_FAMILIES = {"optuna", "mlflow"}


def keras_parameters(family):
    """The parameters of the class whose arguments are the family's `args`: Keras's, or ours where Keras has none."""
    built = getattr(keras.callbacks, family.keras_class) if family.keras_class else callback_class(family)
    signature = inspect.signature(built)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


def test_every_keras_callback_is_a_family_in_running_order():
    assert [family.name for family in families()] == list(RUNNING_ORDER)
    assert {family.name for family in families() if not family.keras_class} == OWN_CLASS_FAMILIES
    offered = {family.keras_class for family in families() if family.keras_class}
    # ProgbarLogger is --verbose; History and the base classes are not user-facing;
    # OrbaxCheckpoint needs the orbax-checkpoint package, which we do not depend on.
    not_flag_groups = {"Callback", "CallbackList", "History", "ProgbarLogger", "MonitorCallback",
                       "OrbaxCheckpoint"}
    available = {name for name in dir(keras.callbacks) if name[0].isupper()} - not_flag_groups
    assert available == offered


@pytest.mark.parametrize("family", families(), ids=lambda family: family.name)
def test_every_keras_argument_is_a_flag_and_defaults_reach_keras_unchanged(family, tmp_path):
    parameters = keras_parameters(family)
    config = resolve(["train.py"])
    if not family.keras_class and family.run_kwargs:  # Our class's arguments that are no option, given by the run.
        given = family.run_kwargs(family.values(config), RunPaths(str(tmp_path), "run"), config)
        parameters = {name: default for name, default in parameters.items() if name not in given}
    assert {arg.name for arg in family.args} == set(parameters)
    passed = family.keras_kwargs(family.values(config), RunPaths(str(tmp_path), "run"), config)
    for name, keras_default in parameters.items():
        if (family.name, name) in RUN_DEFAULTS:
            continue
        if keras_default is inspect.Parameter.empty:  # Our class's required ones: the family's check requires them.
            assert family.name in OWN_CLASS_FAMILIES, f"--{family.flag_name(name)}"
        else:
            assert passed[name] == keras_default, f"--{family.flag_name(name)}"


@pytest.mark.parametrize("family", families(), ids=lambda family: family.name)
def test_each_family_builds_the_keras_class_or_our_subclass_of_it(family):
    # Our subclasses take the Keras class's arguments and pass the runner's isinstance checks;
    # a family that Keras has no class for builds a callback of ours.
    assert issubclass(callback_class(family), getattr(keras.callbacks, family.keras_class or "Callback"))
    assert bool(family.keras_class) or family.subclass


def test_groups_are_off_by_default():
    assert build_callbacks(resolve(["train.py"]), RunPaths("root", "run")) == []


def test_builder_passes_every_flag_through(tmp_path):
    config = resolve([
        "train.py", "--early_stopping", "True", "--early_stopping_patience=3",
        "--early_stopping_baseline=0.5", "--early_stopping_restore_best_weights",
        "--reduce_lr", "--reduce_lr_factor=0.5", "--reduce_lr_min_lr=0.0001",
        "--model_checkpoint", "--model_checkpoint_save_freq=7", "--model_checkpoint_save_weights_only",
        "--model_checkpoint_keep=2", "--tensorboard", f"--tensorboard_log_dir={tmp_path}", "--tensorboard_update_freq=batch",
        "--tensorboard_profile_batch=2,3", "--tensorboard_embeddings_metadata=emb=meta.tsv",
    ])
    reduce_lr, early, checkpoint, board = build_callbacks(config, RunPaths(str(tmp_path), "run"))
    assert isinstance(reduce_lr, keras.callbacks.ReduceLROnPlateau) and reduce_lr.factor == 0.5
    assert reduce_lr.min_lr == 0.0001
    assert isinstance(early, keras.callbacks.EarlyStopping) and early.patience == 3
    assert early.baseline == 0.5 and early.restore_best_weights is True
    assert checkpoint.save_freq == 7 and checkpoint.save_weights_only is True
    assert checkpoint.filepath == str(tmp_path / "run" / "checkpoints" / "epoch{epoch:02d}.weights.h5")
    # Ours: writes whole files only, keeps the newest 2, and the best epoch's model as best.keras.
    assert checkpoint.keep == 2 and checkpoint.best_model_path == str(tmp_path / "run" / "best.keras")
    assert type(board) is TensorBoard  # ours: Keras's does per-batch work for nothing
    assert board.log_dir == str(tmp_path / "run") and board.update_freq == 1
    assert board.embeddings_metadata == {"emb": "meta.tsv"}


def test_a_resumed_run_goes_on_appending_to_the_csv_log_and_each_built_callback_knows_its_family(tmp_path):
    config = resolve(["train.py", "--csv_logger", "--early_stopping"])
    early, fresh = build_callbacks(config, RunPaths(str(tmp_path), "run"))
    _, resumed = build_callbacks(config, RunPaths(str(tmp_path), "run"), resumed=True)
    assert (fresh.append, resumed.append) == (False, True)
    assert family_of(early).name == "early_stopping" and family_of(resumed).name == "csv_logger"
    assert family_of(keras.callbacks.Callback()) is None


def test_workers_other_than_the_chief_drop_the_users_paths_and_report_nothing():
    assert worker_overrides() == {
        "results_file": None, "verbose": 0, "model_checkpoint_filepath": None, "backup_and_restore_backup_dir": None,
        "csv_logger_filename": None, "remote_monitor": False, "mlflow": False,
    }
