"""Differentiable augmentation (DiffAugment / ADA): transforms, gradients, seeds, p."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo.layers.diff_augment import DifferentiableAugmentation, global_batch_random, parse_policy

SEED = tf.constant([3, 4], tf.int64)


def images(n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(0.1, 0.9, (n, size, size, 3)).astype("float32"))


def test_policy_and_options_are_checked():
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="policy"):
        parse_policy("colour")
    with pytest.raises(ValueError, match="probability must be in"):
        DifferentiableAugmentation(probability=1.5)
    with pytest.raises(ValueError, match="adjust_every"):
        DifferentiableAugmentation(adjust_every=0)
    with pytest.raises(ValueError, match="data_range"):
        DifferentiableAugmentation(data_range=(1, 0))


def test_probability_zero_is_identity_and_one_changes_every_image():
    x = images()
    off = DifferentiableAugmentation(probability=0.0)
    np.testing.assert_array_equal(off(x, SEED).numpy(), x.numpy())
    on = DifferentiableAugmentation(probability=1.0)
    out = on(x, SEED).numpy()
    assert out.shape == x.shape
    assert all(not np.allclose(out[i], x.numpy()[i]) for i in range(len(x)))


def test_same_seed_same_transform_real_and_fake_alike():
    """The layer is a function of (images, seed): a real and a fake batch
    holding the same pixels are transformed identically; another seed
    draws other transforms."""
    augment = DifferentiableAugmentation()
    x = images()
    real_seen = augment(x, SEED).numpy()
    fake_seen = augment(tf.identity(x), SEED).numpy()
    np.testing.assert_array_equal(real_seen, fake_seen)
    other = augment(x, tf.constant([3, 5], tf.int64)).numpy()
    assert not np.allclose(real_seen, other)


def test_translation_moves_content_and_fills_with_mid_grey():
    augment = DifferentiableAugmentation("translation", translation_ratio=0.25)
    x = np.zeros((8, 8, 8, 1), "float32")
    x[:, 4, 4, 0] = 1.0  # one bright pixel per image
    out = augment(tf.constant(x), SEED).numpy()
    for image in out:
        bright = np.argwhere(image[..., 0] == 1.0)
        assert len(bright) <= 1
        if len(bright):  # moved by at most 2 pixels (0.25 * 8) per axis
            assert np.abs(bright[0] - [4, 4]).max() <= 2
        values = set(np.unique(image).tolist())
        assert values <= {0.0, 0.5, 1.0}  # black content, grey fill
    assert any((image == 0.5).any() for image in out)  # some image was shifted


def test_cutout_blanks_one_square():
    augment = DifferentiableAugmentation("cutout", cutout_ratio=0.5)
    x = np.ones((6, 16, 16, 3), "float32")
    out = augment(tf.constant(x), SEED).numpy()
    for image in out:
        hole = image[..., 0] == 0.5
        rows, cols = np.where(hole.any(axis=1))[0], np.where(hole.any(axis=0))[0]
        assert 0 < hole.sum() <= 64
        assert hole.sum() == len(rows) * len(cols)  # a (clipped) rectangle
        assert len(rows) <= 8 and len(cols) <= 8
        assert hole[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


def test_color_stays_an_affine_map_of_the_images():
    augment = DifferentiableAugmentation("color")
    x = images()
    a = augment(x, SEED).numpy()
    b = augment(2.0 * x, SEED).numpy()
    c = augment(3.0 * x, SEED).numpy()
    # Affine in x for a fixed seed: f(3x) - f(2x) == f(2x) - f(x).
    np.testing.assert_allclose(c - b, b - a, atol=1e-5)


def test_gradients_flow_through_every_transform():
    """For a fixed seed the augmentation is affine in the images, so the
    gradient of <f(x), r> must predict f(x + v) - f(x) exactly."""
    augment = DifferentiableAugmentation()
    x = images(4)
    rng = np.random.default_rng(1)
    r = tf.constant(rng.normal(size=x.shape).astype("float32"))
    v = tf.constant(rng.normal(size=x.shape).astype("float32")) * 0.1
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(augment(x, SEED) * r)
    gradient = tape.gradient(value, x)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0
    predicted = float(tf.reduce_sum(gradient * v))
    actual = float(tf.reduce_sum((augment(x + v, SEED) - augment(x, SEED)) * r))
    assert predicted == pytest.approx(actual, rel=1e-3, abs=1e-3)
    # Cutout zeroes the gradient of the pixels it blanks, nothing else.
    cut = DifferentiableAugmentation("cutout")
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(cut(x, SEED))
    grad = tape.gradient(value, x).numpy()
    seen = cut(x, SEED).numpy()
    np.testing.assert_array_equal(grad == 0, (seen == 0.5) & (x.numpy() != 0.5))


def test_adaptive_probability_follows_the_overfitting_heuristic():
    ada = DifferentiableAugmentation(probability=0.0, adaptive=True, target=0.6, adjust_every=4,
                                     adjust_speed_images=80)
    overfit = tf.ones((10, 1))  # D calls every real image real: r_t = 1 > 0.6
    for step in range(3):
        ada.adapt(overfit, step)
    assert float(ada.probability) == 0.0  # not yet: every 4 steps
    r_t = ada.adapt(overfit, 3)
    assert float(r_t) == pytest.approx(1.0)
    assert float(ada.probability) == pytest.approx(40 / 80)  # 40 images over the interval
    assert float(ada.sign_count) == 0.0  # accumulators reset
    unsure = -tf.ones((10, 1))  # r_t = -1 < 0.6: p falls back, clipped at 0
    for step in range(4, 12):
        ada.adapt(unsure, step)
    assert float(ada.probability) == 0.0
    # p, sign sum and count are saved state of the layer.
    assert {v.name for v in ada.weights} == {"probability", "sign_sum", "sign_count"}
    fixed = DifferentiableAugmentation(probability=0.3)
    fixed.adapt(overfit, 3)
    assert float(fixed.probability) == pytest.approx(0.3)


def test_config_round_trip():
    layer = DifferentiableAugmentation("translation,cutout", probability=0.4, adaptive=True,
                                       data_range=(-1.0, 1.0), name="aug")
    again = DifferentiableAugmentation.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert again.policy == ("translation", "cutout")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert float(restored.probability) == pytest.approx(0.4)


def test_two_replicas_augment_their_rows_of_the_global_batch(mirrored):
    augment = DifferentiableAugmentation()
    x = images(8)
    single = augment(x, SEED).numpy()
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(8)
    batch = next(iter(mirrored.experimental_distribute_dataset(dataset)))
    result = mirrored.run(lambda b: augment(b, SEED), args=(batch,))
    parts = [t.numpy() for t in mirrored.experimental_local_results(result)]
    np.testing.assert_allclose(np.concatenate(parts), single, atol=1e-6)
    values = mirrored.run(lambda b: global_batch_random(SEED, tf.shape(b)[:1]), args=(batch,))
    drawn = np.concatenate([t.numpy() for t in mirrored.experimental_local_results(values)])
    np.testing.assert_array_equal(drawn, global_batch_random(SEED, [8]).numpy())
