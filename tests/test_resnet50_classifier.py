"""ciGAN's ResNet-50 classifier: architecture, paper optimizer, weights, curriculum."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.data.streams import StreamSource, mixed_batches
from gan_zoo.models.resnet50_classifier import (
    PAPER_DECAY,
    RandomWeightsWarning,
    ResNet50Classifier,
)
from gan_zoo.training.curriculum import Curriculum


@pytest.fixture(scope="module")
def model():
    with pytest.warns(RandomWeightsWarning, match="RANDOM initial weights"):
        return ResNet50Classifier(image_size=32, backbone_weights=None, seed=1)


def test_architecture_and_augmentation(model):
    assert model.input_shape == (None, 32, 32, 1) and model.output_shape == (None, 2)
    assert model.get_layer("rotation").factor == pytest.approx((-30 / 360, 30 / 360))
    assert model.get_layer("flip").mode == "horizontal"
    low, high = model.get_layer("scale").height_factor
    # Keras shows the image at 1 / (1 + f) of its size: f in [-0.2, 1/3] is 0.75-1.25.
    assert 1 / (1 + high) == pytest.approx(0.75) and 1 / (1 + low) == pytest.approx(1.25)
    backbone = model.get_layer("resnet50")
    assert backbone.count_params() == 23_587_712  # ResNet-50 without its top
    assert model.weights_used == "random" and not model.pretrained
    images = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(model(images), model(images))  # no augmentation at inference
    assert not np.allclose(model(images, training=True), model(images, training=True))


def test_paper_optimizer_decays_09_every_2000_steps(model):
    optimizer = model.paper_optimizer()
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.999, 1e-8)
    schedule = optimizer._learning_rate  # the Keras schedule behind the current rate
    for step in (0, 1999, 2000, 3999, 4000, 10000):
        expected = 1e-5 * PAPER_DECAY.factor(step, steps_per_epoch=1)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)
    assert PAPER_DECAY.factor(4000, 1) == pytest.approx(0.81)
    assert model.default_training() == {"steps": 10000, "batch_size": 32}


def test_options_are_checked():
    with pytest.raises(ValueError, match="image_size must be an integer >= 32; got 16"):
        ResNet50Classifier(image_size=16, backbone_weights=None)
    with pytest.raises(ValueError, match=r"scale_range must be \(low, high\) with low <= high"):
        ResNet50Classifier(image_size=32, backbone_weights=None, scale_range=(1.25, 0.75))
    with pytest.raises(ValueError, match="channels must be one of 1, 3; got 2"):
        ResNet50Classifier(image_size=32, channels=2, backbone_weights=None)
    with pytest.raises(FileNotFoundError, match="no such ResNet-50 weights file"):
        ResNet50Classifier(image_size=32, backbone_weights="/nonexistent/resnet.h5")


def test_imagenet_failure_is_one_clear_line(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(RuntimeError, match="could not be downloaded .* backbone_weights=None"):
        ResNet50Classifier(image_size=32)


@pytest.mark.slow
def test_trains_and_round_trips(model, tmp_path):
    keras.utils.set_random_seed(0)
    model.compile()
    images = np.random.default_rng(1).uniform(0, 1, (8, 32, 32, 1)).astype(np.float32)
    labels = np.array([0, 1] * 4)
    model.train_on_batch(images, labels)
    assert int(model.optimizer.iterations) == 1
    model.save(tmp_path / "r50.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)  # a reload is not a random start
        loaded = gan_zoo.load_model(tmp_path / "r50.keras")
    assert loaded.weights_used == "random" and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)
    built = gan_zoo.load("resnet50_classifier", image_size=32, backbone_weights=None, augment=False)
    assert "rotation" not in [layer.name for layer in built.layers]


def test_curriculum_yields_the_scheduled_real_share_at_each_stage():
    curriculum = Curriculum(every=3)  # the paper's 0.5, +0.2, 0.9 every 3 steps instead of 1,000
    assert [curriculum(s) for s in range(10)] == pytest.approx([0.5] * 3 + [0.7] * 3 + [0.9] * 4)
    assert Curriculum()(999) == 0.5 and Curriculum()(1000) == pytest.approx(0.7)
    assert Curriculum()(2000) == pytest.approx(0.9) and Curriculum()(9999) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="start <= final"):
        Curriculum(start=0.95)

    def source(value, count):  # real patches are white, synthetic ones black
        pixels = np.full((count, 8, 8, 1), value, np.uint8)
        labels = np.zeros(count, np.int32)
        dataset = tf.data.Dataset.from_tensor_slices({"image": pixels, "label": labels})
        return StreamSource(dataset, image_size=8, channels=1, value_range=(0.0, 1.0), cache="memory")

    stream = mixed_batches(source(255, 13), source(0, 29), curriculum, batch_size=10, seed=0, steps=10)
    real = [int(np.sum(batch["images"].numpy().max(axis=(1, 2, 3)) > 0.5)) for batch in stream.dataset]
    assert real == [5, 5, 5, 7, 7, 7, 9, 9, 9, 9]
    # Resuming at step 4 yields the same batches as the uninterrupted stream.
    resumed = mixed_batches(source(255, 13), source(0, 29), curriculum, batch_size=10, seed=0,
                            start_step=4, steps=10)
    again = [int(np.sum(batch["real"].numpy())) for batch in resumed.dataset]
    assert again == real[4:]
