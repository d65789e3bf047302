"""Tests of the classifier base class and the augmentation layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo.layers.augmentation import MeanImageSubtraction, RandomRot90
from gan_zoo.models.classifier import (
    SparseCategoricalCrossentropyWithSmoothing,
    ZooClassifier,
)


def _rotations(image):
    """The 4 rotations of an HWC image by multiples of 90 degrees."""
    return [np.rot90(image, k, axes=(0, 1)) for k in range(4)]


def _which_rotation(image, candidate):
    matches = [k for k, r in enumerate(_rotations(image)) if np.array_equal(r, candidate)]
    assert len(matches) == 1, "output is not a rotation of its input"
    return matches[0]


@keras.saving.register_keras_serializable(package="gan_zoo_test")
class TinyClassifier(ZooClassifier):
    """A minimal ZooClassifier subclass for testing the base class."""

    def __init__(self, image_size=8, num_classes=3, hidden=4, **kwargs):
        inputs = keras.Input((image_size, image_size, 3))
        x = RandomRot90(seed=3, name="rot90")(inputs)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(hidden, activation="relu")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
        super().__init__(
            inputs=inputs, outputs=outputs, num_classes=num_classes, **kwargs
        )
        self.image_size = image_size
        self.hidden = hidden

    def paper_optimizer(self):
        return keras.optimizers.SGD(learning_rate=0.05)

    def default_training(self):
        return {"epochs": 2, "batch_size": 4}

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "hidden": self.hidden})
        return config


# --- RandomRot90 -----------------------------------------------------------


def test_random_rot90_is_identity_at_inference():
    layer = RandomRot90(seed=0)
    images = np.random.default_rng(0).random((6, 5, 5, 2)).astype("float32")
    np.testing.assert_array_equal(layer(images), images)
    np.testing.assert_array_equal(layer(images, training=False), images)


def test_random_rot90_rotates_by_multiples_of_90_in_training():
    layer = RandomRot90(seed=0)
    image = np.arange(5 * 5 * 2, dtype="float32").reshape(5, 5, 2)  # asymmetric
    batch = np.repeat(image[None], 64, axis=0)
    outputs = keras.ops.convert_to_numpy(layer(batch, training=True))
    assert outputs.shape == batch.shape
    ks = {_which_rotation(image, out) for out in outputs}
    assert ks == {0, 1, 2, 3}  # 64 draws: all four appear (p(miss) ~ 4e-8)


def test_random_rot90_matches_numpy_rotation_per_sample():
    layer = RandomRot90(seed=1)
    images = np.random.default_rng(1).random((16, 4, 4, 3)).astype("float32")
    outputs = keras.ops.convert_to_numpy(layer(images, training=True))
    for image, out in zip(images, outputs):
        _which_rotation(image, out)


def test_random_rot90_seed_reproducible_and_serializable():
    images = np.random.default_rng(2).random((16, 4, 4, 1)).astype("float32")
    a = RandomRot90(seed=7)
    b = RandomRot90.from_config(a.get_config())
    assert b.seed == 7
    np.testing.assert_array_equal(a(images, training=True), b(images, training=True))


def test_random_rot90_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        RandomRot90()(np.zeros((1, 4, 5, 3), "float32"), training=True)


class _Probe(keras.layers.Layer):
    """Stores the last batch it saw while training in a variable."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.seen = self.add_weight(shape=shape, initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        if training:
            self.seen.assign(inputs)
        return inputs


