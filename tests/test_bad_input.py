"""Every mistake a user can type: exit 2, one line naming the flag or key, no traceback, nothing written.

Run as a user runs train.py, one process per mistake; all but the last few are
refused before TensorFlow is imported.
"""

import os

import numpy as np
import pytest

from test_train import own_lines

PLUGIN = "PLUGIN_TEXT = 'a string'\n\ndef load():\n    return ([[0.0]], [0]), None\n"

FILES = {
    "lengths.npz": None,  # written below
    "table.csv": "a,b,label\n1,2,0\n3,4,1\n",
    "values.csv": "a,label\n" + "".join(f"{i},{i * 0.37:.2f}\n" for i in range(1, 9)),
    "list.yaml": "- epochs\n- 3\n",
    "broken.yaml": "epochs: [3\n",
    "typed.yaml": "batch_size: large\n",
    "unknown.yaml": "epoch: 3\n",
    "weights.yaml": "class_weight: 1:5\n",
    "evil.yaml": "!!python/object/apply:os.system ['touch pwned']\n",
    "plug.py": PLUGIN,
    "plugins.yaml": "model: plug:PLUGIN_TEXT\n",
    "flags.txt": "--early_stopping=Flase\n",
    "flags_ok.txt": "--epochs=2\n",
    "import_fails.py": "import os\n\nraise RuntimeError('no GPU config')\n",
    "saved.keras": "a model, as far as validation can tell",
    "widths.py": "import keras\n\ndef wide(input_shape, num_classes):\n"
                 "    return keras.Sequential([keras.layers.Dense(num_classes + 5)])\n",
    "here/notes.txt": "the backup directory must not hold this",
    "nothing/cat/notes.txt": "not an image",
    "pictures/cat/broken.png": "not a png",
    "model_args.yaml": "model: MobileNetV2\nmodel_args: [alpha, 0.5]\n",
}

