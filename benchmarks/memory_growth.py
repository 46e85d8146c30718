"""Does memory grow from epoch to epoch with every callback enabled?

    python benchmarks/memory_growth.py [--epochs 300] [--groups tensorboard,backup_and_restore | none] [--backend jax]

Runs train.py on the bundled digits for many short epochs with every
epoch-level callback group switched on (or only the groups named), records
the resident memory after each epoch, and prints the growth per 100 epochs
after a warm-up, by a least squares fit. The figures are kept in
benchmarks/README.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(os.path.dirname(HERE), "train.py")
WARM_UP_EPOCHS = 20

EVERY_CALLBACK = [
    "--early_stopping=True", "--early_stopping_patience=100000", "--early_stopping_monitor=val_loss",
    "--reduce_lr=True", "--reduce_lr_patience=5", "--reduce_lr_min_lr=0.0001",
    "--learning_rate_scheduler=True", f"--learning_rate_scheduler_schedule={HERE}/memory_probe.py:keep_rate",
    "--model_checkpoint=True", "--model_checkpoint_save_best_only=True",
    "--tensorboard=True", "--csv_logger=True", "--terminate_on_nan=True",
    "--backup_and_restore=True", "--swap_ema_weights=True", "--swap_ema_weights_swap_on_epoch=True",
    "--remote_monitor=True", "--remote_monitor_root=http://127.0.0.1:9",
    "--lambda_callback=True", f"--lambda_callback_on_epoch_end={HERE}/memory_probe.py:epoch_hook",
]


def group_flags(group):
    """Returns the flags of EVERY_CALLBACK that belong to one callback group."""
    flags = [flag for flag in EVERY_CALLBACK if flag.lstrip("-").startswith(group)]
    if not flags:
        raise SystemExit(f"memory_growth.py: no callback group {group!r} in EVERY_CALLBACK")
    return flags


def chosen_flags(groups):
    """Returns the callback flags for --groups: all of them, none, or those of the named groups."""
    if groups is None:
        return EVERY_CALLBACK
    if groups == "none":
        return []
    return [flag for group in groups.split(",") for flag in group_flags(group)]


def slope_per_100_epochs(points):
    """Least-squares slope of rss against epoch, in MiB per 100 epochs."""
    xs, ys = zip(*points)
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x in xs)
    return 100 * covariance / variance


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--groups", help="comma-separated callback groups to switch on (default: every one), "
                                         "or none")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                        help="train.py's --backend (default tensorflow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        probe_file = os.path.join(workdir, "memory.jsonl")
        command = [sys.executable, TRAIN, f"--backend={args.backend}", f"--epochs={args.epochs}", "--verbose=0",
                   f"--callbacks={HERE}/memory_probe.py:MemoryProbe", *chosen_flags(args.groups)]
        subprocess.run(command, cwd=workdir, check=True, env=dict(os.environ, MEMORY_PROBE_FILE=probe_file),
                       stdout=subprocess.DEVNULL)
        with open(probe_file) as stream:
            samples = [json.loads(line) for line in stream]
    steady = [(s["epoch"], s["rss_mib"]) for s in samples if s["epoch"] > WARM_UP_EPOCHS]
    report = {
        "backend": args.backend,
        "groups": args.groups or "every one",
        "epochs": len(samples),
        "rss_mib_after_warm_up": steady[0][1],
        "rss_mib_at_end": steady[-1][1],
        "growth_mib_per_100_epochs": round(slope_per_100_epochs(steady), 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
