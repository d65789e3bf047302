"""One worker of the two-process MultiWorkerMirroredStrategy test.

Run by tests/test_multiworker.py with TF_CONFIG set; trains the toy model
through `train_gan` into a shared run folder and, on the chief, saves every
variable to `<out>/state.npz`.
"""

import os
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gan_zoo.schedules import TrainingPlan, UpdateSchedule  # noqa: E402
from gan_zoo.training.distribute import is_chief  # noqa: E402
from gan_zoo.training.loop import train_gan  # noqa: E402
from gan_zoo.experiments import Run  # noqa: E402
from toy_adversarial import ToyAdversarial, state_of, toy_batches  # noqa: E402

STEPS, EPOCHS, BATCH = 3, 2, 8


def stream(start_epoch, epochs):
    dataset = toy_batches(start_epoch * STEPS, (epochs - start_epoch) * STEPS, batch=BATCH)
    return types.SimpleNamespace(dataset=dataset, steps_per_epoch=STEPS)


def train(out, strategy):
    with strategy.scope():
        model = ToyAdversarial(
            schedule=UpdateSchedule.ratio(2, critic=("fd", "fe"), both=("fd", "fe", "g")),
            ema=True, seed=1,
        )
        model.compile()
    train_gan(
        model, stream, Run(out, {}), plan=TrainingPlan(epochs=EPOCHS, batch_size=BATCH),
        sample_every=0, verbose=0,
    )
    return model


if __name__ == "__main__":
    out = sys.argv[1]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    model = train(out, strategy)
    if is_chief(strategy):
        np.savez(os.path.join(out, "state.npz"), **state_of(model))
    print("worker done", flush=True)