MISTAKES = [
    # Types and ranges.
    (["--epochs=0"], "--epochs=0: must be at least 1"),
    (["--model_checkpoint", "--model_checkpoint_monitor=val_acc"],
     "--model_checkpoint_monitor=val_acc: 'val_acc' will never be logged"),
    (["--epochs=ten"], "--epochs=ten: must be an integer"),
    (["--metrics=accuracy,mse,accuracy"], "--metrics=accuracy,mse,accuracy: names 'accuracy' twice"),
    (["--batch_size=99999999999999999999"], "--batch_size=99999999999999999999: must be at most 4,294,967,295 in size"),
    (["--run_name=a\nb"], "--run_name='a\\nb': must be a plain directory name (no line breaks"),
    (["--results_file=" + "r" * 300], "... (300 characters): holds a name of 300 bytes; file systems allow 255"),
    (["--batch_size=-4"], "--batch_size=-4: must be at least 1"),
    (["--learning_rate=0"], "--learning_rate=0.0: must be greater than 0"),
    (["--learning_rate=fast"], "--learning_rate=fast: must be a number"),
    (["--validation_split=1.5"], "--validation_split=1.5: must be at least 0 and below 1"),
    (["--validation_split=-0.1"], "--validation_split=-0.1: must be at least 0 and below 1"),
    (["--reduce_lr", "--reduce_lr_factor=1"], "--reduce_lr_factor=1.0: must be above 0 and below 1.0"),
    (["--seed=-1"], "--seed=-1: must be at least 0"),
    (["--inter_op_threads=-2"], "--inter_op_threads=-2: must be 0 (TensorFlow's choice: one per core) or more"),
    (["--verbose=5"], "--verbose=5: must be 0 (silent)"),
    (["--mlflow", "--mlflow_tracking_uri=localhost:5000"],
     "--mlflow_tracking_uri=localhost:5000: is neither a URL (scheme://...) nor a directory"),
    (["--mlflow", "--mlflow_tags=team:vision"], "--mlflow_tags=team:vision: item 1 ('team:vision') must look like key=value"),
    (["--mlflow", "--mlflow_tracking_uri=https://me:hunter2@mlflow.example.org"],
     "--mlflow_tracking_uri: holds a password"),
    (["--mlflow", "--mlflow_tags=mlflow.runName=mine"], "--mlflow_tags=mlflow.runName=mine: tag key 'mlflow.runName': "
                                                         "keys starting with mlflow. or kerasrun. are set by MLflow"),
    (["--mlflow", "--mlflow_log_models", "--mlflow_registered_model_name=team/model"],
     "--mlflow_registered_model_name=team/model: must be a name without / or :"),
    # Enums and names.
    (["--optimizer=adamax2"], "--optimizer=adamax2: must be one of"),
    (["--reduce_lr", "--reduce_lr_monitor=learning_rate"],
     "--reduce_lr_mode=auto: Keras cannot tell whether 'learning_rate' should fall or rise; set min or max"),
    (["--optimizer=adm"], "--optimizer=adm: must be one of adadelta, "),  # ends "; did you mean adam?"
    (["--run_name=   "], "must not be blank, nor start or end with spaces"),
    (["--jit_compile=true", "--deterministic=True"], "--jit_compile=true: Keras turns XLA off under --deterministic"),
    (["--early_stopping", "--early_stopping_mode=best"], "--early_stopping_mode=best: must be one of auto, min, max"),
    (["--model=transformer"], "--model='transformer': unknown model"),
    (["--dataset=imagenet"], "--dataset='imagenet': unknown dataset"),
    (["--loss=crossentropy"], "--loss=crossentropy: unknown loss"),
    (["--metrics=accuracy,f1"], "unknown metric 'f1' (did you mean f1_score?)"),
    (["--loss=msee"], "--loss=msee: unknown loss 'msee' (did you mean mse?); known: bce,"),
    (["--loss=huber:delta=big"], "--loss=huber:delta=big: delta must be a number, not 'big'"),
    (["--metrics=top_k:0"], "--metrics=top_k:0: k must be at least 1"),
    (["--metrics=auc:curve=XY"], "--metrics=auc:curve=XY: curve must be one of ROC, PR, not 'XY'"),
    (["--metrics=auc:colour=red"], "--metrics=auc:colour=red: auc has no argument 'colour'; it takes auc:VALUE"),
    (["--metrics=mse:3"], "--metrics=mse:3: mean_squared_error takes no arguments"),
    (["--metrics=precision_at_recall"], "precision_at_recall needs recall, as precision_at_recall:recall=VALUE"),
    (["--metrics=auc,auc:curve=PR"], "--metrics=auc,auc:curve=PR: logs 'auc' twice"),
    (["--metrics=no_such_module:f"], "--metrics=no_such_module:f: no module named 'no_such_module'"),
    (["--loss=missing.py:my_loss"], "--loss=missing.py:my_loss: file 'missing.py' does not exist"),
    (["--loss=mse", "--label_smoothing=0.1"], "--label_smoothing=0.1: applies to the cross-entropy losses, not --loss mse"),
    (["--label_smoothing=1"], "--label_smoothing=1.0: must be at least 0 and below 1"),
    (["--metrics=accuracy", "--early_stopping", "--early_stopping_monitor=val_auc"],
     "--early_stopping_monitor=val_auc: 'val_auc' will never be logged; logged: accuracy, loss, val_accuracy, val_loss"),
    (["--dataset=csv:table.csv", "--early_stopping", "--early_stopping_monitor=f1_score"],  # No task's auto logs it.
     "--early_stopping_monitor=f1_score: 'f1_score' will never be logged; logged, depending on the task"),
    (["--learning_rate_scheduler", "--learning_rate_scheduler_schedule=linear"], "--learning_rate_scheduler_schedule=linear"),
    # Unknown flags and stray words.
    (["--epoch=3"], "--epoch=3: unknown flag (did you mean --epochs?)"),
    (["--early_stopping", "True", "please"], "unexpected argument 'please'"),
    (["--tensorboard", "Ture"], "--tensorboard=Ture: must be true or false"),
    # Paths that cannot be written, found before training.
    (["--tensorboard_log_dir=table.csv/logs"], "--tensorboard_log_dir=table.csv/logs: cannot be made: "),
    (["--model_checkpoint", "--model_checkpoint_filepath=table.csv/ck.keras"],
     "--model_checkpoint_filepath=table.csv/ck.keras: its directory table.csv is a file, not a directory"),
    (["--backup_and_restore", "--backup_and_restore_backup_dir=table.csv/b"],
     "--backup_and_restore_backup_dir=table.csv/b: cannot be made: "),
    (["--results_file=table.csv/r.jsonl"], "table.csv is a file, not a directory"),
    # Missing files and plug-ins.
    (["--dataset=npz:missing.npz"], "file 'missing.npz' does not exist"),
    (["--model=missing.keras"], "missing.keras"),
    (["--config=missing.yaml"], "--config=missing.yaml: cannot read the file"),
    (["--dataset=no_such_module:load"], "no module named 'no_such_module'"),
    (["--dataset=plug:nothing"], "has no attribute 'nothing'"),
    (["--lambda_callback", "--lambda_callback_on_epoch_end=plug:nothing"], "has no attribute 'nothing'"),
    (["--callbacks=plug:load"], "is not a class"),
    (["--callbacks=import_fails:Cb"],
     "--callbacks='import_fails:Cb': importing 'import_fails' failed: RuntimeError: no GPU config "
     "(at import_fails.py:3)"),
    (["--flagfile=flags.txt"], "--early_stopping=Flase: must be true or false, not 'Flase'"),
    (["z" * 5000], "unexpected argument 'zzzzzzzzzzzz...zzzzzzzzzzzzz': flags are written --name=value"),
    (["--" + "z" * 5000], "... (5002 characters): unknown flag"),
    (["--learning_rate_scheduler", "--reduce_lr"],
     "--learning_rate_scheduler_schedule=constant: sets the learning rate at the start of every epoch, undoing"),
    (["--lambda_callback", "--lambda_callback_on_epoch_end=plug:load"],
     "--lambda_callback_on_epoch_end='plug:load': is called as f(epoch, logs), but its signature is ()"),
    (["--learning_rate_scheduler", "--learning_rate_scheduler_schedule=plug:load"],
     "--learning_rate_scheduler_schedule='plug:load': is called as f(epoch, lr) or f(epoch), but its signature is ()"),
    # --dry_run imports the dataset and model plug-ins a run would call, and checks what they name.
    (["--dry_run", "--model=plug:nothing"], "--model='plug:nothing': 'plug' has no attribute 'nothing'"),
    (["--dry_run", "--model=plug:load"], "--model='plug:load': the function must accept the keyword arguments"),
    (["--dry_run", "--dataset=plug:nothing"], "--dataset='plug:nothing': 'plug' has no attribute 'nothing'"),
    (["--dry_run", "--metrics=auto,plug:nothing"], "--metrics='plug:nothing': 'plug' has no attribute 'nothing'"),
    (["--dry_run", "--loss=plug:PLUGIN_TEXT"], "--loss='plug:PLUGIN_TEXT': names a str, not a function or class"),
    (["--dry_run", "--config=plugins.yaml"], "plugins.yaml: model='plug:PLUGIN_TEXT': names a str, not a function"),
    # Optimizer options and class weights.
    (["--optimizer=adam", "--optimizer_momentum=0.9"],
     "--optimizer_momentum=0.9: adam does not take momentum; optimizers that do: muon, rmsprop, sgd"),
    (["--optimizer_clipnorm=1", "--optimizer_clipvalue=0.5"],
     "--optimizer_clipvalue=0.5: Keras clips gradients one way at a time"),
    (["--optimizer_beta_2=1"], "--optimizer_beta_2=1.0: must be at least 0 and below 1"),
    (["--class_weight=0:1,1"], "--class_weight=0:1,1: must be balanced, none, or class ids with their weights"),
    (["--class_weight=balanced", "--task=regression"], "--class_weight=balanced: the task is regression"),
    (["--config=weights.yaml"], "weights.yaml: class_weight=65: must be text: quote it"),
    # YAML.
    (["--config=list.yaml"], "list.yaml: must be a mapping of flag names to values"),
    (["--config=broken.yaml"], "broken.yaml: not valid YAML at line"),
    (["--config=typed.yaml"], "typed.yaml: batch_size='large': must be an integer"),
    (["--config=unknown.yaml"], "unknown.yaml: unknown key 'epoch' (did you mean epochs?)"),
    (["--config=evil.yaml"], "evil.yaml: not valid YAML"),
    # Monitors, checkpoints, data.
    (["--early_stopping", "--early_stopping_monitor=val_f1"], "'val_f1' will never be logged"),
    (["--dataset=csv:table.csv", "--reduce_lr"], "no validation data"),
    (["--model_checkpoint", "--model_checkpoint_filepath=best.hdf5"], "must end in .keras or .h5"),
    (["--model_checkpoint", "--model_checkpoint_save_weights_only", "--model_checkpoint_filepath=w.keras"],
     "must end in .weights.h5"),
    (["--dataset=npz:lengths.npz"], "lengths.npz"),
    # Found from the CSV's header and the archive's directory, before TensorFlow loads (and by --dry_run).
    (["--dry_run", "--dataset=csv:table.csv", "--dataset_label_column=kind"],
     "--dataset='csv:table.csv': no column 'kind' (columns: a, b, label); name the label column with"),
    (["--dry_run", "--dataset=npz:table.csv"], "--dataset='npz:table.csv': the file is not an .npz archive"),
    (["--dataset=images:pictures", "--dataset_cache=fast"], "--dataset_cache=fast: must be one of auto, memory, none"),
    (["--dataset=images:pictures", "--dataset_color_mode=cmyk"],
     "--dataset_color_mode=cmyk: must be one of grayscale, rgb, rgba"),
    (["--tensorboard_log_dir=/proc/runs"], "--tensorboard_log_dir=/proc/runs: cannot be written"),
    # No output overwrites an input or another output, and Keras's emptying of the backup directory loses nothing.
    (["--csv_logger", "--csv_logger_filename=table.csv", "--dataset=csv:table.csv"],
     "--csv_logger_filename=table.csv: is the file --dataset reads; it would be overwritten"),
    (["--csv_logger", "--csv_logger_filename=out.jsonl", "--results_file=./out.jsonl"],
     "--csv_logger_filename=out.jsonl: is the file --results_file writes too; choose another"),
    (["--model_checkpoint", "--model_checkpoint_filepath=saved.keras", "--model=saved.keras"],
     "--model_checkpoint_filepath=saved.keras: is the file --model reads; it would be overwritten"),
    (["--backup_and_restore", "--backup_and_restore_backup_dir=."],
     "--backup_and_restore_backup_dir=.: holds the run directories (tensorboard_logs); Keras empties"),
    (["--backup_and_restore", "--backup_and_restore_backup_dir=tensorboard_logs/mine/checkpoints", "--run_name=mine",
      "--model_checkpoint"], "is inside tensorboard_logs, where runs write; leave it out"),
    # Hard links, the user's own code, a flag file, and a checkpoint template that may become an input's name.
    (["--csv_logger", "--csv_logger_filename=hard.csv", "--dataset=csv:table.csv"],
     "--csv_logger_filename=hard.csv: is the file --dataset reads; it would be overwritten"),
    (["--csv_logger", "--csv_logger_filename=plug.py", "--dataset=plug:load"],
     "--csv_logger_filename=plug.py: is the file --dataset reads; it would be overwritten"),
    (["--flagfile=flags_ok.txt", "--results_file=flags_ok.txt"],
     "--results_file=flags_ok.txt: is the file --flagfile reads; it would be overwritten"),
    (["--model=saved.keras", "--model_checkpoint", "--model_checkpoint_filepath=sav{epoch}.keras"],
     "--model_checkpoint_filepath=sav{epoch}.keras: is the file --model reads; it would be overwritten"),
    (["--backup_and_restore", "--backup_and_restore_backup_dir=pictures", "--dataset=images:pictures/"],
     "--backup_and_restore_backup_dir=pictures: holds pictures/ (--dataset); Keras empties"),
    (["--backup_and_restore", "--backup_and_restore_backup_dir=here", "--csv_logger",
      "--csv_logger_filename=here/log.csv"], "holds here/log.csv (--csv_logger_filename); Keras empties"),
    (["--run_name=../escape"], "--run_name=../escape: must be a plain directory name"),
    # Distribution.
    (["--distribution_strategy=horovod"], "--distribution_strategy=horovod: must be one of default,"),
    (["--distribution_strategy=mirrored", "--distribution_devices=TPU:0"], "'TPU:0' is not a device name"),
    (["--distribution_devices=GPU:0"], "--distribution_devices=GPU:0: applies to one_device and mirrored"),
    (["--distribution_strategy=one_device", "--distribution_devices=CPU:0,CPU:1"], "one_device takes one device"),
    (["--distribution_strategy=multi_worker_mirrored"], "multi_worker_mirrored needs a cluster: set TF_CONFIG"),
    (["--distribution_slurm_port=70000"], "--distribution_slurm_port=70000: must be a port number"),
    # Model hyperparameters and --model_args, checked against the builder's source without importing it.
    (["--mlp_units=0"], "--mlp_units=0: must be at least 1"),
    (["--mlp_dropout=1"], "--mlp_dropout=1.0: must be at least 0 and below 1"),
    (["--cnn_filters=32,x"], "--cnn_filters=32,x: must be comma-separated integers"),
    (["--resnet_activation=rellu"], "--resnet_activation=rellu: must be one of relu, "),
    (["--mlp_units=64", "--model=cnn"], "--mlp_units=64: applies to --model mlp, not --model=cnn"),
    (["--model_args=alpha=0.5"], "--model_args=alpha=0.5: --model=mlp takes its own flags (--mlp_*"),
    (["--model=MobileNetV2", "--model_args=alpha=0.5,depth=3"],
     "--model_args=alpha=0.5,depth=3: --model=MobileNetV2 takes no argument 'depth'; it takes alpha, pooling, name"),
    (["--model=MobileNetV2", "--model_args=weights=None"], "'weights' is set by the runner; use --model_weights"),
    (["--model=plug:load", "--model_args=width=3"], "--model=plug:load takes no argument 'width'"),
    (["--model_args=width"], "--model_args=width: 'width' is not name=value"),
    (["--config=model_args.yaml"], "model_args.yaml: model_args=['alpha', 0.5]: must be a mapping of argument names"),
    # After TensorFlow loads, still before anything is written.
    (["--dataset=csv:table.csv", "--model=cnn"], "--model=cnn needs image input"),
    (["--model=widths:wide"], "--model='widths:wide': the model predicts 15 classes but the dataset has 10"),
    # --metrics auto compiles the task's metrics: a monitor of them is checked once the labels decide the task.
    (["--early_stopping", "--early_stopping_monitor=val_auc"],
     "--early_stopping_monitor=val_auc: 'val_auc' will never be logged; logged: accuracy, loss, val_accuracy, val_loss"),
    (["--dataset=csv:values.csv", "--label_smoothing=0.1"],
     "--label_smoothing=0.1: applies to the cross-entropy losses, but the task is regression"),
    (["--distribution_strategy=mirrored", "--distribution_devices=GPU:99"], "--distribution_devices=GPU:99: this machine has"),
    (["--distribution_strategy=tpu"], "--distribution_strategy=tpu: no TPU found"),
    (["--dataset=images:nothing"], "--dataset='images:nothing': no images (.bmp, .gif, .jpeg, .jpg, .png) in"),
    (["--dataset=images:pictures"],
     "--dataset='images:pictures': cannot decode pictures/cat/broken.png: it is not a JPEG, PNG, GIF or BMP image"),
    (["--dry_run", "--dataset=images:pictures"],  # --dry_run indexes the folder as the run would.
     "--dataset='images:pictures': cannot decode pictures/cat/broken.png: it is not a JPEG, PNG, GIF or BMP image"),
    (["--dataset=images:pictures", "--dataset_cache=none"],  # Found before training, even when streamed.
     "--dataset='images:pictures': cannot decode pictures/cat/broken.png: it is not a JPEG, PNG, GIF or BMP image"),
]
# On JAX (each with --backend=jax): the mistakes found once Keras has loaded whose finding involves the backend (a
# model built on it, its devices, its metrics' names), and what cannot work there (cli/backend.py). The others
# are found before Keras loads, or in the data alone, the same on either backend (each of these costs a process
# that imports TensorFlow and JAX, about 5 s).
_ON_JAX = {
    "--model=widths:wide": "--model='widths:wide': the model predicts 15 classes but the dataset has 10",
    "--distribution_devices=GPU:99": "--distribution_devices=GPU:99: JAX sees no GPU device",
    "--early_stopping_monitor=val_auc": "--early_stopping_monitor=val_auc: 'val_auc' will never be logged; logged: "
                                        "accuracy, loss, val_accuracy, val_loss",
    "--distribution_strategy=tpu": "--distribution_strategy=tpu: tpu does not run on --backend jax: use --backend tensorflow",
}
JAX_MISTAKES = [(args, _ON_JAX[args[-1]]) for args, _ in MISTAKES if args and args[-1] in _ON_JAX] + [
    # What cannot work on JAX, refused before anything runs, naming what to use instead.
    (["--tensorboard", "--tensorboard_profile_batch=2"],
     "--tensorboard_profile_batch=2: Keras profiles training on --backend jax only on Python 3.12 or later"),
    (["--export=litert"], "--export=litert: litert needs the model on TensorFlow"),
    (["--export=onnx"], "--export=onnx: "),  # Its packages' absence, or jax2onnx: either way refused.
    (["--distribution_strategy=one_device"], "--distribution_strategy=one_device: one_device does not run on"),
    (["--intra_op_threads=1"], "--intra_op_threads=1: sets TensorFlow's thread pools, and on --backend jax"),
    (["--dataset=csv:table.csv", "--dataset_categorical_columns=a"],
     "--dataset_categorical_columns=a: a table's category columns"),
    (["--dataset=csv:words.csv"], "--backend=jax: columns city: a table's category columns"),
    (["--distribution_strategy=mirrored", "--distribution_devices=CPU:1"],
     "--distribution_devices=CPU:1: JAX sees 1 CPU device"),
]
FILES["words.csv"] = "city,label\n" + "paris,0\nlyon,1\n" * 4


