import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.models.dcgan import DCGAN


@pytest.mark.parametrize("num_classes", [0, 2])
def test_generator_savedmodel_matches_keras(tmp_path, num_classes):
    gan = DCGAN(image_size=16, base_filters=4, latent_dim=8, num_classes=num_classes)
    names = gan_zoo.export(gan, tmp_path / "sm")
    assert names == ["generate"]
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    z = gan.latent(3, seed=0)
    signature = loaded.signatures["generate"]
    if num_classes:
        labels = tf.constant([0, 1, 1])
        out = signature(z=z, labels=labels)["images"]
        expected = gan.generate(z=z, labels=[0, 1, 1])
    else:
        out = signature(z=z)["images"]
        expected = gan.generate(z=z)
    assert out.dtype == tf.float32 and out.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_classifier_savedmodel_matches_keras(tmp_path):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    assert gan_zoo.export(model, tmp_path / "clf") == ["classify"]
    loaded = tf.saved_model.load(str(tmp_path / "clf"))
    images = tf.random.uniform((5, 8, 8, 3), seed=1)
    out = loaded.signatures["classify"](images=images)["probabilities"]
    np.testing.assert_allclose(out.numpy(), model(images).numpy(), atol=1e-6)


def test_export_under_bfloat16_has_float32_signature(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        gan = DCGAN(image_size=16, base_filters=4, latent_dim=8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    gan_zoo.export(gan, tmp_path / "bf16")
    loaded = tf.saved_model.load(str(tmp_path / "bf16"))
    signature = loaded.signatures["generate"]
    assert signature.structured_input_signature[1]["z"].dtype == tf.float32
    out = signature(z=gan.latent(2, seed=0))["images"]
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), gan.generate(z=gan.latent(2, seed=0)), atol=1e-6)
