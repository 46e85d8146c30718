"""The run itself, in phases: data, model, run directory, `model.fit`, outcome.

TensorFlow is imported only inside `run` (here and in the modules it calls),
after the configuration has been validated.
"""

import collections
import contextlib
import math
import os
import shlex
import shutil
import sys

from kerasrun import datasets, keras_fixes, models
from kerasrun.callbacks import stepping
from kerasrun.callbacks.builder import build_callbacks, family_of
from kerasrun.callbacks.monitor import ranked_monitor
from kerasrun.cli.config import Config, changed_flags, saved_config, worker_overrides
from kerasrun.core import files
from kerasrun.datasets import tabular
from kerasrun.core.errors import PluginError, UsageError, first_line, one_line, wants_traceback
from kerasrun.core.plugins import where_in_users_code
from kerasrun.keras_fixes import mid_epoch, multi_worker
from kerasrun.keras_fixes.saving import cache_saving_skipsets, scalar_cache_emptier
from kerasrun.runner import results, trial
from kerasrun.runner.compiling import checked_loss, make_loss, make_metrics, make_optimizer
from kerasrun.runner.data_check import checked_data, data_lines, scales_targets, steps_per_epoch
from kerasrun.runner.dispatch import combined
from kerasrun.runner.distribution import (configure_tensorflow, copy_chief_backup, make_distribution,
                                          scratch_run_dir)
from kerasrun.runner.final import leave_behind
from kerasrun.runner.hparams_log import write_hparams
from kerasrun.runner.interrupts import GracefulStop, StopRequested
from kerasrun.runner.resume import EpochLog, callback_state_keeper, resume_point
from kerasrun.runner.run_paths import (RunPaths, backup_dir, claim_run_dir, default_run_name, experiment_identity,
                                       find_resumable)

SECOND_CTRL_C = "stopped at once by a second Ctrl-C"
# The tf.data pipelines a run trains on, the counter of epochs that orders their shuffling, their Data,
# and the class weights fit applies (runner/class_weights.py; None for none).
Pipelines = collections.namedtuple("Pipelines", "train validation epoch data class_weight", defaults=(None,))
# How training ended: the status results.json records, the exit status, a line for stderr or None,
# the finished epochs, what the run left behind (runner/final.py), the optuna family's callback
# (the Optuna trial it reports to, told the outcome by runner/trial.py), or None; and the callbacks built.
Outcome = collections.namedtuple("Outcome", "status exit_code message epoch_log products trial callbacks",
                                 defaults=(None, None, ()))


