"""Flags, booleans, YAML layering and validation, through `cli.config.resolve`."""

import os

import pytest

from conftest import REPO

from kerasrun.cli.config import resolve
from kerasrun.core.errors import UsageError


def parse(*args):
    return resolve(["train.py", *args])


def refusal(*args):
    with pytest.raises(UsageError) as caught:
        parse(*args)
    return str(caught.value)


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), False),
        (("--early_stopping", "True"), True),
        (("--early_stopping", "False"), False),
        (("--early_stopping", "true"), True),
        (("--early_stopping", "false"), False),
        (("--early_stopping=False",), False),
        (("--early_stopping=True",), True),
        (("--early_stopping",), True),
        (("--noearly_stopping",), False),
        (("--early_stopping", "--epochs", "3"), True),
        (("--early_stopping", "False", "--epochs", "3"), False),
    ],
)
def test_every_boolean_form_means_what_it_says(args, expected):
    assert parse(*args).early_stopping is expected


def test_boolean_word_does_not_leak_into_the_next_flag():
    config = parse("--reduce_lr", "True", "--early_stopping", "False", "--tensorboard")
    assert (config.reduce_lr, config.early_stopping, config.tensorboard) == (True, False, True)


@pytest.mark.parametrize("args", [("stray",), ("--epochs", "3", "stray"), ("--noearly_stopping", "True")])
def test_stray_positional_words_are_refused(args):
    assert "unexpected argument" in refusal(*args)


def test_core_flags_parse_to_typed_values():
    config = parse("--epochs", "3", "--batch_size=8", "--learning_rate", "0.01", "--metrics=",
                   "--optimizer=sgd", "--validation_split=0.25", "--seed=7", "--verbose=0")
    assert (config.epochs, config.batch_size, config.learning_rate) == (3, 8, 0.01)
    assert config.metrics == ()
    assert (config.optimizer, config.validation_split, config.seed, config.verbose) == ("sgd", 0.25, 7, 0)


def test_metrics_are_comma_separated():
    assert parse("--metrics=accuracy,sparse_top_k_categorical_accuracy").metrics == (
        "accuracy", "sparse_top_k_categorical_accuracy")


def test_config_is_read_only():
    config = parse()
    with pytest.raises(TypeError):
        config["epochs"] = 3


@pytest.mark.parametrize(
    "args, flag_and_value, accepted",
    [
        (("--epochs=0",), "--epochs=0", "at least 1"),
        (("--epochs=ten",), "--epochs=ten", "integer"),
        (("--batch_size=0",), "--batch_size=0", "at least 1"),
        (("--learning_rate=-1",), "--learning_rate=-1.0", "greater than 0"),
        (("--validation_split=1",), "--validation_split=1.0", "below 1"),
        (("--reduce_lr", "--reduce_lr_factor=1.5"), "--reduce_lr_factor=1.5", "below 1.0"),
        (("--optimizer=adamm",), "--optimizer=adamm", "adam"),
        (("--verbose=3",), "--verbose=3", "0 (silent)"),
        (("--loss=nope",), "--loss=nope", "sparse_categorical_crossentropy"),
        (("--metrics=accuracy,nope",), "--metrics=accuracy,nope", "unknown metric 'nope'"),
        (("--early_stopping", "--early_stopping_mode=up"), "--early_stopping_mode=up", "one of auto, min, max"),
        (("--early_stopping", "--early_stopping_patience=-1"), "--early_stopping_patience=-1", "at least 0"),
        (("--tensorboard", "--tensorboard_update_freq=often"), "--tensorboard_update_freq=often", "'batch'"),
        (("--tensorboard", "--tensorboard_profile_batch=5,2"), "--tensorboard_profile_batch=5,2", "start <= stop"),
        (("--model_checkpoint", "--model_checkpoint_save_freq=0"), "--model_checkpoint_save_freq=0", "at least 1"),
        (("--run_name=../x",), "--run_name=../x", "plain directory name"),
        (("--epoch=3",), "--epoch=3", "did you mean --epochs"),
        (("--config=missing.yaml",), "missing.yaml", "cannot read"),
    ],
)
def test_bad_flags_are_refused_with_flag_value_and_what_is_accepted(args, flag_and_value, accepted):
    message = refusal(*args)
    assert flag_and_value in message
    assert accepted in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "monitor_flags",
    [
        ("--early_stopping", "--early_stopping_monitor=val_acc"),
        ("--reduce_lr", "--reduce_lr_monitor=accuracyy"),
        ("--model_checkpoint", "--model_checkpoint_save_best_only", "--model_checkpoint_monitor=val_auc"),
    ],
)
def test_a_monitor_that_is_never_logged_is_refused(monitor_flags):
    message = refusal(*monitor_flags)
    assert "will never be logged" in message and "val_accuracy" in message


