"""An interrupted recipe run, rerun, ends with the metrics of an uninterrupted one."""

import json

import keras
import pytest

from test_recipes import load_recipe

VOLATILE = {"seconds", "wall_seconds", "train_seconds", "train_images_per_second"}


def comparable(document):
    """metrics.json without wall times and the run folder's own path."""
    if isinstance(document, dict):
        return {k: comparable(v) for k, v in document.items() if k not in VOLATILE and k != "out"}
    if isinstance(document, list):
        return [comparable(v) for v in document]
    return document


class InterruptAtEpochEnd(keras.callbacks.Callback):
    """Ctrl-C at the end of `epoch` (before that epoch's backup is written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture
def demo(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path_factory.mktemp("demo")))


@pytest.mark.slow
def test_semi_cgan_recipe_interrupted_in_a_baseline_resumes_to_the_same_metrics(tmp_path, demo, monkeypatch):
    recipe = load_recipe("semi_cgan_idc")
    argv = ["--epochs", "1", "--width", "0.125", "--baselines", "small_cnn", "--baseline-epochs", "3",
            "--batch-size", "32", "--eval-every", "0"]
    recipe.main([*argv, "--out", str(tmp_path / "whole")])

    train_classifier = recipe.train_classifier
    monkeypatch.setattr(recipe, "train_classifier", lambda *a, **k: train_classifier(
        *a, **k, callbacks=[InterruptAtEpochEnd(1)]))
    with pytest.raises(KeyboardInterrupt):
        recipe.main([*argv, "--out", str(tmp_path / "resumed")])
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    assert any((tmp_path / "resumed" / "backup-small_cnn").iterdir())  # epoch 0 was kept
    monkeypatch.setattr(recipe, "train_classifier", train_classifier)
    recipe.main([*argv, "--out", str(tmp_path / "resumed")])

    whole, resumed = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed"))
    assert comparable(resumed) == comparable(whole)
    assert resumed["test_metrics"]["small_cnn"]["epochs"] == 3


@pytest.mark.slow
def test_dcgan_recipe_interrupted_in_training_resumes_to_the_same_metrics(tmp_path, demo, monkeypatch):
    recipe = load_recipe("dcgan_idc")
    argv = ["--epochs", "2", "--batch-size", "16", "--base-filters", "8", "--eval-epochs", "1",
            "--eval-width", "0.25"]
    recipe.main([*argv, "--out", str(tmp_path / "whole")])

    train_gan = recipe.train_gan
    monkeypatch.setattr(recipe, "train_gan", lambda *a, callbacks=(), **k: train_gan(
        *a, **k, callbacks=[*callbacks, InterruptAtEpochEnd(1)]))
    with pytest.raises(KeyboardInterrupt):
        recipe.main([*argv, "--out", str(tmp_path / "resumed")])
    extractor = tmp_path / "resumed" / "feature_extractor.keras"
    trained_first = extractor.read_bytes()
    monkeypatch.setattr(recipe, "train_gan", train_gan)
    recipe.main([*argv, "--out", str(tmp_path / "resumed")])

    # The resumed run measured KID in the extractor its first invocation trained.
    assert extractor.read_bytes() == trained_first
    whole, resumed = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed"))
    assert comparable(resumed) == comparable(whole)
