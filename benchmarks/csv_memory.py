"""Peak memory of a CSV run held in memory against the same file streamed from disk.

    python benchmarks/csv_memory.py [--rows 1000000] [--epochs 1]

Writes a table of `--rows` rows (eight numeric columns, two text columns, a
few missing cells and a 0/1 label) into a temporary directory, trains
`train.py` on it for `--epochs` with `--dataset_cache memory` and then
`none`, each in a fresh process, and prints each run's peak resident memory
(the kernel's high-water mark of the train.py process) and wall time, with
the file's size. benchmarks/README.md keeps the latest figures.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(os.path.dirname(HERE), "train.py")
NUMERIC, TEXT = 8, 2
WORDS = ("red", "green", "blue", "amber", "violet")
CHUNK = 100_000


def write_table(path, rows, seed=0):
    """Writes the table in chunks, so this process stays small whatever `rows` is."""
    rng = np.random.default_rng(seed)
    header = [f"n{i}" for i in range(NUMERIC)] + [f"t{i}" for i in range(TEXT)] + ["label"]
    with open(path, "w") as stream:
        stream.write(",".join(header) + "\n")
        for start in range(0, rows, CHUNK):
            count = min(CHUNK, rows - start)
            numbers = rng.normal(size=(count, NUMERIC))
            words = rng.integers(0, len(WORDS), size=(count, TEXT))
            label = (numbers[:, 0] + (words[:, 0] == 0) > 0.5).astype(int)
            for row in range(count):
                cells = ["" if (start + row) % 97 == column else f"{numbers[row, column]:.5f}"
                         for column in range(NUMERIC)]
                cells += [WORDS[word] for word in words[row]]
                stream.write(",".join(cells) + f",{label[row]}\n")


def peak_run(command, cwd):
    """Runs `command` in a child that reports the train.py process's peak RSS; returns (exit code, MiB, seconds)."""
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
             "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    code, kib = result.stdout.split()
    return int(code), int(kib) / 1024, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "table.csv")
        write_table(path, args.rows)
        size_mib = os.path.getsize(path) / 2**20
        print(f"{args.rows} rows, {NUMERIC} numeric and {TEXT} text columns: {size_mib:.0f} MiB", flush=True)
        print("| --dataset_cache | peak RSS | wall time |\n|---|---|---|")
        for cache in ("memory", "none"):
            command = [sys.executable, TRAIN, f"--dataset=csv:{path}", f"--dataset_cache={cache}",
                       f"--epochs={args.epochs}", f"--batch_size={args.batch_size}", "--verbose=0",
                       "--validation_split=0.1", "--seed=0"]
            code, mib, seconds = peak_run(command, workdir)
            if code:
                sys.exit(f"csv_memory.py: train.py exited {code} with --dataset_cache {cache}")
            print(f"| {cache} | {mib:.0f} MiB | {seconds:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
