"""Model hyperparameters: the --mlp_*, --cnn_*, --resnet_* groups, --model_args, and what results.json records."""

import glob
import inspect
import json
import os
import subprocess
import sys

import pytest

from conftest import IMPORT_KERASRUN, REPO, run_train

from kerasrun import models
from kerasrun.cli.config import all_groups, resolve, saved_config
from kerasrun.core.errors import UsageError
from kerasrun.core.heads import Head
from kerasrun.core.options import Ints, KeyValues
from kerasrun.models import cnn, hyperparameters, mlp, model_args, resnet

SWEEP = os.path.join(REPO, "scripts", "sweep.py")
SUMMARIZE = os.path.join(REPO, "scripts", "summarize.py")
DIGITS_SHAPE = (8, 8, 1)
TEN = Head("classification", 10)
BUILDERS = {"mlp": mlp.build_mlp, "cnn": cnn.build_cnn, "resnet": resnet.build_resnet}


# Declarations.

def test_every_built_in_model_has_a_group_whose_options_are_its_builders_keywords_with_the_same_defaults():
    assert set(hyperparameters.BUILT_IN_GROUPS) == set(models.names()) == set(BUILDERS)
    for name, group in hyperparameters.BUILT_IN_GROUPS.items():
        keywords = {parameter.name: parameter.default for parameter in inspect.signature(BUILDERS[name]).parameters.values()
                    if parameter.kind == parameter.KEYWORD_ONLY}
        assert keywords == {arg.name: arg.default for arg in group.args}, name
        assert not group.switchable


def test_the_groups_are_part_of_every_option_source():
    names = {name for group in all_groups() for name, _ in group.options()}
    assert {"mlp_units", "mlp_layers", "mlp_dropout", "mlp_activation", "mlp_normalization", "mlp_l2",
            "cnn_filters", "cnn_kernel_size", "cnn_dropout", "resnet_filters", "resnet_blocks",
            "model_args"} <= names
    config = resolve(["train.py", "--mlp_units", "256", "--mlp_layers", "2", "--mlp_dropout", "0.2"])
    assert models.hparams_of(config, "mlp") == {"units": 256, "layers": 2, "dropout": 0.2, "activation": "relu",
                                                "normalization": "none", "l2": 0.0}
    assert models.hparams_of(config, "MobileNetV2") == {}
    saved = saved_config(config)
    assert saved["mlp_units"] == 256 and saved["cnn_filters"] == [32, 64] and saved["model_args"] == {}


def test_a_config_file_round_trips_lists_and_mappings(tmp_path):
    (tmp_path / "c.yaml").write_text("model: cnn\ncnn_filters: [8, 16, 32]\nmlp_units: 64\n"
                                     "model_args: {}\n")
    config = resolve(["train.py", f"--config={tmp_path / 'c.yaml'}"])
    # A config file may hold another model's options: a run's config.yaml lists every option.
    assert config.cnn_filters == (8, 16, 32) and config.mlp_units == 64


def test_another_models_flag_typed_on_the_command_line_is_refused():
    with pytest.raises(UsageError, match=r"^--mlp_units=64: applies to --model mlp, not --model=cnn$"):
        resolve(["train.py", "--model", "cnn", "--mlp_units", "64"])
    with pytest.raises(UsageError, match=r"^--resnet_blocks=3: applies to --model resnet, not --model=MobileNetV2$"):
        resolve(["train.py", "--model", "MobileNetV2", "--resnet_blocks", "3"])
    resolve(["train.py", "--model", "resnet", "--resnet_blocks", "3"])


def test_ints_kind():
    kind = Ints()
    assert kind.from_text("32,64") == (32, 64) and kind.from_text("8") == (8,)
    assert kind.from_yaml([8, 16]) == (8, 16) and kind.from_yaml(8) == (8,) and kind.from_yaml("4,8") == (4, 8)
    assert kind.format((32, 64)) == "32,64"
    for bad in ("", "32,", "a", "1.5"):
        with pytest.raises(ValueError, match="must be comma-separated integers"):
            kind.from_text(bad)
    for bad in ([], [True], ["a"], 1.5):
        with pytest.raises(ValueError):
            kind.from_yaml(bad)