def run(config):
    """Trains as `config` says, records the outcome and prints a summary.

    Args:
        config: The resolved Config.

    Returns:
        The process exit status: 0 finished (also by early stopping), 1
        failed, 3 stopped by a NaN loss, 4 pruned by the Optuna study it
        reports to, 130/143 interrupted by SIGINT/SIGTERM.

    Raises:
        UsageError: when the data or the model named in the config turns out
            to be unusable (found only once it is loaded); nothing is written.
        RunError: when a download the run needs fails; nothing is written.
    """
    epoch_log = EpochLog()  # Its clock is the run's wall time, loading and building included.
    configure_tensorflow(config)
    distribution = make_distribution(config)  # Before TensorFlow runs anything: clusters are set up first.
    keras_fixes.check_keras()
    data = None
    try:
        data, pipelines = prepare_data(config, distribution)
        model = prepare_model(config, data, distribution, pipelines)
        failed = None
    except PluginError as error:  # The user's loader or builder raised: a failed run, recorded as one.
        model = pipelines = None
        failed = failed_outcome(f"error: {error}", epoch_log)
    steps = None if failed else epoch_steps(config, pipelines)
    with run_directory(config, distribution, resume=failed is None, steps=steps) as (config, paths, resumed):
        try:
            outcome = failed or train(config, model, pipelines, paths, resumed, distribution, epoch_log)
        except (Exception, SystemExit) as error:  # Unforeseen: the run's directory still records how it ended.
            if wants_traceback():
                raise
            outcome = failed_outcome(f"error: {one_line(error)}", epoch_log)
        outcome = report(config, paths, distribution, outcome, model, data)
    if outcome.message:
        print(f"train.py: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


def prepare_data(config, distribution):
    """Returns the dataset the config names, checked against the config, and its pipelines.

    Everything that draws random numbers runs after seeding: the user's own
    loader too. Our sources draw none but the split's, which has its own
    seed, so they load before TensorFlow does and their mistakes show at once.
    """
    if datasets.is_plugin(config.dataset):
        seed_everything(config)
    data, weights = checked_data(config)
    if distribution.is_chief:  # A worker prints only its last line; the chief speaks for the run.
        print("\n".join(data_lines(config, data, weights)), flush=True)
    seed_everything(config)  # The model and the callbacks draw the same numbers, whatever the loader drew.
    epoch = datasets.EpochCounter()
    devices = distribution.jax_devices
    if devices and not datasets.takes_numpy_batches(data):
        raise UsageError(f"--distribution_strategy=mirrored: on --backend jax it takes data held in memory (arrays, "
                         f"cached images), not {config.dataset} read as training goes; use --dataset_cache memory "
                         "if it fits, or --backend tensorflow")
    if config.backend == "jax" and datasets.takes_numpy_batches(data):  # JAX takes NumPy batches as they are.
        train_data, validation_data = datasets.make_numpy_datasets(
            data, batch_size=config.batch_size, seed=config.seed, epoch=epoch, multiple=max(devices, 1))
        dropped = [f"{datasets.left_out(len(part[1]), devices)} {name}" for name, part in
                   (("training", data.train), ("validation", data.val), ("test", data.test))
                   if devices and part is not None and datasets.left_out(len(part[1]), devices)]
        if dropped and distribution.is_chief:
            print(f"data parallel over {devices} devices: the last batch of a pass is cut to a multiple of "
                  f"{devices}, leaving out {', '.join(dropped)} example(s) (the training ones differ each epoch)")
    else:  # Streamed files, tables of text: tf.data, which JAX's trainer turns into NumPy batch by batch.
        train_data, validation_data = datasets.make_tf_datasets(
            data, batch_size=config.batch_size, seed=config.seed, epoch=epoch)
    return data, Pipelines(train_data, validation_data, epoch, data, weights)


def prepare_model(config, data, distribution, pipelines):
    """Returns the compiled model, in the distribution's scope, ready for a multi-worker `fit`."""
    with distribution.scope():
        model = build_and_compile(config, data)
    if distribution.multi_worker:
        multi_worker.check_keras()
        multi_worker.build_before_fit(model, distribution.strategy, next(iter(pipelines.train)))
        multi_worker.patch_log_reduction()
    return model


@contextlib.contextmanager
def run_directory(config, distribution, resume=True, steps=None):
    """Yields (config, RunPaths, resumed) of the directory the run writes, held while the run lives.

    The chief claims a new directory or (if `resume`) resumes an interrupted
    run's, and holds its lock; the other workers of a multi-worker run write into a scratch
    directory, removed at the end, with the config they train with.
    """
    paths, lock, resumed = open_run_dir(config, resume, steps) if distribution.is_chief else (None, None, False)
    scratch = None if distribution.is_chief else scratch_run_dir()
    try:
        if distribution.multi_worker:
            config, paths = share_run_dir(config, distribution, paths, resumed, scratch)
        yield config, paths, resumed
    finally:
        if lock is not None:
            files.release_lock(lock)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def train(config, model, pipelines, paths, resumed, distribution, epoch_log):
    """Fits the model with the run's callbacks, recording finished epochs in `epoch_log`; returns the Outcome."""
    stop = GracefulStop()
    stop.install()  # The run directory exists: from here on a signal's stop is recorded in it.
    try:
        callbacks = build_callbacks(config, paths, resumed=resumed)
    except PluginError as error:  # A --callbacks class raised when constructed.
        return failed_outcome(f"error: {error}", epoch_log)
    reporter = next((c for c in callbacks if getattr(family_of(c), "name", None) == "optuna"), None)
    resume_at = resume_point(backup_dir(config, paths)) if resumed and config.backup_and_restore else None
    set_steps_per_execution(config, model, pipelines, callbacks[len(callbacks) - len(config.callbacks):],
                            distribution, resume_at)
    if stop.received:  # While the callbacks were made (a slow --callbacks class, say).
        return Outcome("interrupted", stop.exit_code(), stop.reason(), epoch_log, trial=reporter, callbacks=callbacks)
    if resume_at and resume_at[1]:  # The epoch's running means are restored before its first step: make them.
        mid_epoch.build_metrics(model, first_batch(pipelines.train))
    agree = distribution.agree_on_stop if distribution.multi_worker else None
    assembled = assemble_callbacks(callbacks, pipelines.epoch, stop, epoch_log, agree)
    status, message = fit(model, pipelines, config, assembled, epoch_log)
    mid_epoch.disarm()  # A start inside an epoch, armed and not reached, is not for the evaluation that follows.
    if message == SECOND_CTRL_C and not stop.forced:  # No signal: the user's own code raised it.
        status, message = "failed", "error: training failed: KeyboardInterrupt raised by a callback or hook"
    if status == "interrupted" and message is None:
        message = stop.reason()
    if status == "failed" and stop.forced:
        # The second Ctrl-C can land inside TensorFlow, which then raises an error of its own
        # ("Exiting device scope without proper scope nesting") instead of KeyboardInterrupt.
        close_logs(assembled)
        status, message = "interrupted", SECOND_CTRL_C
    if status == "failed" and stop.received and distribution.multi_worker:
        # Workers stop after their own step; the ones a step behind then
        # lose the others in the middle of theirs.
        status, message = "interrupted", "stopped: the other workers left after the signal"
    if status in ("completed", "early_stopped") and reporter is not None and reporter.pruned_epoch is not None:
        # Also when early stopping stopped the same epoch: the study's decision is the news.
        status, message = "pruned", f"stopped: {reporter.pruned_line}"
    exit_code = stop.exit_code() if status == "interrupted" and stop.received else results.EXIT_CODES[status]
    early_stopping = next((c for c in callbacks if getattr(family_of(c), "name", None) == "early_stopping"), None)
    products = leave_behind(config, model, pipelines, paths, distribution, status, stop, early_stopping)
    if stop.received and status in ("completed", "early_stopped", "pruned"):  # A signal once training had ended.
        status, exit_code = "interrupted", stop.exit_code()
        message = f"{stop.reason()} during {products['stopped'] or 'what follows training'}, after training finished"
        if products["model_file"]:
            message += (f"; the model is saved, and python train.py --mode evaluate --model {shlex.quote(paths.dir)} "
                        f"--dataset {shlex.quote(config.dataset)} scores it")
    return Outcome(status, exit_code, message, epoch_log, products, reporter, callbacks)


def set_steps_per_execution(config, model, pipelines, own_callbacks, distribution, resume_at=None):
    """Sets the steps the model runs per call into the backend (callbacks/stepping.py), and says how many and why.

    `own_callbacks` are the user's --callbacks, built (build_callbacks puts them last).
    `resume_at` is where a resumed run's backup was made ((epoch, batches of
    it done), or None): a resume inside an epoch must begin a call there.
    """
    choice = stepping.choose(config, epoch_steps(config, pipelines), own_callbacks)
    steps = choice.steps
    line = choice.line
    if resume_at and resume_at[1] % steps:
        steps = math.gcd(steps, resume_at[1])
        line = (f"steps per execution: {steps}, not {choice.steps}: the backup was made after batch {resume_at[1]} "
                f"of its epoch, where a call must begin ({choice.line})")
    model.steps_per_execution = steps  # Read when fit makes its train function, once per model.
    if distribution.is_chief:
        print(line, flush=True)


def first_batch(train):
    """Returns one batch of the training data: a tf.data dataset's, or (on JAX) a PyDataset's."""
    return train[0] if hasattr(train, "__getitem__") else next(iter(train))


def epoch_steps(config, pipelines):
    """Returns the training steps of an epoch."""
    numpy_batches = hasattr(pipelines.train, "__getitem__")  # On JAX: cut to the devices they are split between.
    return len(pipelines.train) if numpy_batches else steps_per_epoch(config, pipelines.data)


def failed_outcome(message, epoch_log):
    """Returns the Outcome of a run that failed for the reason `message` (the line for stderr)."""
    return Outcome("failed", results.EXIT_CODES["failed"], message, epoch_log)


def report(config, paths, distribution, outcome, model=None, data=None):
    """The chief records the outcome in the run's directory and prints the summary; a worker prints a line.

    Returns:
        The outcome as recorded (see `record_outcome`).
    """
    if distribution.is_chief:
        return record_outcome(config, paths, outcome, model, data)
    print(worker_summary(distribution.task, outcome.status, outcome.epoch_log))
    return outcome


def share_run_dir(config, distribution, paths, resumed, scratch):
    """Returns (config, paths) for this worker of a multi-worker run.

    The chief keeps its run directory. The others write into their `scratch`
    directory instead of every path the user chose (each option group's
    `worker_overrides`), and start from the chief's backup when the chief
    resumes, so that all resume at one epoch.
    """
    chief_backup = ""
    if config.backup_and_restore:
        if distribution.is_chief and resumed:
            chief_backup = os.path.abspath(backup_dir(config, paths))
        chief_backup = distribution.broadcast_from_chief(chief_backup)
    if distribution.is_chief:
        return config, paths
    paths = RunPaths(scratch, "run")
    config = Config({**config, **worker_overrides()}, config.sources)
    if chief_backup:
        copy_chief_backup(chief_backup, backup_dir(config, paths))
    return config, paths


def assemble_callbacks(callbacks, epoch, stop, epoch_log, agree=None):
    """Returns the user's callbacks between the runner's own.

    First the epoch counter (the data order) and the stop on a signal (with
    `agree`, agreed among the workers of a cluster before each step); then,
    once the others have converted this epoch's numbers, the emptier of
    TensorFlow's cache of them; last the record of finished epochs and the
    keeper of state, which must see the others' work.
    """
    keeper = callback_state_keeper(callbacks, epoch_log, epoch)
    emptier = scalar_cache_emptier()
    stopper = stop.callback(epoch_log, before_stop=keeper.save_before_stop if keeper else None,
                            agree=agree)
    return [epoch.callback(), stopper, *callbacks, *([emptier] if emptier else []), epoch_log.callback(),
            *([keeper] if keeper else [])]


def seed_everything(config):
    """Seeds Python, NumPy, TensorFlow and (on JAX) Keras's JAX generator; with --deterministic, makes TensorFlow's
    ops repeatable.

    On JAX, XLA's CPU computations are repeatable as they are (the same
    program on the same inputs gives the same bits), and every random number
    comes from the seeded generators; --deterministic there still makes the
    TensorFlow ops of a tf.data pipeline (streamed files) deterministic.
    """
    import keras
    import tensorflow as tf

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)


