"""Loss and metrics are checked against the labels before compiling."""

import pytest

from kerasrun.core.errors import UsageError
from kerasrun.runner.compiling import check_metrics, choose_loss


def test_auto_picks_the_cross_entropy_that_fits_the_labels():
    assert choose_loss("auto", "int", 10) == "sparse_categorical_crossentropy"
    assert choose_loss("auto", "one_hot", 10) == "categorical_crossentropy"


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "hinge", "binary_crossentropy"])
def test_losses_that_need_one_hot_labels_are_refused_for_integer_labels(loss):
    with pytest.raises(UsageError, match=f"--loss={loss}: needs one-hot labels"):
        choose_loss(loss, "int", 10)


def test_sparse_losses_are_refused_for_one_hot_labels():
    with pytest.raises(UsageError, match="use categorical_crossentropy"):
        choose_loss("sparse_categorical_crossentropy", "one_hot", 10)


def test_any_loss_goes_with_one_hot_labels_or_a_single_output():
    assert choose_loss("mean_squared_error", "one_hot", 10) == "mean_squared_error"
    assert choose_loss("binary_crossentropy", "int", 1) == "binary_crossentropy"


@pytest.mark.parametrize("name", ["mse", "mean_squared_error", "mae", "huber", "log_cosh"])
def test_losses_and_metrics_comparing_values_take_one_label_for_many_outputs_only_one_example_at_a_time(name):
    # Keras's EarlyStopping example: Dense(10) trained with loss="mse" on one number per example, batch_size=1.
    assert choose_loss(name, "int", 10, batch_size=1) == name
    check_metrics([name], "int", 10, batch_size=1)
    assert choose_loss(name, "one_hot", 10, batch_size=32) == name
    with pytest.raises(UsageError, match=f"^--loss={name}: compares each of the model's 10 outputs .* --batch_size 1"):
        choose_loss(name, "int", 10, batch_size=32)
    with pytest.raises(UsageError, match=f"^--metrics={name}: compares"):
        check_metrics([name], "int", 10, batch_size=32)


@pytest.mark.parametrize("metric", ["categorical_accuracy", "top_k_categorical_accuracy", "categorical_crossentropy",
                                    "auc", "f1_score", "precision"])
def test_metrics_that_read_one_hot_labels_are_fitted_to_integer_labels(metric):
    check_metrics(["accuracy", metric], "int", 10)  # make_metrics picks the sparse variant or one-hots the labels


def test_metrics_that_fit_are_accepted():
    check_metrics(["accuracy", "sparse_top_k_categorical_accuracy"], "int", 10)
    check_metrics(["accuracy", "categorical_accuracy", "sparse_categorical_accuracy"], "one_hot", 10)


def test_performance_flags_reach_the_compiled_model():
    import keras

    from kerasrun.cli.config import resolve
    from kerasrun.runner.data_check import load_data
    from kerasrun.runner.fit import build_and_compile

    config = resolve(["train.py", "--steps_per_execution=4", "--jit_compile=false",
                      "--mixed_precision=mixed_bfloat16"])
    try:
        model = build_and_compile(config, load_data(config))
        assert model.steps_per_execution == 4
        assert model.jit_compile is False
        assert model.dtype_policy.name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = build_and_compile(resolve(["train.py"]), load_data(resolve(["train.py"])))
    assert model.dtype_policy.name == "float32" and model.steps_per_execution == 1


def test_metrics_reading_classes_are_refused_for_a_regression():
    with pytest.raises(UsageError, match=r"--metrics=mae,accuracy: accuracy reads classes, but the task is regression"):
        check_metrics(["mae", "accuracy"], "values", 1, 32, task="regression")
    check_metrics(["auto", "mae", "r2_score"], "values", 1, 32, task="regression")  # Values compared: accepted.


@pytest.mark.parametrize("call, expected", [
    (lambda: choose_loss("bce", "values", 1, 32), "--loss=bce: is a loss for classes, but the task is regression"),
    (lambda: choose_loss("bce", "int", 2, 32), "needs one-hot labels, but the dataset's labels are integer class "
                                               "ids; use one of sparse_categorical_crossentropy, "
                                               "categorical_generalized_cross_entropy (or auto) (for two classes "
                                               "and one sigmoid output, say --task binary)"),
    (lambda: check_metrics(["auto", "top_k:5"], "binary", 1, 32, task="binary"),
     "--metrics=auto,top_k:5: top_k:5 ranks classes against each other, but the task is binary"),
    (lambda: check_metrics(["top_k"], "int", 4, 32, task="classification"),
     "--metrics=top_k: top_k counts the true class among the top 5 of 4 classes, which it always is"),
])
def test_what_would_train_but_mean_nothing_is_refused(call, expected):
    with pytest.raises(UsageError) as raised:
        call()
    assert str(raised.value).startswith(expected) or expected in str(raised.value)


def test_f1_score_of_sigmoid_outputs_thresholds_at_one_half():
    from kerasrun.core.heads import Head
    from kerasrun.runner.compiling import make_metrics

    (binary,) = [metric for metric in make_metrics(["f1_score"], Head("binary", 1), "binary", 1)]
    (classes,) = [metric for metric in make_metrics(["f1_score"], Head("classification", 3), "int", 3)]
    assert binary.threshold == 0.5 and classes.threshold is None
