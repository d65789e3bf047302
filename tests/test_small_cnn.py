"""Tests of the SmallCNN baseline classifier."""

import keras
import numpy as np
import pytest

import gan_zoo
from gan_zoo.models.classifier import SparseCategoricalCrossentropyWithSmoothing
from gan_zoo.models.small_cnn import SmallCNN


def _images(n, size=50, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3)).astype("float32")


def _conv_widths(model):
    return [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def test_output_is_a_probability_per_class():
    model = SmallCNN(width=0.125, num_classes=3)
    probabilities = model.predict(_images(4), verbose=0)
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert model.input_range == (0.0, 1.0)


def test_architecture_and_feature_map_sizes():
    model = SmallCNN()
    assert _conv_widths(model) == [32, 32, 64, 64, 128, 128, 256, 256]
    sizes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert sizes["stage1_block2_relu"] == (50, 50, 32)
    assert sizes["pool1"] == (25, 25, 32)
    assert sizes["stage2_block2_relu"] == (25, 25, 64)
    assert sizes["pool2"] == (13, 13, 64)
    assert sizes["pool3"] == (7, 7, 128)
    assert sizes["stage4_block2_relu"] == (7, 7, 256)
    assert sizes["gap"] == (256,)
    assert sizes["classifier"] == (2,)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.kernel_size == (3, 3) and not layer.use_bias
            follower = model.get_layer(layer.name.replace("_conv", "_bn"))
            assert isinstance(follower, keras.layers.BatchNormalization)
    assert isinstance(model.get_layer("dropout"), keras.layers.Dropout)
    assert model.get_layer("classifier").activation is keras.activations.softmax


def test_width_option():
    assert _conv_widths(SmallCNN(width=0.25)) == [8, 8, 16, 16, 32, 32, 64, 64]
    assert _conv_widths(gan_zoo.load("small_cnn", width=2))[-1] == 512


def test_augmentation_covers_the_8_symmetries_and_only_while_training():
    model = SmallCNN(width=0.125, seed=0)
    image = np.arange(5 * 5 * 3, dtype="float32").reshape(1, 5, 5, 3)
    # The augmentation layers accept any square size; use a small one.
    flip = model.get_layer("flip")
    rot90 = model.get_layer("rot90")
    batch = np.repeat(image, 256, axis=0)
    outputs = keras.ops.convert_to_numpy(rot90(flip(batch, training=True), training=True))
    symmetries = [np.rot90(m, k, axes=(0, 1)) for m in (image[0], image[0][:, ::-1]) for k in range(4)]
    seen = {next(i for i, s in enumerate(symmetries) if np.array_equal(s, out)) for out in outputs}
    assert seen == set(range(8))
    np.testing.assert_array_equal(rot90(flip(batch, training=False), training=False), batch)
    assert not {"flip", "rot90"} & {layer.name for layer in SmallCNN(width=0.125, augment=False).layers}


def test_inference_does_not_augment():
    model = SmallCNN(width=0.125)
    images = _images(4)
    predictions = model.predict(images, verbose=0)
    np.testing.assert_array_equal(model.predict(images, verbose=0), predictions)
    # A plain call is inference too (Keras' RandomFlip alone would flip here).
    for _ in range(3):
        np.testing.assert_allclose(model(images), predictions, atol=1e-6)


def test_compile_defaults_and_optimizer_schedule():
    model = SmallCNN(width=0.125)
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    scheduled = model.paper_optimizer(decay_steps=100)
    schedule = scheduled.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 100
    smoothed = SmallCNN(width=0.125, label_smoothing=0.1)
    smoothed.compile()
    assert isinstance(smoothed.loss, SparseCategoricalCrossentropyWithSmoothing)
    assert smoothed.loss.label_smoothing == 0.1
    assert set(model.default_training()) == {"epochs", "batch_size"}


@pytest.mark.slow
def test_learns_a_separable_problem():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(64) % 2
    images = rng.random((64, 16, 16, 3)).astype("float32") * 0.5
    images[labels == 1, :, :, 0] += 0.5  # class 1 is redder
    model = SmallCNN(image_size=16, width=0.25, dropout=0.0, seed=0)
    model.compile()
    before = model.evaluate(images, labels, verbose=0, return_dict=True)["loss"]
    # 40 steps: enough for the batch-norm moving statistics to settle too.
    model.fit(images, labels, batch_size=16, epochs=10, verbose=0)
    after = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before
    assert after["accuracy"] > 0.9


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    model = SmallCNN(width=0.125, label_smoothing=0.1, seed=2)
    images = _images(8, seed=1)
    model.compile()
    model.fit(images, np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "small_cnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SmallCNN)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    assert isinstance(loaded.loss, SparseCategoricalCrossentropyWithSmoothing)


def test_registry_load():
    spec = gan_zoo.get_spec("small_cnn")
    assert spec.task == "classifier"
    model = gan_zoo.load("small_cnn", width=0.5, seed=3)
    assert isinstance(model, SmallCNN) and model.width == 0.5 and model.seed == 3
    with pytest.raises(TypeError, match="Unknown option"):
        gan_zoo.load("small_cnn", depth=3)