def test_key_values_kind_reads_literals_and_text_and_never_evaluates_code():
    kind = KeyValues()
    assert kind.from_text("") == {}
    assert kind.from_text("alpha=0.5,shape=(3, 3),pooling=max,name='a,b',flag=True,none=None") == {
        "alpha": 0.5, "shape": [3, 3], "pooling": "max", "name": "a,b", "flag": True, "none": None}
    assert kind.from_text("x=__import__('os').system('true')") == {"x": "__import__('os').system('true')"}
    assert kind.from_yaml({"alpha": 0.5}) == {"alpha": 0.5} and kind.from_yaml(None) == {}
    assert kind.format({"alpha": 0.5, "pooling": "max"}) == "alpha=0.5,pooling='max'"
    assert kind.from_text(kind.format({"alpha": 0.5, "pooling": "max"})) == {"alpha": 0.5, "pooling": "max"}
    with pytest.raises(ValueError, match="a value must be a number, text, .* not a set"):
        kind.from_text("a={1, 2}")
    with pytest.raises(ValueError, match="names 'a' twice"):
        kind.from_text("a=1,a=2")
    with pytest.raises(ValueError, match="is not name=value"):
        kind.from_text("1x=2")
    with pytest.raises(ValueError, match="must be a mapping"):
        kind.from_yaml({1: 2})


# --model_args checked against the function's source.

def test_application_parameters_read_from_keras_source_match_the_real_signatures():
    import keras

    for name in models.application_names():
        read = model_args.application_parameters(name)
        assert read is not None, name
        assert read.names == tuple(inspect.signature(getattr(keras.applications, name)).parameters), name


def test_model_args_of_a_plug_in_are_checked_against_its_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(
        "raise RuntimeError('never imported by the check')\n\n"
        "def net(input_shape, num_classes, width=8, *, depth=1):\n    pass\n\n"
        "def anything(input_shape, num_classes, **kwargs):\n    pass\n")
    models.check_model_args("nets.py:net", {"width": 3, "depth": 2})
    models.check_model_args("nets:net", {"width": 3})
    models.check_model_args("nets.py:anything", {"whatever": 1})
    with pytest.raises(UsageError, match=r"^--model_args=widht=3: --model=nets.py:net takes no argument 'widht'; "
                                         r"it takes width, depth$"):
        models.check_model_args("nets.py:net", {"widht": 3})
    with pytest.raises(UsageError, match="'num_classes' is set by the runner"):
        models.check_model_args("nets.py:anything", {"num_classes": 3})