def build_and_compile(config, data):
    """Builds the model the config names and compiles it for the data's labels."""
    import keras

    keras.mixed_precision.set_global_policy("float32" if config.mixed_precision == "none"
                                             else config.mixed_precision)
    def build(input_shape):
        return models.build(
            config.model,
            input_shape=input_shape,
            head=model_head(config, data),
            weights=config.model_weights,
            safe_mode=config.model_safe_mode,
            hparams=models.hparams_of(config, config.model),
            model_args=config.model_args,
        )

    # A table's columns go through Keras's FeatureSpace, the model's first layer, adapted on the training split;
    # a saved model of a table (a checkpoint of a CSV run) holds its own, and takes the columns as it is.
    model = models.load_table_model(config.model, data.table, model_head(config, data),
                                    safe_mode=config.model_safe_mode) if data.table else None
    if model is None:
        model = tabular.wrap(build, data.table, features_of(data.train)) if data.table else build(data.input_shape)
    outputs = models.output_width(model, config.model, data.input_shape)
    loss = checked_loss(config, data, outputs)
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(loss, data.head, data.label_kind, outputs, config.label_smoothing),
        metrics=make_metrics(config.metrics, data.head, data.label_kind, outputs),
        # auto is chosen once the callbacks are built (set_steps_per_execution).
        steps_per_execution=1 if config.steps_per_execution == "auto" else config.steps_per_execution,
        jit_compile={"auto": "auto", "true": True, "false": False}[config.jit_compile],
    )
    return model


