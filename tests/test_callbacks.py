import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_zoo.models.dcgan import DCGAN
from gan_zoo.images import tile_images
from gan_zoo.schedules import LinearDecay, StepDecay, TrainingPlan
from gan_zoo.training.callbacks import (
    EvaluationHook,
    MetricsLogger,
    SampleGrid,
    ScheduledLearningRate,
)


def tiny(**overrides):
    return DCGAN(**{"image_size": 16, "base_filters": 4, "latent_dim": 8, **overrides})


def constant_data(labelled=False):
    images = tf.zeros((4, 16, 16, 3))
    element = (images, tf.constant([0, 1, 0, 1])) if labelled else images
    return tf.data.Dataset.from_tensors(element).repeat()


def test_tile_images_layout():
    images = np.stack([np.full((2, 3, 1), i / 5, np.float32) for i in range(5)])
    grid = tile_images(images, rows=2)  # 3 columns, 1px gaps, white padding
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1, 1)
    assert grid[0, 0, 0] == 0.0 and grid[3, 4, 0] == pytest.approx(4 / 5)
    assert grid[3, 8, 0] == 1.0  # the missing sixth image stays white


@pytest.mark.slow
def test_sample_grid_fixed_noise_and_one_row_per_class(tmp_path):
    gan = tiny(num_classes=2)
    gan.compile()
    grid = SampleGrid(tmp_path, every_epochs=2, per_row=3)
    gan.fit(constant_data(labelled=True), steps_per_epoch=1, epochs=3, callbacks=[grid], verbose=0)
    # Epoch 2 (every 2) and epoch 3 (the last).
    assert [p.name for p in grid.paths] == ["samples-epoch-0002.png", "samples-epoch-0003.png"]
    width, height = Image.open(grid.paths[0]).size
    assert (width, height) == (3 * 17 - 1, 2 * 17 - 1)  # 3 per row, 2 classes


@pytest.mark.slow
def test_scheduled_rates_follow_the_plan_per_step_and_survive_resume():
    schedule = LinearDecay(constant_epochs=2, total_epochs=6)
    assert [schedule.epoch_factor(e) for e in range(6)] == [1, 1, 1, 0.75, 0.5, 0.25]
    assert [StepDecay(0.9, every_steps=2).factor(s, 10) for s in (0, 1, 2, 5)] == pytest.approx(
        [1, 1, 0.9, 0.81])
    plan = TrainingPlan(epochs=6, batch_size=4, learning_rate={"g": schedule})
    gan = tiny()
    gan.compile()  # Adam 2e-4 for both
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((float(self.model.g_optimizer.learning_rate.numpy()),
                         float(self.model.d_optimizer.learning_rate.numpy())))

    history = gan.fit(constant_data(), steps_per_epoch=2, epochs=6,
                      callbacks=[ScheduledLearningRate(plan, 2), Record()], verbose=0).history
    expected = np.repeat([2e-4 * f for f in (1, 1, 1, 0.75, 0.5, 0.25)], 2)
    np.testing.assert_allclose([g for g, _ in seen], expected, rtol=1e-6)
    np.testing.assert_allclose([d for _, d in seen], 2e-4, rtol=1e-6)  # no schedule for "d"
    np.testing.assert_allclose(history["lr_g_optimizer"], expected[::2], rtol=1e-6)
    # A resumed run (a new callback, the optimizer's rate already decayed)
    # scales the base rate recorded at compile time, not the decayed one.
    gan.fit(constant_data(), steps_per_epoch=2, epochs=5, initial_epoch=4,
            callbacks=[ScheduledLearningRate(plan, 2), Record()], verbose=0)
    assert seen[-1][0] == pytest.approx(2e-4 * 0.5)


def test_linear_decay_validates_epochs():
    with pytest.raises(ValueError):
        LinearDecay(constant_epochs=5, total_epochs=3)


@pytest.mark.slow
def test_evaluation_hook_and_metrics_logger(tmp_path):
    gan = tiny()
    gan.compile()
    calls = []

    def evaluate(model, epoch):
        calls.append(epoch)
        return {"score": float(epoch) * 2, "note": "not a number"}

    hook = EvaluationHook(evaluate, every_epochs=2)
    logger = MetricsLogger(tmp_path / "metrics.jsonl")
    gan.fit(constant_data(), steps_per_epoch=1, epochs=3, callbacks=[hook, logger], verbose=0)
    assert calls == [1, 2]  # every 2 epochs and the last
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert "eval_score" not in lines[0] and lines[1]["eval_score"] == 2.0
    assert lines[2]["eval_score"] == 4.0 and lines[2]["seconds"] > 0
    assert {"d_loss", "g_loss"} <= set(lines[0])
    assert hook.results[-1] == {"epoch": 3, "score": 4.0, "note": "not a number"}