def test_model_args_are_checked_before_tensorflow_is_imported():
    code = (f"{IMPORT_KERASRUN}\nimport sys\nfrom kerasrun.cli.config import resolve\n"
            "from kerasrun.core.errors import UsageError\n"
            "resolve(['train.py', '--model', 'MobileNetV2', '--model_args', 'alpha=0.5', '--dry_run'])\n"
            "try:\n    resolve(['train.py', '--model', 'EfficientNetB0', '--model_args', 'alpha=0.5'])\n"
            "except UsageError as error:\n    print(error)\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    message, imported = result.stdout.splitlines()
    assert message.startswith("--model_args=alpha=0.5: --model=EfficientNetB0 takes no argument 'alpha'; it takes ")
    assert imported == "False False"


# The builders.

def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_the_defaults_build_the_models_the_runner_always_built():
    # The parameter counts and layers of the models before they had hyperparameters.
    built = {name: models.build(name, input_shape=DIGITS_SHAPE, head=TEN) for name in BUILDERS}
    assert {name: model.count_params() for name, model in built.items()} == {
        "mlp": 9610, "cnn": 21386, "resnet": 176090}
    assert layer_types(built["mlp"]) == ["InputLayer", "Flatten", "Dense", "Dropout", "Dense"]
    assert layer_types(built["cnn"]) == ["InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                         "Flatten", "Dropout", "Dense"]
    assert layer_types(built["resnet"]).count("BatchNormalization") == 15


def test_the_hyperparameters_shape_the_models():
    model = models.build("mlp", input_shape=DIGITS_SHAPE, head=TEN, hparams={
        "units": 16, "layers": 3, "dropout": 0.0, "activation": "gelu", "normalization": "layer", "l2": 0.01})
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [layer.units for layer in dense] == [16, 16, 16, 10]
    assert layer_types(model).count("LayerNormalization") == 3 and "Dropout" not in layer_types(model)
    assert layer_types(model).count("Activation") == 3
    assert dense[0].kernel_regularizer is not None and dense[-1].kernel_regularizer is None

    model = models.build("cnn", input_shape=DIGITS_SHAPE, head=TEN, hparams={
        "filters": (4, 8, 16), "kernel_size": 5, "dropout": 0.5, "activation": "relu", "normalization": "batch",
        "l2": 0.0})
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(layer.filters, layer.kernel_size) for layer in convolutions] == [(4, (5, 5)), (8, (5, 5)), (16, (5, 5))]
    assert layer_types(model).count("BatchNormalization") == 3

    model = models.build("resnet", input_shape=DIGITS_SHAPE, head=TEN, hparams={
        "filters": (8, 16), "blocks": 1, "dropout": 0.2, "activation": "relu", "normalization": "none", "l2": 0.0})
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    # The stem, then per block two convolutions, and a projection where the width changes.
    assert [layer.filters for layer in convolutions] == [8, 8, 8, 16, 16, 16]
    assert all(layer.use_bias for layer in convolutions) and "BatchNormalization" not in layer_types(model)
    assert "Dropout" in layer_types(model)


def test_activations_are_keras_names():
    import keras

    for name in hyperparameters.ACTIVATIONS:
        assert callable(keras.activations.get(name)), name


def test_model_args_reach_an_application():
    model = models.build("MobileNetV2", input_shape=(32, 32, 3), head=TEN, model_args={"alpha": 0.35})
    thin = model.count_params()
    assert thin < models.build("MobileNetV2", input_shape=(32, 32, 3), head=TEN).count_params()
    pooled = models.build("MobileNetV2", input_shape=(32, 32, 3), head=TEN, model_args={"pooling": "max"})
    assert "GlobalMaxPooling2D" in layer_types(pooled.layers[1])
    models.check_model_args("MobileNetV2", {"pooling": "max"})
    with pytest.raises(UsageError, match=r"^--model_args=pooling='median': pooling must be avg or max"):
        models.check_model_args("MobileNetV2", {"pooling": "median"})


# End to end.

def results_of(directory):
    return [json.loads(open(path).read()) for path in sorted(glob.glob(str(directory / "tensorboard_logs/*/results.json")))]


def test_a_sweep_over_mlp_units_trains_models_of_that_width_and_summarize_shows_their_size(tmp_path):
    result = subprocess.run(
        [sys.executable, SWEEP, "--grid", "mlp_units=16,256", "--",
         "--epochs", "1", "--verbose", "0", "--mlp_dropout", "0.2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    records = {record["hparams"]["mlp_units"]: record for record in results_of(tmp_path)}
    # Flatten(64) -> Dense(units) -> Dense(10): 64*u + u + 10*u + 10.
    assert {units: (record["model"], record["trainable_parameters"]) for units, record in records.items()} == {
        16: ("mlp", 1210), 256: ("mlp", 19210)}
    assert all(record["hparams"]["mlp_dropout"] == 0.2 for record in records.values())
    import keras

    for units, record in records.items():
        saved = keras.saving.load_model(os.path.join(tmp_path, record["run_dir"], "model.keras"))
        assert [layer.units for layer in saved.layers if isinstance(layer, keras.layers.Dense)] == [units, 10]
        assert [layer.rate for layer in saved.layers if isinstance(layer, keras.layers.Dropout)] == [0.2]
    # TensorBoard's HParams tab: the run's hparams summary holds the flag.
    from tensorboard.backend.event_processing import event_accumulator

    run_dir = os.path.join(tmp_path, records[16]["run_dir"])
    accumulator = event_accumulator.EventAccumulator(run_dir)
    accumulator.Reload()
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["mlp_units"].number_value == 16

    summary = subprocess.run([sys.executable, SUMMARIZE, "sweep.jsonl"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    header = summary.stdout.splitlines()[1].split()
    assert header[-2:] == ["mlp_units", "trainable_parameters"]


def test_cnn_filters_and_model_args_for_a_plug_in_reach_the_builders(tmp_path):
    (tmp_path / "nets.py").write_text(
        "import keras\n\n"
        "def net(input_shape, num_classes, width=8):\n"
        "    open('width.txt', 'w').write(str(width))\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),\n"
        "                             keras.layers.Dense(width, activation='relu'),\n"
        "                             keras.layers.Dense(num_classes, activation='softmax')])\n")
    plugin = run_train(["--model", "nets.py:net", "--model_args", "width=24", "--epochs", "1", "--verbose", "0",
                        "--run_name", "plugin"], cwd=tmp_path)
    assert plugin.returncode == 0, plugin.stderr
    assert (tmp_path / "width.txt").read_text() == "24"
    conv = run_train(["--model", "cnn", "--cnn_filters", "4,8", "--cnn_dropout", "0", "--epochs", "1",
                      "--verbose", "0", "--run_name", "conv"], cwd=tmp_path)
    assert conv.returncode == 0, conv.stderr
    records = {record["run_name"]: record for record in results_of(tmp_path)}
    assert records["plugin"]["model"] == "nets.py:net"
    assert records["plugin"]["trainable_parameters"] == 64 * 24 + 24 + 24 * 10 + 10
    assert records["plugin"]["hparams"]["model_args"] == {"width": 24}
    # Conv2D(4, 3x3 on 1 channel), Conv2D(8, 3x3 on 4), then 2x2x8 flattened into Dense(10).
    assert records["conv"]["model"] == "cnn"
    assert records["conv"]["trainable_parameters"] == (9 * 4 + 4) + (36 * 8 + 8) + (32 * 10 + 10)
    assert records["conv"]["hparams"]["cnn_filters"] == [4, 8]


def test_dry_run_shows_the_model_with_its_hyperparameters(tmp_path):
    result = run_train(["--dry_run", "--model", "cnn", "--cnn_filters", "8,16", "--cnn_l2", "1e-4"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("#   cnn(filters=(8, 16), kernel_size=3, dropout=0.25, activation='relu', normalization='none', "
            "l2=0.0001), ending in the task's output layer") in result.stdout.splitlines()
    assert "cnn_filters:\n- 8\n- 16\n" in result.stdout
    assert os.listdir(tmp_path) == []


def test_a_sweep_grids_list_values_and_model_args_and_checks_them_before_any_run(tmp_path):
    (tmp_path / "nets.py").write_text("def net(input_shape, num_classes, width=8):\n    pass\n")

    def sweep(*args):
        return subprocess.run([sys.executable, SWEEP, "--dry_run", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    result = sweep("--grid", r"cnn_filters=8\,16,16\,32", "--", "--model", "cnn")
    assert result.returncode == 0, result.stderr
    assert [line.split()[2:4] for line in result.stdout.splitlines()] == [
        ["--model", "cnn"], ["--model", "cnn"]]
    assert ["--cnn_filters=8,16" in result.stdout, "--cnn_filters=16,32" in result.stdout] == [True, True]
    result = sweep("--grid", "model_args=width=8,width=16", "--", "--model", "nets.py:net")
    assert result.returncode == 0, result.stderr
    assert "--model_args=width=16" in result.stdout
    result = sweep("--grid", "model_args=width=8,widht=16", "--", "--model", "nets.py:net")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("sweep.py: error: run 1 (model_args=widht=16): --model_args=widht=16: "
                                              "--model=nets.py:net takes no argument 'widht'; it takes width")
    result = sweep("--grid", "mlp_units=8,16", "--", "--model", "cnn")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("sweep.py: error: run 0 (mlp_units=8): --mlp_units=8: applies to "
                                              "--model mlp, not --model=cnn")
    assert sorted(os.listdir(tmp_path)) == ["nets.py"]


def test_a_builder_the_source_check_cannot_find_is_checked_before_it_is_called(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "impl.py").write_text("def net(input_shape, num_classes, width=8):\n    raise AssertionError\n")
    (tmp_path / "api.py").write_text("from impl import net\n")
    models.check_model_args("api:net", {"widht": 3})  # Not defined in api.py: the run checks it.
    with pytest.raises(UsageError, match=r"^--model_args=widht=3: --model='api:net' does not take them "
                                         r"\(got an unexpected keyword argument 'widht'\)"):
        models.build("api:net", input_shape=(4,), head=Head("classification", 2), model_args={"widht": 3})
