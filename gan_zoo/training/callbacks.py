"""Callbacks shared by the recipes: sample grids, learning-rate decay,
downstream evaluation and per-epoch metric logs."""

import json
import pathlib
import time

import keras
import numpy as np

from gan_zoo.images import save_image_grid


class SampleGrid(keras.callbacks.Callback):
    """Saves a grid of the model's samples every few epochs.

    The grid is the model's `preview(seed, inputs, per_row, rows)`: for a
    latent generator fixed noise (and labels: one row per class), so
    successive grids show how the same latent points evolve; for an image
    translator the fixed `inputs` and their translations. Only the chief
    writes under multi-worker training.

    Args:
        directory: where `samples-epoch-XXXX.png` files go.
        every_epochs: save every this many epochs (and after the last).
        per_row: images per row (per class for a conditional generator).
        rows: rows of an unconditional grid.
        seed: seed of the fixed latent vectors.
        inputs: fixed input images in [0, 1] for an image translator.
        upscale: nearest-neighbour magnification, so small patches (IDC's
            50x50) are large enough to inspect.
    """

    def __init__(self, directory, every_epochs=1, per_row=8, rows=4, seed=1234, inputs=None, upscale=1):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.every_epochs = int(every_epochs)
        self.per_row = int(per_row)
        self.rows = int(rows)
        self.seed = int(seed)
        self.inputs = inputs
        self.upscale = int(upscale)
        self.paths = []

    def _save(self, epoch):
        from gan_zoo.training.distribute import is_chief

        if not is_chief(self.model.distribute_strategy):
            return
        images, rows = self.model.preview(
            seed=self.seed, inputs=self.inputs, per_row=self.per_row, rows=self.rows
        )
        if self.upscale > 1:
            images = np.repeat(np.repeat(images, self.upscale, axis=1), self.upscale, axis=2)
        path = save_image_grid(self.directory / f"samples-epoch-{epoch + 1:04d}.png", images, rows)
        self.paths.append(path)

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every_epochs == 0 or last:
            self._save(epoch)


class ScheduledLearningRate(keras.callbacks.Callback):
    """Sets every optimizer group's rate at each step from a `TrainingPlan`.

    The rate of group g at global step t is `base[g] * schedule.factor(t,
    steps_per_epoch)`, with `base` the rates the model recorded when it was
    compiled (`model.base_learning_rates`, kept in `.keras` files and never
    read back from the optimizer, whose rate a restored run has already
    decayed). The step counts from the first epoch, so a resumed run gets
    the same rates. Rates are logged per epoch as `lr_<group>_optimizer`.

    Args:
        plan: a `gan_zoo.schedules.TrainingPlan` (its `schedule_for(group)`).
        steps_per_epoch: steps in one epoch.
        step_offset: steps of the first epoch done before this fit (a
            mid-epoch resume).
    """

    def __init__(self, plan, steps_per_epoch, step_offset=0):
        super().__init__()
        self.plan = plan
        self.steps_per_epoch = int(steps_per_epoch)
        self.step_offset = int(step_offset)
        self._epoch = 0
        self._first_epoch = None
        self._set = {}

    def on_train_begin(self, logs=None):
        if not getattr(self.model, "base_learning_rates", None):
            raise ValueError(
                f"{type(self.model).__name__} records no base learning rates; compile it first."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        offset = self.step_offset if self._epoch == self._first_epoch else 0
        step = self._epoch * self.steps_per_epoch + offset + batch
        for group, base in self.model.base_learning_rates.items():
            rate = base * self.plan.schedule_for(group).factor(step, self.steps_per_epoch)
            if self._set.get(group) != rate:  # assign only on change
                self.model.optimizer_for(group).learning_rate = rate
                self._set[group] = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for group in self.model.base_learning_rates:
                rate = self.model.optimizer_for(group).learning_rate
                logs[f"lr_{group}_optimizer"] = float(keras.ops.convert_to_numpy(rate))


class EvaluationHook(keras.callbacks.Callback):
    """Calls `evaluate(model, epoch) -> dict` every few epochs and logs it.

    The hook point for downstream evaluation: e.g. train a classifier on real
    plus generated images and score it on held-out patients, or score the
    semi-supervised discriminator on validation patients. Results go into
    the epoch logs (so History, TensorBoard and `MetricsLogger` see them)
    under `prefix`, and into `self.results`.

    Args:
        evaluate: callable (model, epoch) -> {name: float}.
        every_epochs: run every this many epochs (and after the last).
        prefix: prepended to each result name in the logs.
    """

    def __init__(self, evaluate, every_epochs=1, prefix="eval_"):
        super().__init__()
        self.evaluate = evaluate
        self.every_epochs = int(every_epochs)
        self.prefix = prefix
        self.results = []

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every_epochs and not last:
            return
        result = dict(self.evaluate(self.model, epoch))
        self.results.append({"epoch": epoch + 1, **result})
        if logs is not None:
            for name, value in result.items():
                if isinstance(value, (int, float, np.floating, np.integer)):
                    logs[self.prefix + name] = float(value)


class MetricsLogger(keras.callbacks.Callback):
    """Appends each epoch's logs to a JSON-lines file (one object per epoch).

    Only the chief writes under multi-worker training (every worker computes
    the same global logs).

    Besides the logs, each line has `seconds` (the whole epoch, epoch-end
    callbacks included), `train_seconds` (from the epoch's start to its last
    train step: the figure for throughput) and `fit_epoch` (1 for the first
    epoch of this `fit` call, whose time includes tracing the train step).

    Args:
        path: the `.jsonl` file; appended to, so a resumed run continues it.
    """

    def __init__(self, path):
        super().__init__()
        self.path = pathlib.Path(path)
        self._epoch_start = self._last_batch_end = None
        self._fit_epoch = 0

    def on_train_begin(self, logs=None):
        self._fit_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._fit_epoch += 1
        self._epoch_start = self._last_batch_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {
            "epoch": epoch + 1,
            "fit_epoch": self._fit_epoch,
            "seconds": time.perf_counter() - self._epoch_start,
            "train_seconds": self._last_batch_end - self._epoch_start,
        }
        for name, value in (logs or {}).items():
            record[name] = float(value)
        from gan_zoo.training.distribute import is_chief

        if not is_chief(self.model.distribute_strategy):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
