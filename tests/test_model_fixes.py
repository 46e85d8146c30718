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
