"""Per-example GAN losses and gradient penalties against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from gan_zoo import losses

REAL = np.array([2.0, -1.0, 0.5], np.float32)
FAKE = np.array([-3.0, 0.25, 1.5], np.float32)


def _softplus(x):
    return np.log1p(np.exp(x))


def _bce(logits, label):
    # -label * log(sigmoid(l)) - (1 - label) * log(1 - sigmoid(l))
    return label * _softplus(-logits) + (1.0 - label) * _softplus(logits)


def _np(x):
    return np.asarray(x)


def _check(actual, expected):
    actual = _np(actual)
    assert actual.dtype == np.float32
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_discriminator_bce_matches_formula():
    expected = _bce(REAL, 1.0) + _bce(FAKE, 0.0)
    _check(losses.discriminator_bce(REAL, FAKE), expected)
    # -log(sigmoid(2)) + -log(1 - sigmoid(-3)), written out for sample 0.
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert np.isclose(
        _np(losses.discriminator_bce(REAL, FAKE))[0],
        -np.log(sigmoid(2.0)) - np.log(1.0 - sigmoid(-3.0)),
        rtol=1e-5,
    )


def test_discriminator_bce_one_sided_label_smoothing():
    smoothed = losses.discriminator_bce(REAL, FAKE, real_label=0.9)
    _check(smoothed, _bce(REAL, 0.9) + _bce(FAKE, 0.0))
    assert not np.allclose(_np(smoothed), _np(losses.discriminator_bce(REAL, FAKE)))
    # Only the real term changes.
    np.testing.assert_allclose(
        _np(smoothed) - _np(losses.discriminator_bce(REAL, FAKE)),
        _bce(REAL, 0.9) - _bce(REAL, 1.0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_generator_bce_is_non_saturating():
    _check(losses.generator_bce(FAKE), _softplus(-FAKE))


def test_lsgan():
    _check(
        losses.discriminator_lsgan(REAL, FAKE),
        0.5 * ((REAL - 1.0) ** 2 + FAKE**2),
    )
    _check(losses.generator_lsgan(FAKE), (FAKE - 1.0) ** 2)
    # Hand value for sample 1: 0.5 * ((-1 - 1)^2 + 0.25^2) = 2.03125.
    assert np.isclose(_np(losses.discriminator_lsgan(REAL, FAKE))[1], 2.03125)


def test_relativistic_average():
    real_vs_fake = REAL - FAKE.mean()
    fake_vs_real = FAKE - REAL.mean()
    _check(
        losses.discriminator_relativistic_average(REAL, FAKE),
        _bce(real_vs_fake, 1.0) + _bce(fake_vs_real, 0.0),
    )
    _check(
        losses.generator_relativistic_average(REAL, FAKE),
        _bce(fake_vs_real, 1.0) + _bce(real_vs_fake, 0.0),
    )


@pytest.mark.parametrize(
    "name",
    [
        "discriminator_bce",
        "discriminator_lsgan",
        "discriminator_relativistic_average",
        "generator_relativistic_average",
    ],
)
def test_two_input_losses_accept_patch_and_column_logits(name):
    fn = getattr(losses, name)
    rng = np.random.default_rng(0)
    real = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    fake = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    patch = _np(fn(real, fake))
    assert patch.shape == (3,) and patch.dtype == np.float32
    # A [B, 1] column gives the same as the flat [B] vector.
    column = _np(fn(REAL[:, None], FAKE[:, None]))
    np.testing.assert_allclose(column, _np(fn(REAL, FAKE)), rtol=1e-6)


def test_patch_logits_average_over_positions():
    real = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1) / 6.0 - 1.0
    fake = -real[::-1]
    expected = (0.5 * ((real - 1.0) ** 2 + fake**2)).reshape(3, -1).mean(1)
    _check(losses.discriminator_lsgan(real, fake), expected)
    expected = _bce(fake, 1.0).reshape(3, -1).mean(1)
    _check(losses.generator_bce(fake), expected)
    # Patch relativistic reference: the batch mean at each position.
    rel_real = real - fake.mean(axis=0, keepdims=True)
    rel_fake = fake - real.mean(axis=0, keepdims=True)
    expected = (_bce(rel_real, 1.0) + _bce(rel_fake, 0.0)).reshape(3, -1).mean(1)
    _check(losses.discriminator_relativistic_average(real, fake), expected)


@pytest.mark.parametrize(
    "name", ["generator_bce", "generator_lsgan"]
)
def test_generator_losses_shapes_and_bfloat16_inputs(name):
    fn = getattr(losses, name)
    patch = np.ones((2, 3, 3, 1), np.float32)
    assert _np(fn(patch)).shape == (2,)
    out = fn(tf.constant(FAKE, tf.bfloat16))
    assert out.dtype == tf.float32 and out.shape == (3,)


def _images():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    return real, fake


def test_gradient_penalty_linear_critic():
    real, fake = _images()
    w = np.random.default_rng(2).normal(size=(4, 4, 2)).astype(np.float32)
    critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])  # noqa: E731
    penalty = losses.gradient_penalty(critic, real, fake)
    expected = (np.linalg.norm(w) - 1.0) ** 2
    _check(penalty, np.full(3, expected, np.float32))
    # Another target.
    _check(
        losses.gradient_penalty(critic, real, fake, target=2.0),
        np.full(3, (np.linalg.norm(w) - 2.0) ** 2, np.float32),
    )


def test_gradient_penalty_quadratic_critic_is_per_sample():
    real, fake = _images()
    alpha = np.array([0.0, 0.5, 0.9], np.float32)
    # f(x) = sum(x^2) per sample has gradient 2 x, so the penalty of sample i
    # is (2 ||x_hat_i|| - 1)^2 at x_hat_i = alpha_i real_i + (1 - alpha_i) fake_i.
    critic = lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3])  # noqa: E731
    penalty = _np(losses.gradient_penalty(critic, real, fake, alpha=alpha))
    a = alpha[:, None, None, None]
    x_hat = a * real + (1.0 - a) * fake
    expected = (2.0 * np.linalg.norm(x_hat.reshape(3, -1), axis=1) - 1.0) ** 2
    _check(penalty, expected.astype(np.float32))
    assert len(np.unique(np.round(penalty, 3))) == 3  # different samples differ
    # alpha = 0 interpolates onto the fake sample.
    assert np.isclose(penalty[0], (2.0 * np.linalg.norm(fake[0]) - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_with_patch_critic_and_random_alpha():
    real, fake = _images()
    # A patch critic [B, H, W, 1]: the summed output's gradient is 3 everywhere
    # on channel 0 and 0 on channel 1.
    critic = lambda x: 3.0 * x[..., :1]  # noqa: E731
    tf.random.set_seed(0)
    penalty = losses.gradient_penalty(critic, real, fake)
    _check(penalty, np.full(3, (3.0 * 4.0 - 1.0) ** 2, np.float32))


def test_gradient_penalty_is_differentiable_wrt_critic_weights():
    real, fake = _images()
    w = tf.Variable(tf.fill((4, 4, 2), 0.1))
    critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])  # noqa: E731
    with tf.GradientTape() as tape:
        penalty = tf.reduce_mean(losses.gradient_penalty(critic, real, fake))
    grad = tape.gradient(penalty, w)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    norm = np.linalg.norm(w.numpy())
    np.testing.assert_allclose(grad.numpy(), 2 * (norm - 1) * w.numpy() / norm, rtol=1e-4)


def test_relativistic_average_uses_the_global_batch_under_mirrored(mirrored):
    # Replicas get different halves of the batch: with replica-local means
    # the two halves would see different references.
    real = tf.constant([[0.5], [2.0], [-1.0], [3.0]])
    fake = tf.constant([[-0.5], [1.0], [0.0], [-2.0]])
    weight = tf.Variable(1.5)

    def per_replica_losses(real, fake):
        with tf.GradientTape() as tape:
            d = losses.discriminator_relativistic_average(weight * real, weight * fake)
            g = losses.generator_relativistic_average(weight * real, weight * fake)
            total = tf.nn.compute_average_loss(d + g, global_batch_size=4)
        return d, g, tape.gradient(total, weight)

    expected_d, expected_g, expected_grad = per_replica_losses(real, fake)
    with mirrored.scope():
        weight = tf.Variable(1.5)
    dataset = mirrored.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((real, fake))
    )
    d, g, grad = mirrored.run(per_replica_losses, args=next(iter(dataset)))
    got_d = tf.concat(mirrored.experimental_local_results(d), 0)
    got_g = tf.concat(mirrored.experimental_local_results(g), 0)
    grad = mirrored.reduce("sum", grad, axis=None)
    np.testing.assert_allclose(got_d, expected_d, rtol=1e-6)
    np.testing.assert_allclose(got_g, expected_g, rtol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5)


def _small_discriminator(policy, weights=None):
    """Four 5x5 stride-2 convolutions with DCGAN's N(0, 0.02) weights."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        init = keras.initializers.RandomNormal(stddev=0.02, seed=1)
        images = x = keras.Input((16, 16, 3))
        for filters in (8, 16, 32, 64):
            x = keras.layers.Conv2D(filters, 5, strides=2, padding="same", kernel_initializer=init)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Flatten()(x)
        logits = keras.layers.Dense(1, dtype="float32", kernel_initializer=init)(x)
        model = keras.Model(images, logits)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    if weights is not None:
        model.set_weights(weights)
    return model