@pytest.fixture
def workdir(tmp_path):
    for name, text in FILES.items():
        if text is not None:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
    np.savez(tmp_path / "lengths.npz", x_train=np.zeros((10, 3)), y_train=np.zeros(9))
    os.link(tmp_path / "table.csv", tmp_path / "hard.csv")
    return tmp_path


def test_there_are_at_least_thirty_mistakes():
    assert len(MISTAKES) >= 30


@pytest.mark.parametrize("args, expected", MISTAKES, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_a_mistake_is_refused_in_one_line(train, workdir, args, expected):
    before = sorted(os.listdir(workdir))
    result = train(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = own_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(workdir)) == before  # nothing created, and the YAML payload never ran


@pytest.mark.parametrize("args, expected", JAX_MISTAKES, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_on_jax_a_mistake_is_refused_in_one_line(train, workdir, args, expected):
    test_a_mistake_is_refused_in_one_line(train, workdir, ["--backend=jax", *args], expected)


@pytest.mark.parametrize("value, expected", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}', '"task"'),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "task index 3"),
    ('{"cluster": {"worker": ["localhost:1"], "ps": ["localhost:2"]}, "task": {"type": "ps", "index": 0}}',
     'task type "ps" takes no part in multi_worker_mirrored'),
])
def test_a_malformed_tf_config_is_refused(train, workdir, value, expected):
    result = train("--epochs=1", "--distribution_strategy=multi_worker_mirrored", env={"TF_CONFIG": value})
    assert result.returncode == 2
    (line,) = own_lines(result.stderr)
    assert expected in line
    assert "tensorboard_logs" not in os.listdir(workdir)


@pytest.mark.parametrize("data, expected", [
    ("(np.random.rand(20, 3), np.zeros(20))", "every label is 0, so a model has nothing to learn"),
    ("(np.random.rand(1, 3), np.array([1]))", "holds 1 training example(s); training needs at least two"),
])
def test_data_a_run_cannot_learn_from_is_refused_before_anything_is_written(train, workdir, data, expected):
    (workdir / "tiny.py").write_text(f"import numpy as np\n\ndef load():\n    return {data}, None\n")
    result = train("--dataset=tiny:load", "--epochs=1")
    assert result.returncode == 2
    (line,) = own_lines(result.stderr)
    assert line.startswith(f"train.py: error: --dataset='tiny:load': {expected}"), line
    assert not (workdir / "tensorboard_logs").exists()