def features_of(part):
    """Returns a table's features: the (features, labels) pair's first, or a streamed file's part as it is."""
    return part[0] if isinstance(part, tuple) else part


def model_head(config, data):
    """Returns the head the model gets: the data's, which undoes the targets' standardisation when it applies."""
    if scales_targets(config, data):
        return data.head.scaled(*data.target_stats)
    return data.head


def open_run_dir(config, resume=True, steps=None):
    """Returns (RunPaths, lock, resumed) of the run's directory: an interrupted run to resume, or a new one.

    The lock is held while the run lives, so that no other process resumes it.
    A run that failed before training (`resume` False) gets a new directory,
    leaving the interrupted run's for the run that follows the fix. `steps`
    (of an epoch, if known) goes into the line that says where a resume begins.
    """
    saved = saved_config(config)
    root = config.tensorboard_log_dir
    if config.backup_and_restore and resume:
        paths = find_resumable(root, experiment_identity(saved), config.run_name)
        lock = _try_lock(paths)
        if lock is not None:
            print(f"Resuming the interrupted run in {paths.dir}{resume_line(backup_dir(config, paths), steps)}")
            return paths, lock, True
    if config.backup_and_restore and resume:  # A run that never trains leaves any backup alone.
        refuse_foreign_backup(config.backup_and_restore_backup_dir)
    base = config.run_name or default_run_name(changed_flags(config))
    paths = claim_run_dir(root, base)
    if config.run_name and paths.name != config.run_name:
        print(f"Run directory {config.run_name!r} exists already; this run writes to {paths.dir}")
    lock = files.hold_lock(paths.path(files.LOCK_FILE))
    results.write_config(paths, {**saved, "run_name": paths.name})
    return paths, lock, False