def test_a_val_monitor_without_validation_data_says_why(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,label\n1,0\n")
    message = refusal(f"--dataset=csv:{data}", "--early_stopping")
    assert "--early_stopping_monitor=val_loss" in message and "no validation data" in message


@pytest.mark.parametrize(
    "path",
    ["weights.{epoch:02d}-{val_loss:.2f}.hdf5", "model.ckpt", "model.tf"],
)
def test_old_checkpoint_suffixes_are_refused_naming_the_accepted_ones(path):
    message = refusal("--model_checkpoint", f"--model_checkpoint_filepath={path}")
    assert path in message and ".keras" in message and ".weights.h5" in message


def test_weights_only_checkpoints_need_the_weights_suffix():
    message = refusal("--model_checkpoint", "--model_checkpoint_save_weights_only",
                      "--model_checkpoint_filepath=w.keras")
    assert ".weights.h5" in message


def test_checkpoint_placeholders_must_be_logged_keys():
    message = refusal("--model_checkpoint", "--model_checkpoint_filepath=m-{epoch:02d}-{val_los:.2f}.keras")
    assert "'val_los' will never be logged" in message
    assert "epoch" in message
    config = parse("--model_checkpoint", "--model_checkpoint_filepath=m-{epoch:02d}-{val_loss:.2f}.keras")
    assert config.model_checkpoint_filepath == "m-{epoch:02d}-{val_loss:.2f}.keras"


def test_keras_defaults_are_our_defaults():
    config = parse()
    assert config.reduce_lr_factor == 0.1 and config.reduce_lr_patience == 10
    assert config.early_stopping_monitor == "val_loss" and config.early_stopping_baseline is None
    assert config.model_checkpoint_save_freq == "epoch"
    assert config.tensorboard_log_dir == "tensorboard_logs" and config.tensorboard_update_freq == "epoch"


# YAML layering ---------------------------------------------------------------

def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_precedence_is_defaults_then_file_then_command_line(tmp_path):
    path = write(tmp_path, "epochs: 7\nbatch_size: 16\nearly_stopping: true\nmetrics: [accuracy]\n")
    config = parse(f"--config={path}", "--batch_size=4")
    assert config.epochs == 7  # from the file
    assert config.batch_size == 4  # the command line wins
    assert config.early_stopping is True
    assert config.learning_rate == 0.001  # default
    assert parse(f"--config={path}", "--early_stopping", "False").early_stopping is False


def test_flag_before_config_still_wins(tmp_path):
    path = write(tmp_path, "epochs: 7\n")
    assert parse("--epochs=2", f"--config={path}").epochs == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("epochs: ten\n", "epochs='ten': must be an integer"),
        ("epochs: 2.5\n", "epochs=2.5: must be an integer"),
        ("early_stopping: 1\n", "early_stopping=1: must be true or false"),
        ("learning_rate: fast\n", "learning_rate='fast': must be a number"),
        ("epoch: 3\n", "unknown key 'epoch' (did you mean epochs?)"),
        ("config: other.yaml\n", "config: only allowed on the command line"),
        ("epochs: [1\n", "not valid YAML at line"),
        ("- epochs\n- 3\n", "must be a mapping of flag names to values, not a list"),
        ("epochs: 0\n", "epochs=0: must be at least 1"),
        ("reduce_lr: true\nreduce_lr_factor: 2\n", "reduce_lr_factor=2.0: must be above 0 and below 1.0"),
        ("dataset: nope\n", "dataset='nope'"),
        ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    ],
)
def test_bad_config_files_are_refused_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = refusal(f"--config={path}")
    assert path in message
    assert expected in message