def test_random_rot90_runs_inside_fit_and_not_in_predict():
    image = np.arange(4 * 4 * 3, dtype="float32").reshape(4, 4, 3) / 48.0
    images = np.repeat(image[None], 32, axis=0)
    probe = _Probe((32, 4, 4, 3))
    inputs = keras.Input((4, 4, 3))
    x = probe(RandomRot90(seed=0)(inputs))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(images, np.zeros(32, "int32"), batch_size=32, epochs=1, verbose=0)
    seen = keras.ops.convert_to_numpy(probe.seen)
    ks = [_which_rotation(image, out) for out in seen]
    assert len(set(ks)) > 1  # rotated inside the compiled train step
    # Inference: identity, so all 32 identical inputs give identical outputs.
    predictions = model.predict(images, verbose=0)
    np.testing.assert_allclose(predictions, predictions[:1].repeat(32, 0), atol=1e-6)


# --- MeanImageSubtraction ----------------------------------------------------


def test_mean_image_subtraction_adapts_to_the_data_mean():
    rng = np.random.default_rng(0)
    images = rng.random((50, 6, 6, 3)).astype("float32") * 0.5 + 0.2
    layer = MeanImageSubtraction()
    layer.adapt(images, batch_size=16)  # streams in 4 slices
    np.testing.assert_allclose(layer.mean.numpy(), images.mean(0), atol=1e-6)
    np.testing.assert_allclose(layer(images), images - images.mean(0), atol=1e-6)


@pytest.mark.parametrize("batched", [True, False])
def test_mean_image_subtraction_adapts_from_a_dataset(batched):
    images = np.random.default_rng(1).random((20, 4, 4, 3)).astype("float32")
    labels = np.zeros(20, "int32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if batched:
        dataset = dataset.batch(7)
    layer = MeanImageSubtraction()
    layer.adapt(dataset)
    np.testing.assert_allclose(layer.mean.numpy(), images.mean(0), atol=1e-6)


def test_mean_image_subtraction_errors_and_config():
    layer = MeanImageSubtraction(name="mean")
    layer.build((None, 4, 4, 3))
    assert layer.mean.trainable is False
    with pytest.raises(ValueError, match="do not match"):
        layer.adapt(np.zeros((2, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match="no images"):
        layer.adapt(np.zeros((0, 4, 4, 3), "float32"))
    assert MeanImageSubtraction.from_config(layer.get_config()).name == "mean"


# --- Loss ----------------------------------------------------------------------


def test_label_smoothing_loss():
    y_true = np.array([0, 2, 1])
    y_pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], "float32")
    plain = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    no_smoothing = SparseCategoricalCrossentropyWithSmoothing(0.0)(y_true, y_pred)
    np.testing.assert_allclose(no_smoothing, plain, rtol=1e-5)
    smoothed = SparseCategoricalCrossentropyWithSmoothing(0.3)(y_true, y_pred)
    targets = np.eye(3)[y_true] * 0.7 + 0.1
    expected = -(targets * np.log(y_pred)).sum(-1).mean()
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)
    config = SparseCategoricalCrossentropyWithSmoothing(0.3).get_config()
    assert config["label_smoothing"] == 0.3


# --- ZooClassifier ---------------------------------------------------------------


def test_zoo_classifier_contract():
    model = TinyClassifier()
    assert model.input_range == (0.0, 1.0)
    assert model.num_classes == 3
    probabilities = model.predict(np.random.rand(5, 8, 8, 3).astype("float32"), verbose=0)
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert model.default_training() == {"epochs": 2, "batch_size": 4}


def test_zoo_classifier_compile_defaults_and_overrides():
    model = TinyClassifier()
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "mse"


def test_zoo_classifier_config_and_keras_round_trip(tmp_path):
    model = TinyClassifier(hidden=5, name="tiny")
    config = model.get_config()
    assert config == {
        "name": "tiny",
        "trainable": True,
        "num_classes": 3,
        "image_size": 8,
        "hidden": 5,
    }
    clone = TinyClassifier.from_config(config)
    assert clone.count_params() == model.count_params()

    images = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
    labels = np.arange(8) % 3
    model.compile()
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, TinyClassifier)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    # The custom compile() was replayed and the optimizer state restored.
    assert isinstance(loaded.optimizer, keras.optimizers.SGD)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