def resume_line(folder, steps=None):
    """Says where the backup in `folder` resumes: ' at epoch 3' or ' at epoch 3, after batch 120 of 450'."""
    point = resume_point(folder)
    if point is None:
        return ""
    epoch, step = point
    return f" at epoch {epoch + 1}" + (f", after batch {step}{f' of {steps}' if steps else ''}" if step else "")


def refuse_foreign_backup(backup_dir):
    """Refuses to start a new run on a backup that another run left.

    BackupAndRestore restores whatever its directory holds; a new run (not a
    resume) in a directory holding another run's backup would silently
    continue that run instead.
    """
    held = sorted(os.listdir(backup_dir)) if backup_dir is not None and os.path.isdir(backup_dir) else []
    if keras_fixes.BACKUP_METADATA_FILE in held:
        raise UsageError(f"--backup_and_restore_backup_dir={backup_dir}: holds the backup of another run "
                         "that this command does not resume; remove it or choose another directory")
    if held:  # Keras would empty it when training ends.
        raise UsageError(f"--backup_and_restore_backup_dir={backup_dir}: holds files of yours ({', '.join(held[:3])}"
                         f"{', ...' if len(held) > 3 else ''}), which Keras deletes when training ends; "
                         "choose an empty or new directory")


def _try_lock(paths):
    if paths is None:
        return None
    try:
        return files.hold_lock(paths.path(files.LOCK_FILE))
    except BlockingIOError:  # Another process took it a moment ago.
        return None


def fit(model, pipelines, config, callbacks, epoch_log):
    """Runs `model.fit`; returns (status, message for stderr or None)."""
    # Without it every backup and checkpoint would grow the process by about 70 KB.
    cache_saving_skipsets()
    try:
        model.fit(
            pipelines.train,
            validation_data=pipelines.validation,
            epochs=config.epochs,
            shuffle=False,  # The pipeline shuffles with the seed.
            verbose=resolve_verbosity(config.verbose),
            callbacks=combined(callbacks),
            class_weight=pipelines.class_weight,
        )
    except (StopRequested, KeyboardInterrupt) as stop:
        close_logs(callbacks)
        return "interrupted", None if isinstance(stop, StopRequested) else SECOND_CTRL_C
    except (Exception, SystemExit) as error:  # Keras, TensorFlow and the user's code raise many types.
        if isinstance(error, RuntimeError) and keras_fixes.NAN_STOP_MESSAGE in str(error):
            return "nan", f"stopped: {first_line(error)}"
        explained = datasets.explain_failure(pipelines.data, error, f"--dataset={config.dataset!r}")
        if explained:
            return "failed", f"error: training failed: {explained}"
        # A hook, a schedule, a callback or a layer of the user's: its line.
        return "failed", (f"error: training failed: {type(error).__name__}: {first_line(error)}"
                          f"{where_in_users_code(error)}")
    nan_message = non_finite(epoch_log, model)
    if nan_message:
        return "nan", f"stopped: {nan_message}"
    finished = epoch_log.epochs[-1] if epoch_log.epochs else 0
    return ("completed" if finished >= config.epochs else "early_stopped"), None