def test_empty_config_file_changes_nothing(tmp_path):
    path = write(tmp_path, "# nothing\n")
    assert parse(f"--config={path}").epochs == parse().epochs


def test_flagfile_still_works(tmp_path):
    flagfile = write(tmp_path, "--epochs=4\n--early_stopping=true\n", name="flags.txt")
    config = parse(f"--flagfile={flagfile}")
    assert config.epochs == 4 and config.early_stopping is True


def test_bundled_configs_are_valid():
    configs = os.path.join(REPO, "configs")
    assert parse(f"--config={configs}/digits.yaml").model == "cnn"
    assert parse(f"--config={configs}/cifar10.yaml").dataset == "cifar10"


# Mistakes each refused by a rule of its own ------------------------------------

@pytest.mark.parametrize(
    "args, expected",
    [
        (("--noearly_stopping=false",), "--noearly_stopping takes no value"),
        (("--early_stopping", "maybe"), "--early_stopping=maybe: must be true or false"),
        (("--early_stopping=maybe",), "--early_stopping=maybe: must be true or false"),
        (("--flagfile=nope.txt",), "--flagfile: Unable to open flagfile"),
        (("--seed=4294967296",), "must be at most 4,294,967,295 in size"),
        (("--learning_rate=inf",), "must be a finite number"),
        (("--learning_rate=nan",), "must be a finite number"),
        (("--tensorboard_log_dir=",), "must name a directory"),
        (("--dataset_image_size=0,0",), "must all be greater than 0"),
        (("--model_weights=imagenet",), "only keras.applications models take pretrained weights"),
        (("--model=MobileNetV2", "--model_weights=foo"), "imagenet or an existing weights file"),
        (("--tensorboard", "--tensorboard_profile_batch=0,3"), "0 < start"),
        (("--tensorboard", "--tensorboard_embeddings_metadata=x=m.tsv,y"), "must look like layer=file"),
        (("--model_checkpoint", "--model_checkpoint_filepath=e{epoch:zz}.keras"), "cannot be filled in"),
        (("--model_checkpoint", "--model_checkpoint_filepath=e{val_loss:d}.keras"), "cannot be filled in"),
        (("--model_checkpoint", "--model_checkpoint_save_freq=20",
          "--model_checkpoint_filepath=e{epoch}-{val_loss:.2f}.keras"), "not known between batches"),
        (("--model_checkpoint", "--model_checkpoint_save_freq=20", "--model_checkpoint_save_best_only"),
         "not known between batches"),
        (("--reduce_lr", "--early_stopping", "--early_stopping_monitor=learning_rate"), "set min or max"),
    ],
)
def test_more_mistakes_are_refused(args, expected):
    assert expected in refusal(*args)


def test_boolean_forms_yes_and_no_are_read_like_true_and_false():
    assert parse("--early_stopping=yes").early_stopping is True
    assert parse("--early_stopping", "no").early_stopping is False


def test_the_value_of_a_text_flag_is_never_taken_for_a_boolean():
    config = parse("--run_name", "False", "--early_stopping", "--epochs", "2")
    assert (config.run_name, config.early_stopping, config.epochs) == ("False", True, 2)


def test_a_logs_root_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "logs").write_text("")
    assert "is a file, not a directory" in refusal(f"--tensorboard_log_dir={tmp_path / 'logs'}")


@pytest.mark.parametrize("content", [b"\x93NUMPY not really", b"PK\x03\x04 truncated"])
def test_unreadable_npz_files_are_refused_not_crashed_on(tmp_path, content):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    assert "not an .npz archive" in refusal(f"--dataset=npz:{path}", "--early_stopping")  # Found when checked.


def test_a_plain_npy_file_is_refused(tmp_path):
    import numpy as np

    np.save(tmp_path / "single.npy", np.zeros(3))
    assert "single array" in refusal(f"--dataset=npz:{tmp_path / 'single.npy'}", "--early_stopping")


