"""The tf.distribute strategy a run trains under (on JAX: Keras's DataParallel), and which of its processes writes.

Every worker of a multi-worker run executes the same command and the same
callbacks (saving a model can take part in the workers' collective
operations, so all must do it), but only the chief writes what the user
sees: the others point their run directory at a scratch directory that is
deleted when they finish.
"""

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile

from kerasrun.cli.cluster import SLURM_RANK
from kerasrun.core.errors import RunError, UsageError, first_line

# The longest path the chief can hand to the other workers (see broadcast_from_chief).
_BROADCAST_BYTES = 4096


class Distribution:
    """The strategy of a run, and this process's part in it.

    Args:
        strategy: A `tf.distribute.Strategy`, or None to train without one.
        is_chief: Whether this process writes the run's directory.
        task: How messages name this process ("worker 1"), or None alone.
        jax_devices: On JAX, the number of devices Keras's DataParallel splits each batch between (0: none).
    """

    def __init__(self, strategy=None, is_chief=True, task=None, jax_devices=0):
        self.strategy = strategy
        self.is_chief = is_chief
        self.task = task
        self.jax_devices = jax_devices  # Devices of Keras's DataParallel on JAX (0: none set).
        self._agreement = None

    @property
    def multi_worker(self):
        return self.task is not None

    def scope(self):
        """Returns the context in which the model, optimizer and metrics are built."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def broadcast_from_chief(self, text):
        """Returns the chief's `text` on every worker (a collective operation: all must call it).

        Args:
            text: This process's text; only the chief's counts.
        """
        import numpy as np
        import tensorflow as tf

        encoded = text.encode()
        if len(encoded) > _BROADCAST_BYTES:
            raise RunError(f"path too long to share with the other workers: {text}")
        buffer = np.zeros(_BROADCAST_BYTES + 1, np.int32)
        buffer[0] = len(encoded)
        buffer[1:len(encoded) + 1] = np.frombuffer(encoded, np.uint8)

        def contribute():
            # Replica 0 lives on the chief; summing over the replicas then hands its buffer to all.
            first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
            mine = tf.constant(buffer)
            return tf.where(first, mine, tf.zeros_like(mine))

        @tf.function  # Collectives run eagerly are slow, and TensorFlow warns about them.
        def share():
            return self.strategy.reduce("SUM", self.strategy.run(contribute), axis=None)

        summed = share().numpy()
        return bytes(summed[1:summed[0] + 1].astype(np.uint8)).decode()

    @property
    def local_replicas(self):
        """The replicas of the strategy on this worker (one per device)."""
        return max(1, len(self.strategy.extended.worker_devices))

    def agree_on_stop(self, received):
        """Returns the signal that stops every worker at this step, or None (a collective operation: all must call it).

        A signal reaches one worker of a cluster (a preempted machine); the
        others must stop at the same step, or they would wait for it in the
        next one. Every worker calls this before each step with the name of
        the signal it received (or None); all get the same answer.
        """
        import numpy as np

        if self._agreement is None:
            self._agreement = _agreement(self)
        votes = np.array([received == name for name in _STOP_SIGNALS], np.int32)
        counts = self._agreement(votes).numpy()
        return next((name for name, count in zip(_STOP_SIGNALS, counts) if count), None)


# The signals a worker can be stopped by, in the order of precedence when workers got different ones.
_STOP_SIGNALS = ("SIGTERM", "SIGINT")


def _agreement(distribution):
    """Returns the function `Distribution.agree_on_stop` runs: a sum over the workers of each one's vote."""
    import tensorflow as tf

    strategy = distribution.strategy

    @tf.function  # Collectives run eagerly are slow, and TensorFlow warns about them.
    def summed(votes):
        def contribute():
            # Each worker's vote counts once: only its first replica contributes it.
            first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group % distribution.local_replicas,
                             0)
            return tf.where(first, votes, tf.zeros_like(votes))

        return strategy.reduce("SUM", strategy.run(contribute), axis=None)

    return summed


