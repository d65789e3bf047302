"""CycleGAN's image pool (gan_zoo.layers.image_pool.ImagePool)."""

import numpy as np
import tensorflow as tf

from gan_zoo.layers.image_pool import ImagePool


def batch(values):
    """A batch of 1x1x1 images holding `values` (so returned images name themselves)."""
    return tf.constant(np.asarray(values, np.float32).reshape(-1, 1, 1, 1))


def values(images):
    return np.asarray(images).reshape(-1).tolist()


def test_fills_first_then_swaps_or_keeps_each_image_with_probability_one_half():
    pool = ImagePool(pool_size=4)
    first = pool.query(batch([1, 2, 3, 4]), seed=tf.constant([0, 0], tf.int64))
    assert values(first) == [1, 2, 3, 4]  # filling: every image is stored and returned
    assert int(pool.count.numpy()) == 4

    returned_stored = kept_new = 0
    for step in range(200):
        before = values(pool.images.numpy())
        new = 100 + step
        out = values(pool.query(batch([new]), seed=tf.constant([1, step], tf.int64)))[0]
        after = values(pool.images.numpy())
        if out == new:  # kept: the pool is unchanged
            kept_new += 1
            assert after == before
        else:  # swapped: a stored image comes back and the new one takes its slot
            returned_stored += 1
            assert out in before
            slot = before.index(out)
            assert after[slot] == new and after[:slot] + after[slot + 1:] == before[:slot] + before[slot + 1:]
    assert int(pool.count.numpy()) == 4
    # Binomial(200, 1/2): 100 +/- 7; 60 is more than 5 standard deviations away.
    assert 60 < returned_stored < 140 and returned_stored + kept_new == 200


def test_same_seed_same_draws_and_size_zero_disables():
    first, second = ImagePool(pool_size=2), ImagePool(pool_size=2)
    for step in range(5):
        seed = tf.constant([7, step], tf.int64)
        a = first.query(batch([step * 10, step * 10 + 1]), seed)
        b = second.query(batch([step * 10, step * 10 + 1]), seed)
        np.testing.assert_array_equal(a, b)
    disabled = ImagePool(pool_size=0)
    assert values(disabled.query(batch([5, 6]), tf.constant([0, 0], tf.int64))) == [5, 6]