def test_yaml_keys_given_twice_are_refused(tmp_path):
    path = write(tmp_path, "epochs: 3\nepochs: 4\n")
    assert "key 'epochs' is given twice" in refusal(f"--config={path}")


def test_yaml_infinity_is_refused(tmp_path):
    path = write(tmp_path, "learning_rate: .inf\n")
    assert "learning_rate=inf: must be a finite number" in refusal(f"--config={path}")


def test_val_monitors_are_checked_again_once_a_plugin_shows_it_has_no_validation_data(tmp_path, monkeypatch):
    from kerasrun.cli.config import check_against_data

    (tmp_path / "no_val.py").write_text("def load():\n    return ([[0.0]], [0]), None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = parse("--dataset=no_val:load", "--early_stopping")  # unknown until the plug-in runs
    check_against_data(config, has_validation=True)
    with pytest.raises(UsageError, match="--early_stopping_monitor=val_loss: 'val_loss' will never be logged"):
        check_against_data(config, has_validation=False)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--run_name=.hidden",), "not starting with a dot"),
        (("--run_name=" + "x" * 300,), "at most 200 bytes"),
        (("--results_file=/nonexistent/r.jsonl",), "directory /nonexistent does not exist"),
        (("--results_file=/tmp",), "is a directory, not a file"),
        (("--csv_logger", "--csv_logger_filename=/nonexistent/x.csv"), "directory /nonexistent does not exist"),
        (("--model_checkpoint", "--model_checkpoint_filepath=x.weights.h5"), "would hold a whole model"),
        (("--learning_rate_scheduler", "--learning_rate_scheduler_schedule=cosine",
          "--learning_rate_scheduler_min_lr=0.01"), "must be below --learning_rate"),
        (("--callbacks=collections:OrderedDict",), "is not a keras.callbacks.Callback subclass"),
    ],
)
def test_paths_names_and_plug_ins_that_cannot_work_are_refused(args, expected):
    assert expected in refusal(*args)


def test_yaml_numbers_written_without_a_dot_are_numbers(tmp_path):
    path = write(tmp_path, "learning_rate: 1e-3\nepochs: '4'\n")
    config = parse(f"--config={path}")
    assert config.learning_rate == 0.001 and config.epochs == 4


def test_a_config_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00epochs")
    assert "not a text file" in refusal(f"--config={path}")


def test_a_plugin_that_exits_on_import_is_refused(tmp_path, monkeypatch):
    (tmp_path / "quits.py").write_text("raise SystemExit(5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "importing 'quits' failed: SystemExit" in refusal("--lambda_callback",
                                                          "--lambda_callback_on_epoch_end=quits:hook")


