"""An EMA generator: averaged on every step, used by generate and export, saved."""

import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.layers.ema import ExponentialMovingAverage


def _train(gan, steps=3):
    images = tf.random.stateless_uniform((8, 16, 16, 3), [1, 2], -1, 1)
    for _ in range(steps):
        gan.train_on_batch(images)


@pytest.mark.slow
def test_ema_generator_is_used_for_sampling_saved_and_exported(tmp_path):
    gan = gan_zoo.load("dcgan", image_size=16, base_filters=4, latent_dim=8, ema_half_life_steps=2)
    gan.compile()
    ema = gan.ema_of("generator")
    assert ema.decay == np.float32(0.5 ** 0.5) or abs(ema.decay - 0.5 ** 0.5) < 1e-9
    start = [s.numpy().copy() for s in ema.shadows]
    _train(gan)
    weights = [w.numpy() for w in gan.generator.trainable_weights]
    shadows = [s.numpy() for s in ema.shadows]
    # Each shadow moved from the start towards the weights, and lags them.
    moved = [np.abs(s - s0).max() for s, s0 in zip(shadows, start)]
    lag = [np.abs(s - w).max() for s, w in zip(shadows, weights)]
    assert max(moved) > 0 and max(lag) > 0

    z = gan.latent(4, seed=5)
    raw = gan.to_unit_range(gan.generator(z, training=False)).numpy()
    sampled = gan.generate(z=z)
    assert np.abs(sampled - raw).max() > 1e-6  # not the raw generator
    averaged = gan.sampling_network("generator")
    np.testing.assert_allclose(sampled, gan.to_unit_range(averaged(z, training=False)).numpy(), atol=1e-6)

    path = tmp_path / "dcgan.keras"
    gan.save(path)
    loaded = gan_zoo.load_model(path)
    for a, b in zip(loaded.ema_of("generator").shadows, ema.shadows):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(loaded.generate(z=z), sampled, atol=1e-6)

    gan_zoo.export(gan, tmp_path / "exported")
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.generate(z=z)["images"].numpy(), sampled, atol=1e-5)


def test_ema_update_rule_and_warmup():
    network = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1, use_bias=False)])
    network.layers[0].kernel.assign([[1.0], [1.0]])
    ema = ExponentialMovingAverage(decay=0.9)
    ema.track(network)
    network.layers[0].kernel.assign([[2.0], [0.0]])
    ema.update(network, step=tf.constant(100))
    np.testing.assert_allclose(ema.shadows[0].numpy(), [[1.1], [0.9]], rtol=1e-6)
    warm = ExponentialMovingAverage(decay=0.9, warmup=True)
    assert abs(float(warm.decay_at(tf.constant(0))) - 0.1) < 1e-7  # (1 + 0) / (10 + 0)
    assert abs(float(warm.decay_at(tf.constant(10**6))) - 0.9) < 1e-7