def non_finite(epoch_log, model):
    """Says where the loss or the weights stopped being finite numbers, or returns None."""
    for number, loss in zip(epoch_log.epochs, epoch_log.history.get("loss", [])):
        if not math.isfinite(loss):
            return f"the loss became {'NaN (not a number)' if math.isnan(loss) else 'infinite'} in epoch {number}"
    import numpy as np

    # TensorFlow's ReLU turns NaN into 0: NaN can ruin the weights and leave the loss finite. The inputs were
    # checked finite before training, so the numbers overflowed in training.
    if not all(np.isfinite(np.asarray(weight)).all() for weight in model.trainable_weights):
        return ("the weights hold NaN or infinite values: training diverged (the inputs were checked finite); "
                "try a lower --learning_rate, clipping (--optimizer_clipnorm 1), or another --optimizer")
    return None


def close_logs(callbacks):
    """Ends the callbacks that write files (their family says so) when training ends without their on_train_end."""
    for callback in callbacks:
        family = family_of(callback)
        if family is not None and family.closes_on_interrupt:
            callback.on_train_end()


def record_outcome(config, paths, outcome, model=None, data=None):
    """Writes results.json (and the --results_file line) and the HParams summary; prints the summary.

    With --optuna True the run's trial is then told how the run ended
    (runner/trial.py): once, whatever the outcome, failures before training
    included; what fails there is a warning, never the run's outcome.

    Returns:
        The outcome as recorded: failed, when the results line cannot be written.
    """
    epoch_log = outcome.epoch_log
    history, epochs = epoch_log.history, epoch_log.epochs
    monitor, mode = results_monitor(config, history)
    hparams = {**saved_config(config), "run_name": paths.name}
    seconds = epoch_log.seconds()
    record = results.make_record(
        paths, outcome.status, outcome.exit_code, history, epochs,
        results.best_epoch(history, epochs, monitor, mode), hparams, seconds, outcome.message,
        model=results.describe_model(config.model, model),
        task=results.describe_task(data),
        products=outcome.products,
        interruptions=epoch_log.interruptions,
    )
    reporters = [(callback, family) for callback in outcome.callbacks for family in (family_of(callback),)
                 if family is not None and family.report is not None]
    if reporters:  # Their wait for a server must not put the record at risk: results.json is written first.
        results.write_results(paths, record)
        record = report_elsewhere(reporters, record, paths)
    record = results.write_results(paths, record, config.results_file)
    write_hparams(paths.dir, config.hparams(), record["final"], record["epochs_completed"],
                  test_metrics=record["test"])
    print(summary(record, seconds))
    trial.tell(config, record, history, epochs, outcome.trial)
    return outcome._replace(status=record["status"], exit_code=record["exit_code"], message=record["message"])


def report_elsewhere(reporters, record, paths):
    """Has each (callback, family) whose family reports the run's end elsewhere (MLflow) do so; returns the record
    with what they add to it (results.json, and the --results_file line, hold that too)."""
    for callback, family in reporters:
        try:
            record = {**record, **(family.report(callback, record, paths) or {})}
        except Exception as error:  # The run has ended and is recorded: what fails here is a warning.
            print(f"train.py: warning: {family.title} could not report the run's end: "
                  f"{type(error).__name__}: {first_line(error)}", file=sys.stderr, flush=True)
    return record


def results_monitor(config, history):
    """Returns (quantity, min or max) that `best` in the results ranks epochs by (callbacks/monitor.py ranked_monitor)."""
    return ranked_monitor(config, history)


def resolve_verbosity(verbose):
    """Returns Keras's verbosity: auto means a progress bar on a terminal, else one line per epoch."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def summary(record, seconds):
    """Returns the lines printed after training: the outcome, the last epoch's logs, the run directory."""
    epochs = record["epochs_completed"]
    final = f"Final {format_logs(record['final'])}" if record["final"] else "No epoch finished."
    test = f"Test {format_logs(record['test'])}\n" if record["test"] else ""  # NaN and inf are text by now.
    return (f"Trained {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s ({record['status']}).\n"
            f"{final}\n{test}"
            f"Run directory: {record['run_dir']}")


def worker_summary(task, status, epoch_log):
    """Returns the line a worker other than the chief prints when training ends."""
    final = {key: values[-1] for key, values in epoch_log.history.items()}
    return (f"{task}: trained {len(epoch_log.epochs)} epochs ({status}); final {format_logs(final)}; "
            "the chief writes the run's directory")


def format_logs(logs):
    """Returns `key: value` pairs of epoch logs on one line."""
    return "  ".join(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}"
                     for key, value in logs.items())
