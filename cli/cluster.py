"""Checks the choice of tf.distribute strategy and the cluster it is told of (TF_CONFIG, Slurm)."""

import json
import os
import sys

from kerasrun.core.errors import UsageError
from kerasrun.keras_fixes import ONE_STEP_PER_CALL, ONE_STEP_STRATEGIES

# Slurm sets this in every task of a job step that srun starts.
SLURM_RANK = "SLURM_PROCID"


def check_distribution(checker, environ=os.environ):
    """Checks --distribution_* against each other and against TF_CONFIG and Slurm's variables.

    Args:
        checker: The config's Checker.
        environ: The environment to read TF_CONFIG and Slurm's variables from.

    Raises:
        UsageError: naming the flag, or TF_CONFIG, and what is wrong.
    """
    values = checker.values
    strategy, devices = values["distribution_strategy"], values["distribution_devices"]
    tf_config = check_tf_config(environ.get("TF_CONFIG"))
    if devices and strategy not in ("one_device", "mirrored"):
        checker.fail("distribution_devices", f"applies to one_device and mirrored, not to {strategy}")
    if strategy == "one_device" and len(devices) > 1:
        checker.fail("distribution_devices", "one_device takes one device")
    if (values["backend"] == "tensorflow" and strategy in ONE_STEP_STRATEGIES
            and values["steps_per_execution"] not in ("auto", 1)):
        checker.fail("steps_per_execution", f"must be 1 or auto with {strategy} on TensorFlow: {ONE_STEP_PER_CALL}")
    if strategy == "multi_worker_mirrored":
        if tf_config is None and SLURM_RANK not in environ:
            checker.fail("distribution_strategy",
                         "multi_worker_mirrored needs a cluster: set TF_CONFIG on every worker, "
                         "or start the workers with Slurm's srun")
        if tf_config is not None:
            task_type = tf_config["task"]["type"]
            if task_type not in ("chief", "worker"):
                raise UsageError(f'TF_CONFIG: task type "{task_type}" takes no part in '
                                 "multi_worker_mirrored training; only chief and worker tasks do")
    elif tf_config is not None and strategy == "default":
        print("train.py: TF_CONFIG is set but --distribution_strategy is default: "
              "training on this machine alone", file=sys.stderr)


def check_tf_config(text):
    """Checks a TF_CONFIG value: JSON with a cluster of host:port lists and this process's task.

    Args:
        text: The value of TF_CONFIG, or None when it is not set.

    Returns:
        The parsed value, or None when it is not set.

    Raises:
        UsageError: naming TF_CONFIG and what is wrong with it.
    """
    if text is None:
        return None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise UsageError('TF_CONFIG needs "cluster": {"worker": ["host:port", ...], ...}')
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(_is_address(a) for a in addresses):
            raise UsageError(f'TF_CONFIG: cluster["{job}"] must be a list of "host:port" addresses')
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise UsageError(f'TF_CONFIG needs "task": {{"type": one of {sorted(cluster)}, "index": N}}')
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise UsageError(f'TF_CONFIG: task index {index!r} is not a position in cluster["{task["type"]}"]')
    return config


def _is_address(value):
    host, colon, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    return bool(host and colon and port.isdigit())
