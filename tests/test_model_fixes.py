"""A CSV run's checkpoint continues training; a plug-in builder may require `task`."""

import re

import numpy as np
import pytest

from kerasrun.core.errors import UsageError


def write_house(path, header="a,b,c,d,price"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    price = 250_000 + 60_000 * x[:, 0] - 40_000 * x[:, 1] + 20_000 * x[:, 2] + rng.normal(scale=8_000, size=400)
    rows = "\n".join(",".join(f"{v:.5f}" for v in row) + f",{p:.2f}" for row, p in zip(x, price))
    path.write_text(header + "\n" + rows + "\n")


def epoch_losses(stdout):
    return [float(value) for value in re.findall(r"step - loss: ([0-9.e+]+)", stdout)]


def test_a_csv_runs_checkpoint_continues_training_from_its_weights_and_is_not_wrapped_or_scaled_again(tmp_path, train):
    write_house(tmp_path / "house.csv")
    common = ("--dataset", "csv:house.csv", "--dataset_label_column", "price", "--verbose", "2", "--batch_size", "16")
    first = train(*common, "--epochs", "3", "--model_checkpoint", "True", "--run_name", "first")
    assert first.returncode == 0, first.stderr
    checkpoint = "tensorboard_logs/first/checkpoints/epoch03.keras"
    assert (tmp_path / checkpoint).is_file()
    fresh, last = epoch_losses(first.stdout)[0], epoch_losses(first.stdout)[-1]
    assert last < fresh / 3  # It learnt something to continue from.

    more = train(*common, "--epochs", "1", "--model", checkpoint, "--run_name", "more")
    assert more.returncode == 0, more.stderr
    assert "columns: 4 numeric" in more.stdout
    # The saved model already ends in its Normalization(invert=True): the targets are not standardised twice.
    assert ("targets as they are: --target_scaling applies to the models the runner builds, "
            f"not {checkpoint}") in more.stdout
    (continued,) = epoch_losses(more.stdout)
    assert continued < 1.5 * last < fresh / 2, (fresh, last, continued)  # From the saved weights, in prices.

    # A table of other columns, and data that is not a table, are refused, nothing written.
    write_house(tmp_path / "other.csv", header="a,b,x,d,price")
    wrong = train("--dataset", "csv:other.csv", "--dataset_label_column", "price", "--model", checkpoint)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --model={checkpoint!r}: the model takes the columns a, b, c, d, not the table's "
        "a, b, d, x (the model lacks x; the table lacks c)")
    images = train("--dataset", "digits", "--model", checkpoint)
    assert images.returncode == 2
    assert images.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --model={checkpoint!r}: the model takes a table's columns (a, b, c, d), "
        "but the dataset is not a table (a CSV file)")
    assert sorted(p.name for p in (tmp_path / "tensorboard_logs").iterdir()) == ["first", "more"]


BUILDERS = '''import keras


def build_task(input_shape, num_classes, task, width=8):
    assert task == "binary", task
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(num_classes, activation="sigmoid")])


def build_depth(input_shape, num_classes, depth):
    return build_task(input_shape, num_classes, "binary", width=depth)


def build_positional(input_shape, num_classes, /, task):
    return None


def build_shape_only(input_shape, *, task):
    return None
'''


@pytest.fixture
def yesno(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    (tmp_path / "yesno.csv").write_text("a,b,c,label\n" + "\n".join(
        f"{a:.3f},{b:.3f},{c:.3f},{'yes' if a + b > 0 else 'no'}" for a, b, c in x) + "\n")
    (tmp_path / "my.py").write_text(BUILDERS)
    return ("--dataset", "csv:yesno.csv", "--task", "binary")


def test_a_builder_that_requires_task_is_called_with_it(train, tmp_path, yesno):
    dry = train("--model", "my.py:build_task", *yesno, "--dry_run", "--model_args", "width=4")
    assert dry.returncode == 0, dry.stderr
    result = train("--model", "my.py:build_task", *yesno, "--epochs", "1", "--verbose", "0", "--run_name", "task",
                   "--model_args", "width=4")
    assert result.returncode == 0, result.stderr  # The builder asserts it was told the task.
    assert (tmp_path / "tensorboard_logs" / "task" / "results.json").is_file()


@pytest.mark.parametrize("extra", [(), ("--dry_run",)])
def test_a_builder_requiring_what_nothing_passes_is_refused_alike_before_tensorflow_and_by_dry_run(train, yesno, extra):
    result = train("--model", "my.py:build_depth", *yesno, *extra)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train.py: error: --model='my.py:build_depth': the function requires depth, which the runner does not pass "
        "(it passes input_shape, num_classes and task, and --model_args); give it a default or a value in --model_args"]
    given = train("--model", "my.py:build_depth", *yesno, "--dry_run", "--model_args", "depth=3")
    assert given.returncode == 0, given.stderr


def test_the_builders_message_says_what_is_missing(tmp_path, monkeypatch):
    from kerasrun.models.plugin import load_builder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.py").write_text(BUILDERS)
    assert load_builder("my.py:build_task").__name__ == "build_task"
    with pytest.raises(UsageError) as caught:
        load_builder("my.py:build_positional")
    assert str(caught.value) == (
        "--model='my.py:build_positional': the function must accept the keyword arguments input_shape and "
        "num_classes; input_shape and num_classes are positional-only; its signature is "
        "(input_shape, num_classes, /, task)")
    with pytest.raises(UsageError, match=r"; it has no parameter num_classes; its signature is \(input_shape, \*, task\)$"):
        load_builder("my.py:build_shape_only")
    with pytest.raises(UsageError, match=r"the function requires depth, .*; its signature is "):
        load_builder("my.py:build_depth")
    assert load_builder("my.py:build_depth", model_args={"depth": 3}).__name__ == "build_depth"