def test_gradient_penalty_under_mixed_float16_is_loss_scaled():
    # The input gradient of a small critic underflows in float16 (about 1% of
    # its entries become exactly 0 here); scaled like the loss, it matches
    # float32.
    import keras

    critic32 = _small_discriminator("float32")
    critic16 = _small_discriminator("mixed_float16", critic32.get_weights())
    x = tf.random.stateless_uniform((8, 16, 16, 3), [1, 2], -1, 1)
    reference = losses._input_gradients(lambda t: critic32(t), x).numpy()
    scale = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()).initial_scale
    scaled = losses._input_gradients(lambda t: critic16(t), x, loss_scale=scale).numpy()
    assert (reference == 0).mean() == 0.0
    # Float16 carries 11 significant bits: an entry below 2^-10 of its
    # sample's largest can cancel to exactly 0 in float16 arithmetic however
    # the loss is scaled (with Eigen's float16 kernels, as on AMD CPUs or
    # with oneDNN off, one entry of 6,144 does, at 8e-5 of its sample's
    # largest). Underflow zeroes entries up to 24% of the largest: after
    # scaling, no entry above the rounding bound is 0.
    bound = 2.0**-10 * np.abs(reference).max(axis=1, keepdims=True)
    assert not np.any((scaled == 0) & (np.abs(reference) >= bound))
    norm32, norm16 = np.linalg.norm(reference, axis=1), np.linalg.norm(scaled, axis=1)
    error = np.abs(norm16 / norm32 - 1)
    # Float16 activations near a leaky-ReLU kink move one sample by ~1.5%;
    # the others agree to float16 precision.
    assert np.median(error) < 5e-4 and error.max() < 2e-2, error
    # The penalty itself uses the scaled gradient.
    fake = tf.zeros_like(x)
    penalty = losses.gradient_penalty(
        lambda t: critic16(t), x, fake, alpha=tf.ones([8]), target=0.0, loss_scale=scale
    )
    np.testing.assert_allclose(penalty, norm16**2 + 1e-12, rtol=1e-5)
    # Without the scale the float16 gradient loses entries far above it.
    unscaled = losses._input_gradients(lambda t: critic16(t), x).numpy()
    assert np.sum((unscaled == 0) & (np.abs(reference) >= bound)) > 10


def test_gradient_penalty_loss_scale_none_is_bit_identical():
    critic = _small_discriminator("float32")
    x = tf.random.stateless_uniform((4, 16, 16, 3), [3, 4], -1, 1)
    fake = tf.random.stateless_uniform((4, 16, 16, 3), [5, 6], -1, 1)
    alpha = tf.constant([0.1, 0.4, 0.6, 0.9])
    a = losses.gradient_penalty(lambda t: critic(t), x, fake, alpha=alpha)
    b = losses.gradient_penalty(lambda t: critic(t), x, fake, alpha=alpha, loss_scale=None)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