def make_distribution(config):
    """Creates the strategy `--distribution_strategy` names.

    It must come before TensorFlow runs anything: multi-worker collectives
    and logical CPU devices can only be set up at the start.

    Raises:
        UsageError: when this machine cannot provide the strategy or devices.
        RunError: when the cluster cannot be joined.
    """
    name = config.distribution_strategy
    if name == "default":
        return Distribution()
    if config.backend == "jax":  # cli/backend.py lets only mirrored through.
        return jax_data_parallel(config.distribution_devices, config.batch_size)
    import tensorflow as tf

    if name == "one_device":
        devices = local_devices(config.distribution_devices)
        return Distribution(tf.distribute.OneDeviceStrategy(devices[0]))
    if name == "mirrored":
        devices = local_devices(config.distribution_devices)
        return Distribution(tf.distribute.MirroredStrategy(devices))
    if name == "tpu":
        return Distribution(tpu_strategy(config.distribution_tpu))
    return multi_worker(config)


def configure_tensorflow(config):
    """Sets up TensorFlow before it runs anything (afterwards both settings are fixed).

    On JAX it hides the GPUs from TensorFlow, which the run still uses (tf.data,
    tf.summary) on the CPU: by default TensorFlow takes nearly all of a GPU's
    memory when it first touches it, and JAX three quarters, so the second to
    start would run out (not tried on a GPU here; without one it changes
    nothing). On TensorFlow it sizes the thread pools as --intra_op_threads and
    --inter_op_threads say (0: TensorFlow's choice; both are refused on JAX).
    """
    if config.backend == "jax":
        import tensorflow as tf

        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow's runtime started already (a plug-in ran an op): too late, and left as is.
            pass
        return
    if not (config.intra_op_threads or config.inter_op_threads):
        return
    import tensorflow as tf

    if config.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.intra_op_threads)
    if config.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(config.inter_op_threads)


def jax_data_parallel(names, batch_size):
    """Trains on JAX's local devices (`names`, or every GPU, else every CPU device) through Keras's DataParallel.

    Keras's own distribution API, not tf.distribute: set for the whole process,
    it replicates the variables and splits each batch between the devices.
    JAX sees one CPU device unless XLA_FLAGS=--xla_force_host_platform_device_count=N
    is set before it starts; CPU:1 without it is refused.

    Raises:
        UsageError: naming a device JAX does not have, or a batch size they cannot share evenly.
    """
    import jax
    import keras

    found = {"GPU": jax.devices("gpu") if _has_platform(jax, "gpu") else [], "CPU": jax.devices("cpu")}
    if names:
        devices = []
        for name in names:
            kind, _, number = name.upper().partition(":")
            if int(number) >= len(found[kind]):
                hint = (" (JAX splits the processor into N devices with XLA_FLAGS="
                        "--xla_force_host_platform_device_count=N, set before the run)" if kind == "CPU" else "")
                raise UsageError(f"--distribution_devices={name}: JAX sees {len(found[kind]) or 'no'} {kind} "
                                 f"device{'' if len(found[kind]) == 1 else 's'}{hint}")
            devices.append(found[kind][int(number)])
    else:
        if not found["GPU"]:
            print("train.py: no GPU here; training on the CPU", file=sys.stderr)
        devices = found["GPU"] or found["CPU"]
    if batch_size % len(devices):
        raise UsageError(f"--batch_size={batch_size}: data parallel on JAX splits each batch evenly between the "
                         f"{len(devices)} devices; use a multiple of {len(devices)}")
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=[f"{device.platform}:{device.id}" for device in devices]))
    print(f"train.py: data parallel over {len(devices)} JAX device{'' if len(devices) == 1 else 's'} "
          f"({', '.join(str(device) for device in devices)})", file=sys.stderr)
    return Distribution(jax_devices=len(devices))


def _has_platform(jax, platform):
    try:
        return bool(jax.devices(platform))
    except RuntimeError:  # No backend of that kind installed.
        return False


