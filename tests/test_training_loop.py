"""train_gan: the model's plan, step checkpoints and several data streams."""

import contextlib
import importlib.util
import io
import json
import pathlib
import types

import keras
import numpy as np
import pytest

from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.streams import StreamSource, training_streams
from gan_zoo.schedules import TrainingPlan, UpdateSchedule
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import Run
from toy_adversarial import ToyAdversarial, state_of, toy_batches

RECIPES = pathlib.Path(__file__).resolve().parents[1] / "recipes"


def _epoch_rates(path):
    return [json.loads(line)["lr_g_optimizer"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_cli_and_recipe_train_semi_cgan_with_the_same_plan(tmp_path, monkeypatch):
    from gan_zoo import cli

    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "demo"))
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main([
            "train", "semi_cgan", "--layout", "idc", "--set", "width=0.0625", "--epochs", "3",
            "--batch-size", "64", "--out", str(tmp_path / "cli"),
        ])
    assert code == 0
    spec = importlib.util.spec_from_file_location("semi_cgan_idc", RECIPES / "semi_cgan_idc.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    with contextlib.redirect_stdout(io.StringIO()):
        recipe.main([
            "--epochs", "3", "--width", "0.0625", "--batch-size", "64", "--baselines", "",
            "--eval-every", "0", "--out", str(tmp_path / "recipe"),
        ])
    # The paper's plan: constant for the first half, then linear decay.
    expected = [2e-4, 2e-4, 1e-4]
    np.testing.assert_allclose(_epoch_rates(tmp_path / "cli" / "metrics.jsonl"), expected, rtol=1e-6)
    np.testing.assert_allclose(_epoch_rates(tmp_path / "recipe" / "metrics.jsonl"), expected, rtol=1e-6)


def _toy_run(out, stream, plan, interrupt=None, every_steps=None, model=None):
    if model is None:
        model = ToyAdversarial(
            schedule=UpdateSchedule.ratio(3, critic=("fd", "fe"), both=("fd", "fe", "g")), seed=2
        )
        model.compile()
    train_gan(
        model, stream, Run(out, {}), plan=plan, sample_every=0, verbose=0,
        checkpoint_every_steps=every_steps, callbacks=[interrupt] if interrupt else [],
    )
    return model


class KillAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step, self.seen = step, 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen == self.step:
            raise KeyboardInterrupt("simulated kill")
        self.seen += 1


def test_step_checkpoints_resume_in_the_middle_of_an_epoch(tmp_path):
    steps = 5

    def stream(start_epoch, epochs):
        dataset = toy_batches(start_epoch * steps, (epochs - start_epoch) * steps)
        return types.SimpleNamespace(dataset=dataset, steps_per_epoch=steps)

    plan = TrainingPlan(epochs=3, batch_size=8)
    reference = state_of(_toy_run(tmp_path / "reference", stream, plan))
    with pytest.raises(KeyboardInterrupt):
        _toy_run(tmp_path / "run", stream, plan, interrupt=KillAt(8), every_steps=2)
    saved = json.loads((tmp_path / "run" / "backup" / "state.json").read_text())
    assert (saved["completed_epochs"], saved["steps_into_epoch"]) == (1, 2)  # step 7 of 15
    resumed = state_of(_toy_run(tmp_path / "run", stream, plan, every_steps=2))
    assert sorted(resumed) == sorted(reference)
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


class ImageToy(ToyAdversarial):
    """The toy model fed by two image streams of 2x2 gray images."""

    def train_step(self, data):
        flat = {name: keras.ops.reshape(images, (-1, 4)) for name, images in data.items()}
        return super().train_step(flat)


def _write_images(folder, count, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    records = []
    for i in range(count):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (2, 2), dtype=np.uint8)).save(path)
        records.append(ImageRecord(str(path), label=0))
    return records


def test_two_unpaired_streams_one_device_equals_two_replicas(tmp_path, mirrored):
    sources = {
        "x": StreamSource(_write_images(tmp_path / "x", 24, 0), image_size=2, channels=1, labels=False),
        "y": StreamSource(_write_images(tmp_path / "y", 16, 1), image_size=2, channels=1,
                          value_range=(0.0, 2.0), flips=True, labels=False),
    }

    def stream(start_epoch, epochs):
        return training_streams(sources, batch_size=8, seed=4, start_epoch=start_epoch, epochs=epochs)

    plan = TrainingPlan(epochs=2, batch_size=8)
    model = ImageToy(ema=True, seed=6)
    model.compile()
    single = state_of(_toy_run(tmp_path / "single", stream, plan, model=model))
    with mirrored.scope():
        model = ImageToy(ema=True, seed=6)
        model.compile()
    replicated = state_of(_toy_run(tmp_path / "mirrored", stream, plan, model=model))
    for name in single:
        np.testing.assert_allclose(replicated[name], single[name], atol=1e-6, err_msg=name)
    assert int(model.optimizer_for("fd").iterations.numpy()) == 2 * 3  # 24 x images / 8 per batch
