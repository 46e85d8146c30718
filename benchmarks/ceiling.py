"""The model's compute ceiling: its train step on one cached batch, in a tight loop.

    python benchmarks/ceiling.py --batch_size 32 --steps 2000 --out ceiling.json

No input pipeline, no callbacks, no per-epoch work: only the step that
`model.fit` runs, again and again on one batch held in memory, timed two ways:

- "loop": `steps` steps inside one compiled TensorFlow loop, so not even a
  call from Python separates them. This is the machine's limit for the model.
- "per_call": one step per call from Python into Keras's compiled train
  function, as `model.fit` makes them with --steps_per_execution 1.

The test step is timed alike, so that an epoch with validation can be priced:
epoch-equivalent = train steps per epoch * train step + validation steps *
test step. bench.py does that sum.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WARM_UP_STEPS = 50
ROUNDS = 5  # Each step time is the median of this many timed rounds.


def median_seconds(run_steps, steps):
    """Returns the median over ROUNDS rounds of the seconds per step of `run_steps(steps)`."""
    run_steps(WARM_UP_STEPS)
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run_steps(steps)
        rounds.append((time.perf_counter() - started) / steps)
    return statistics.median(rounds)


def compiled_loop(step, batch):
    """Returns run(steps): `steps` calls of `step(batch)` inside one tf.function."""
    import tensorflow as tf

    @tf.function
    def loop(steps):
        for _ in tf.range(steps):
            step(batch)
        return steps

    return lambda steps: loop(tf.constant(steps)).numpy()


def calls_from_python(function, batch):
    """Returns run(steps): `steps` calls of Keras's compiled `function` from Python."""

    def run(steps):
        for _ in range(steps):
            outputs = function([batch])  # A list, not an iterator: the step runs on the batch directly.
        return {name: float(value) for name, value in outputs.items()}  # Waits for the last step.

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed round")
    parser.add_argument("--out", required=True, help="JSON file to write the step times to")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    sys.path.insert(0, HERE)
    from bare_keras import SEED, build_model, load_digits

    keras.utils.set_random_seed(SEED)
    (x, y), _ = load_digits()
    batch = (tf.constant(x[:args.batch_size]), tf.constant(y[:args.batch_size]))
    model = build_model()
    model.make_train_function()
    model.make_test_function()
    result = {"batch_size": args.batch_size}
    for name, train, test in (
        ("loop", compiled_loop(model.train_step, batch), compiled_loop(model.test_step, batch)),
        ("per_call", calls_from_python(model.train_function, batch), calls_from_python(model.test_function, batch)),
    ):
        result[name] = {"train_step_s": median_seconds(train, args.steps),
                        "test_step_s": median_seconds(test, args.steps)}
    with open(args.out, "w") as stream:
        json.dump(result, stream)


if __name__ == "__main__":
    main()