def local_devices(names):
    """Returns TensorFlow device names for `--distribution_devices`, or every GPU, or the CPU.

    Asking for more CPUs than the one TensorFlow sees splits the processor
    into that many logical devices.

    Raises:
        UsageError: naming a GPU this machine does not have.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not names:
        if not gpus:
            print("train.py: no GPU here; training on the CPU", file=sys.stderr)
        return [f"/gpu:{index}" for index in range(len(gpus))] or ["/cpu:0"]
    numbers = {"CPU": [], "GPU": []}
    for name in names:
        kind, _, number = name.upper().partition(":")
        numbers[kind].append(int(number))
    missing = [number for number in numbers["GPU"] if number >= len(gpus)]
    if missing:
        raise UsageError(f"--distribution_devices=GPU:{missing[0]}: this machine has "
                         f"{len(gpus) or 'no'} GPU{'' if len(gpus) == 1 else 's'}")
    if numbers["CPU"] and max(numbers["CPU"]) > 0:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * (max(numbers["CPU"]) + 1))
    return [f"/{kind.lower()}:{number}" for kind in ("GPU", "CPU") for number in numbers[kind]]


def tpu_strategy(address):
    """Connects to the TPU at `address` (or the one the environment names) and returns its strategy."""
    import tensorflow as tf

    flag = f"--distribution_tpu={address}" if address else "--distribution_strategy=tpu"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address or "")
    except ValueError as error:
        raise UsageError(f"{flag}: no TPU found ({first_line(error)})") from None
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:  # The TPU runtime raises many types; one line says it.
        raise RunError(f"{flag}: cannot start the TPU: {first_line(error)}") from None
    return tf.distribute.TPUStrategy(resolver)


def multi_worker(config):
    """Joins the cluster of TF_CONFIG, or of the Slurm job step, and returns its Distribution."""
    import tensorflow as tf

    resolver = slurm_resolver(config.distribution_slurm_port) if "TF_CONFIG" not in os.environ else None
    cluster = (resolver.cluster_spec().as_dict() if resolver else json.loads(os.environ["TF_CONFIG"])["cluster"])
    count = sum(len(tasks) for tasks in cluster.values())
    print(f"Waiting for the {count} workers of the cluster to join...", file=sys.stderr, flush=True)
    # The wait happens inside TensorFlow, where Python's Ctrl-C handler
    # cannot run; the system's own ends the process at once.
    handler = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except Exception as error:  # TensorFlow's runtime raises many types; one line says it.
        raise RunError(f"--distribution_strategy=multi_worker_mirrored: cannot join the cluster: "
                       f"{first_line(error)}") from None
    finally:
        signal.signal(signal.SIGINT, handler)
    resolver = strategy.cluster_resolver
    task = f"{resolver.task_type} {resolver.task_id}"
    return Distribution(strategy, is_chief=strategy.extended.should_checkpoint, task=task)


def slurm_resolver(port_base):
    """Returns TensorFlow's resolver of the Slurm job step this process is a task of."""
    import tensorflow as tf

    environ = os.environ
    gpus = len(environ["CUDA_VISIBLE_DEVICES"].split(",")) if environ.get("CUDA_VISIBLE_DEVICES") else 0
    if not gpus:
        gpus = len(tf.config.list_physical_devices("GPU"))
    # The resolver hands GPUs out to tasks and cannot count none; without
    # GPUs, claim one placeholder per task and leave CUDA_VISIBLE_DEVICES alone.
    tasks = int(environ.get("SLURM_STEP_NUM_TASKS", "1"))
    gpu_options = {} if gpus else {"gpus_per_node": tasks, "gpus_per_task": 1, "auto_set_gpu": False}
    try:
        return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port_base, **gpu_options)
    except (RuntimeError, ValueError, KeyError) as error:
        raise UsageError(f"{SLURM_RANK}={environ.get(SLURM_RANK)}: cannot read the Slurm job step "
                         f"({first_line(error)})") from None


def scratch_run_dir():
    """Returns a directory for what a worker other than the chief writes; the caller removes it."""
    return tempfile.mkdtemp(prefix="train-worker-")


def copy_chief_backup(chief_backup, own_backup):
    """Gives a worker the chief's backup to resume from.

    Raises:
        RunError: when the chief's backup is not on this machine's filesystem.
    """
    if not os.path.isdir(chief_backup):
        raise RunError(f"cannot read the chief's backup at {chief_backup}: resuming several workers needs "
                       "--tensorboard_log_dir on a filesystem every worker shares")
    shutil.copytree(chief_backup, own_backup)
