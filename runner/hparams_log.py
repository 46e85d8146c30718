"""Logs a run's hyperparameters and final metrics for TensorBoard's HParams tab."""


def write_hparams(run_dir, hparams, final_metrics, step, test_metrics=None):
    """Writes one HParams session into `run_dir`.

    The HParams plugin lists each run directory holding an hparams summary as
    a session, with its scalars as metrics; the final metrics are written as
    `final/<key>` scalars beside it so that the tab has them even when the
    TensorBoard callback is off, and the test split's as `test/<key>` (they
    show in the Scalars tab too).

    Args:
        run_dir: The run's directory.
        hparams: Flag name -> value (bool, int, float or str; others become text).
        final_metrics: Metric name -> last value.
        step: The step to log the metrics at (the last epoch).
        test_metrics: Metric name -> value on the test split, written as
            `test/<key>` scalars, or None.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(run_dir).as_default():
        hp.hparams({name: _hparam_value(value) for name, value in hparams.items()})
        for name, value in final_metrics.items():
            if isinstance(value, float):
                tf.summary.scalar(f"final/{name}", value, step=step)
        for name, value in (test_metrics or {}).items():
            if isinstance(value, float):
                tf.summary.scalar(f"test/{name}", value, step=step)


def _hparam_value(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return "None" if value is None else str(value)