def test_a_callback_class_that_needs_arguments_is_refused(tmp_path, monkeypatch):
    (tmp_path / "needy.py").write_text(
        "import keras\n\nclass Needy(keras.callbacks.Callback):\n    def __init__(self, level):\n"
        "        super().__init__()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "needs arguments" in refusal("--callbacks=needy:Needy")


def test_options_of_a_group_that_is_off_are_named_once_with_their_switch(tmp_path):
    config = parse("--early_stopping_patience=5", "--lambda_callback_on_epoch_end=hooks:f", "--reduce_lr=False",
                   "--reduce_lr_factor=0.5", "--csv_logger", "--csv_logger_separator=;",
                   "--tensorboard_log_dir=runs")  # The root of every run, TensorBoard or not.
    assert list(config.warnings) == [
        "--reduce_lr_factor has no effect: ReduceLROnPlateau is off (enable it with --reduce_lr True)",
        "--early_stopping_patience has no effect: EarlyStopping is off (enable it with --early_stopping True)",
        "--lambda_callback_on_epoch_end has no effect: LambdaCallback is off (enable it with --lambda_callback True)",
    ]
    # A config file may carry settings for groups switched on elsewhere; it is not warned about.
    path = write(tmp_path, "early_stopping_patience: 5\ndataset_image_size: [32, 32]\n")
    assert parse(f"--config={path}").warnings == ()


def test_options_for_another_kind_of_dataset_or_model_are_named_once(tmp_path):
    config = parse("--dataset_image_size=32,32", "--dataset_cache=none", "--dataset_label_column=kind",
                   "--model_safe_mode=False")
    assert list(config.warnings) == [
        "--dataset_label_column has no effect: it applies to --dataset csv:PATH, not digits",
        "--dataset_image_size has no effect: it applies to --dataset images:DIR, not digits",
        "--dataset_cache has no effect: it applies to --dataset images:DIR or csv:PATH, not digits",
        "--model_safe_mode has no effect: it applies to a .keras --model, not mlp",
    ]
    (tmp_path / "pictures" / "cat").mkdir(parents=True)
    assert parse(f"--dataset=images:{tmp_path / 'pictures'}", "--dataset_image_size=32,32",
                 "--dataset_cache=none").warnings == ()
    # Options of a group that is on, for another of its settings.
    assert sorted(parse("--learning_rate_scheduler", "--learning_rate_scheduler_schedule=cosine",
                        "--learning_rate_scheduler_step_size=3", "--model_checkpoint",
                        "--model_checkpoint_initial_value_threshold=0.5", "--distribution_slurm_port=9000").warnings) == [
        "--distribution_slurm_port has no effect: it applies with --distribution_strategy multi_worker_mirrored, "
        "not --distribution_strategy=default",
        "--learning_rate_scheduler_step_size has no effect: it applies to the step schedule, not cosine",
        "--model_checkpoint_initial_value_threshold has no effect: it applies with "
        "--model_checkpoint_save_best_only True, not --model_checkpoint_save_best_only=False",
    ]
    assert parse("--learning_rate_scheduler", "--learning_rate_scheduler_schedule=warmup",
                 "--learning_rate_scheduler_warmup_then=step", "--learning_rate_scheduler_step_size=3").warnings == ()


def test_names_are_taken_in_any_case_and_a_near_miss_gets_a_suggestion(tmp_path):
    assert parse("--optimizer=Adam").optimizer == "adam"
    assert parse("--jit_compile=True").jit_compile == "true"
    assert refusal("--optimizer=adm").endswith("; did you mean adam?")
    # A boolean quoted in YAML is read as the command line reads it, and an unquoted one as the word.
    path = write(tmp_path, 'early_stopping: "True"\njit_compile: false\n')
    assert (parse(f"--config={path}").early_stopping, parse(f"--config={path}").jit_compile) == (True, "false")
    assert parse("--verbose=AUTO").verbose == "auto"


def test_yaml_values_that_cannot_be_flags_are_refused_in_a_short_line_that_keeps_secrets(tmp_path):
    path = write(tmp_path, "learning_rate: 1" + "0" * 400 + "\n")
    assert refusal(f"--config={path}").endswith(": is too large")
    path = write(tmp_path, "? [a, b]\n: 1\n")
    assert refusal(f"--config={path}").endswith("a key must be a flag name, not a list")
    path = write(tmp_path, 'remote_monitor: true\nremote_monitor_headers: {"X": "SECRET123"}\n')
    assert "SECRET123" not in refusal(f"--config={path}") and "remote_monitor_headers=<secret>" in refusal(
        f"--config={path}")
    aliases = ", ".join(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]" for level in range(1, 7))
    path = write(tmp_path, f"epochs: [&l0 [1, 1], {aliases}]\n")  # 9**6 lists if written out in full
    assert len(refusal(f"--config={path}")) < 300


def test_a_results_file_path_is_resolved_as_the_kernel_resolves_it(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "here" / "logs").mkdir(parents=True)
    (tmp_path / "here" / "link").symlink_to(tmp_path / "elsewhere")
    # link/.. is tmp_path, where here/logs exists; read as text it would be here/here/logs, which does not.
    assert parse(f"--results_file={tmp_path / 'here' / 'link' / '..' / 'here' / 'logs' / 'r.jsonl'}").results_file
    assert parse("--results_file=/dev/stdout").results_file == "/dev/stdout"  # A pipe, not /proc/<pid>/fd.
