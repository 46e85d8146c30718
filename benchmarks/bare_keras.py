"""A hand-written Keras training script, as users write one: what benchmarks/bench.py compares train.py with.

    python benchmarks/bare_keras.py [--repeat 20] [--batch_size 32] [--epochs 8] [--steps_per_execution 1]
                                    [--backend tensorflow|jax]

Loads the bundled digits with NumPy, scales them to [0, 1], adds a channel
axis, repeats the training set --repeat times, builds train.py's default
model (`mlp`, taken from the repository so that it is the same model),
compiles it as train.py does by default (with the steps per execution given) and calls
`model.fit` on the arrays, on the Keras backend given.
With $EPOCH_TIMER_FILE set, the wall time of every epoch is written there
(see epoch_timer.py); with $TIME_MARK_FILE set, the time the first step
finished, and training stops there.
"""

import argparse
import os
import runpy
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DIGITS = os.path.join(REPO, "datasets", "digits.npz")
DIGITS_MAX_VALUE = 16
LEARNING_RATE = 1e-3
SEED = 0


def load_digits(repeat=1):
    """Returns `((x_train, y_train), (x_val, y_val))`: the digits in [0, 1], (n, 8, 8, 1), training set repeated."""
    with np.load(DIGITS) as arrays:
        x_train, y_train = arrays["x_train"], arrays["y_train"]
        x_val, y_val = arrays["x_val"], arrays["y_val"]
    x_train = (x_train.astype("float32") / DIGITS_MAX_VALUE)[..., np.newaxis]
    x_val = (x_val.astype("float32") / DIGITS_MAX_VALUE)[..., np.newaxis]
    return (np.concatenate([x_train] * repeat), np.concatenate([y_train] * repeat)), (x_val, y_val)


def build_model(steps_per_execution=1):
    """Returns train.py's default model, compiled as train.py compiles it by default."""
    import keras

    runpy.run_path(os.path.join(REPO, "__init__.py"))
    from kerasrun import models
    from kerasrun.models import Head

    model = models.build("mlp", input_shape=(8, 8, 1), head=Head("classification", 10))
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="times the training set is repeated")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps_per_execution", type=int, default=1)
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = args.backend
    import keras

    sys.path.insert(0, HERE)
    from epoch_timer import TIME_MARK_FILE_ENV, EpochTimer, FirstStepTimer

    keras.utils.set_random_seed(SEED)
    (x, y), (x_val, y_val) = load_digits(args.repeat)
    model = build_model(args.steps_per_execution)
    callbacks = [FirstStepTimer() if os.environ.get(TIME_MARK_FILE_ENV) else EpochTimer()]
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_val, y_val), verbose=0, callbacks=callbacks)


if __name__ == "__main__":
    main()
