"""Classifier training with the paper recipe: exact resume, arrays and records."""

import keras
import numpy as np
import pytest
from PIL import Image

import gan_zoo
from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.training.classify import predict_scores, train_classifier


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for i in range(24):
        label = i % 2
        image = rng.integers(0, 120, (36, 36, 3)) + 120 * label
        path = tmp_path / f"{i}.png"
        Image.fromarray(image.astype(np.uint8)).save(path)
        out.append(ImageRecord(str(path), label=label))
    return out


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")


def _train(records, backup, interrupt=False, name="small_cnn"):
    keras.utils.set_random_seed(7)
    options = {"width": 0.125} if name == "small_cnn" else {}
    model = gan_zoo.load(name, image_size=36, **options)
    train_classifier(
        model, records, epochs=4, batch_size=8, size_policy="error", seed=3,
        backup_dir=backup, callbacks=[Interrupt()] if interrupt else [], verbose=0,
    )
    return model


@pytest.mark.parametrize("name", ["small_cnn", "cruz_roa_cnn"])
@pytest.mark.slow
def test_interrupted_classifier_resumes_exactly(tmp_path, records, name):
    """AdamW with cosine decay / AdaGrad slots and the mean image come back."""
    reference = _train(records, tmp_path / "a", name=name)
    with pytest.raises(KeyboardInterrupt):
        _train(records, tmp_path / "b", interrupt=True, name=name)
    resumed = _train(records, tmp_path / "b", name=name)
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations) == 4 * 3
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(reference.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_arrays_and_records_give_the_same_scores(records):
    model = _train(records, None)
    images = np.stack([np.asarray(Image.open(r.path), np.float32) / 255 for r in records])
    from_records = predict_scores(model, records, size_policy="error")
    np.testing.assert_allclose(predict_scores(model, images, size_policy="error"), from_records, atol=1e-6)
    assert from_records.shape == (24,)


def _mix_model():
    keras.utils.set_random_seed(5)
    return gan_zoo.load("small_cnn", image_size=16, width=0.125)


def _mix_data():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (24, 16, 16, 3)).astype(np.float32)
    labels = np.array([0, 1] * 12)
    images[labels == 1] *= 0.5  # a learnable difference
    return (images, labels), (images[::-1].copy(), labels[::-1].copy())


def test_an_interrupted_mixed_training_resumes_exactly(tmp_path):
    from gan_zoo.training.augmentation import fit_on_mix

    real, synthetic = _mix_data()
    options = dict(epochs=4, batch_size=8, synthetic_fraction=0.25, seed=2, verbose=0)
    whole = _mix_model()
    fit_on_mix(whole, real, synthetic, **options)
    resumed = _mix_model()
    with pytest.raises(KeyboardInterrupt):
        fit_on_mix(resumed, real, synthetic, **options, backup_dir=tmp_path / "b", callbacks=[Interrupt()])
    resumed = _mix_model()
    fit_on_mix(resumed, real, synthetic, **options, backup_dir=tmp_path / "b")
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


class ScoreByEpoch(keras.callbacks.Callback):
    """Records each epoch's weights and validation AUROC (logged by the best-keeping callback)."""

    def __init__(self):
        super().__init__()
        self.weights, self.aurocs = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.aurocs.append(logs["validation_auroc"])


@pytest.mark.parametrize("keep", ["best", "last"])
def test_fit_keeps_the_best_validation_weights_or_the_last(tmp_path, keep):
    from gan_zoo.data.pipeline import training_stream
    from gan_zoo.training.classify import _as_source, fit_classifier

    (images, labels), _ = _mix_data()
    validation = (images[:12], labels[:12])
    model = _mix_model()

    def batches(start):
        return training_stream(_as_source((images, labels)), batch_size=8, seed=0, start_epoch=start,
                               epochs=6, image_size=(16, 16), value_range=(0.0, 1.0)).dataset

    seen = ScoreByEpoch()
    fit = fit_classifier(model, batches, epochs=6, steps_per_epoch=3, backup_dir=tmp_path / "b", validation=validation,
                         keep=keep, callbacks=[seen], verbose=0)
    best_epoch = int(np.argmax(seen.aurocs))  # the first of equal bests is kept
    assert fit.best["auroc"] == pytest.approx(max(seen.aurocs)) and fit.best["step"] == 3 * (best_epoch + 1)
    expected = seen.weights[best_epoch] if keep == "best" else seen.weights[-1]
    for a, b in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "b-best.weights.h5").is_file() and fit.kept == keep


def test_fit_refuses_what_it_cannot_do(tmp_path):
    from gan_zoo.training.classify import fit_classifier

    model = _mix_model()
    dataset = object()
    with pytest.raises(ValueError, match="needs validation"):
        fit_classifier(model, dataset, epochs=1, steps_per_epoch=1, keep="best")
    with pytest.raises(ValueError, match="function of the start epoch"):
        fit_classifier(model, dataset, epochs=1, steps_per_epoch=1, backup_dir=tmp_path)
    with pytest.raises(ValueError, match="keep must be"):
        fit_classifier(model, dataset, epochs=1, steps_per_epoch=1, keep="first")
