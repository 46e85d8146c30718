"""Checks the TF_CONFIG environment variable that describes a tf.distribute cluster."""

import json

from runner.errors import UsageError


def check_tf_config(text):
    """Checks a TF_CONFIG value: JSON with a cluster of host:port lists and this process's task.

    Args:
        text: The value of TF_CONFIG, or None when it is not set.

    Raises:
        UsageError: naming TF_CONFIG and what is wrong with it.
    """
    if text is None:
        return
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


def _is_address(value):
    host, colon, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    return bool(host and colon and port.isdigit())
