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
