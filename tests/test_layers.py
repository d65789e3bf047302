"""Shapes, serialization and numerics of the shared GAN layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo import layers as gl


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# (id, factory, input shapes, expected output shape, extra call kwargs)
CASES = [
    ("conv", lambda: gl.SpectralConv2D(4, 3, padding="same"), [(2, 6, 6, 3)], (2, 6, 6, 4), {}),
    (
        "conv_transpose",
        lambda: gl.SpectralConv2DTranspose(4, 4, strides=2, padding="same"),
        [(2, 3, 3, 5)],
        (2, 6, 6, 4),
        {},
    ),
    ("dense", lambda: gl.SpectralDense(3), [(2, 5)], (2, 3), {}),
    ("attention", lambda: gl.SelfAttention(), [(2, 4, 4, 16)], (2, 4, 4, 16), {}),
    (
        "attention_plain",
        lambda: gl.SelfAttention(reduction=4, spectral_normalization=False),
        [(2, 3, 3, 8)],
        (2, 3, 3, 8),
        {},
    ),
    (
        "adain_mlp",
        lambda: gl.AdaptiveInstanceNormalization(hidden_units=7),
        [(2, 4, 4, 6), (2, 5)],
        (2, 4, 4, 6),
        {},
    ),
    (
        "adain_affine",
        lambda: gl.AdaptiveInstanceNormalization(mode="affine"),
        [(2, 4, 4, 6), (2, 5)],
        (2, 4, 4, 6),
        {},
    ),
    (
        "noise_pixel",
        lambda: gl.NoiseInjection(per_pixel=True),
        [(2, 4, 4, 3)],
        (2, 4, 4, 3),
        {"noise": _rand(2, 4, 4, 1, seed=5)},
    ),
    (
        "noise_channel",
        lambda: gl.NoiseInjection(per_pixel=False),
        [(2, 4, 4, 3)],
        (2, 4, 4, 3),
        {"noise": _rand(2, 1, 1, 3, seed=5)},
    ),
    ("scoped_dropout", lambda: gl.ScopedDropout(0.3), [(2, 4, 4, 3)], (2, 4, 4, 3), {}),
    ("fused_batch_norm", lambda: gl.BatchNormalization(momentum=0.9), [(2, 4, 4, 3)], (2, 4, 4, 3), {}),
]
IDS = [case[0] for case in CASES]


def _inputs(shapes):
    arrays = [_rand(*shape, seed=i) for i, shape in enumerate(shapes)]
    return arrays if len(arrays) > 1 else arrays[0]


def _randomize_weights(layer, seed=0):
    # Positive values keep batch-norm variances valid; all that matters is that
    # the weights are non-trivial (attention gamma, noise scale are 0 at init).
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.uniform(0.1, 1.0, size=w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shapes(case):
    _, factory, shapes, expected, kwargs = case
    layer = factory()
    inputs = _inputs(shapes)
    assert tuple(layer(inputs, training=True, **kwargs).shape) == expected
    assert tuple(layer(inputs, training=False, **kwargs).shape) == expected
    assert tuple(layer.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])) == expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip(case):
    _, factory, shapes, _, kwargs = case
    layer = factory()
    inputs = _inputs(shapes)
    layer(inputs, training=False, **kwargs)
    _randomize_weights(layer)
    expected = layer(inputs, training=False, **kwargs)
    clone = type(layer).from_config(layer.get_config())
    clone(inputs, training=False, **kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        np.asarray(clone(inputs, training=False, **kwargs)), np.asarray(expected), rtol=1e-6
    )
    assert clone.get_config() == layer.get_config()


def test_config_keeps_constructor_arguments():
    config = gl.SpectralConv2D(4, 3, power_iterations=2, epsilon=1e-6).get_config()
    assert config["power_iterations"] == 2 and config["epsilon"] == 1e-6
    assert config["filters"] == 4
    config = gl.SelfAttention(reduction=4, spectral_normalization=False).get_config()
    assert config["reduction"] == 4 and config["spectral_normalization"] is False
    config = gl.AdaptiveInstanceNormalization(hidden_units=9, epsilon=1e-3).get_config()
    assert (config["mode"], config["hidden_units"], config["epsilon"]) == ("mlp", 9, 1e-3)
    config = gl.NoiseInjection(per_pixel=False, noise_at_inference=True).get_config()
    assert config["per_pixel"] is False and config["noise_at_inference"] is True
    assert gl.ScopedDropout(0.25).get_config()["rate"] == 0.25


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        gl.SpectralConv2D(4, 3, power_iterations=0)
    with pytest.raises(ValueError):
        gl.AdaptiveInstanceNormalization(mode="affine", hidden_units=8)
    with pytest.raises(ValueError):
        gl.AdaptiveInstanceNormalization(mode="linear")
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError, match="ScopedDropout rate"):
            gl.ScopedDropout(rate)


def _tiny_model():
    image = keras.Input((8, 8, 3), name="image")
    style = keras.Input((5,), name="style")
    x = gl.SpectralConv2D(8, 3, padding="same")(image)
    x = gl.NoiseInjection()(x)
    x = gl.AdaptiveInstanceNormalization()([x, style])
    x = gl.SelfAttention()(x)
    x = gl.SpectralConv2DTranspose(4, 4, strides=2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model([image, style], gl.SpectralDense(1)(x))


def test_keras_file_round_trip(tmp_path):
    model = _tiny_model()
    inputs = [_rand(2, 8, 8, 3), _rand(2, 5, seed=1)]
    model(inputs, training=True)  # moves the power-iteration vectors off their init
    for layer in model.layers:
        if isinstance(layer, (gl.SelfAttention, gl.NoiseInjection)):
            _randomize_weights(layer)
    expected = model.predict(inputs, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), expected, rtol=1e-5)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# Spectral normalization ----------------------------------------------------


def _top_singular_value(kernel):
    matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
    return np.linalg.svd(matrix, compute_uv=False)[0]


def _kernel_with_spectrum(shape, singular_values, seed=0):
    # A kernel whose [-1, shape[-1]] matrix has the given singular values.
    rng = np.random.default_rng(seed)
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    left, _ = np.linalg.qr(rng.normal(size=(rows, cols)))
    right, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
    return ((left * singular_values[:cols]) @ right.T).reshape(shape).astype(np.float32)


@pytest.mark.parametrize(
    "factory, shape",
    [
        (lambda: gl.SpectralConv2D(6, 3), (1, 5, 5, 4)),
        (lambda: gl.SpectralConv2DTranspose(6, 3), (1, 5, 5, 4)),
        (lambda: gl.SpectralDense(6), (1, 10)),
    ],
    ids=["conv", "conv_transpose", "dense"],
)
def test_spectral_norm_brings_top_singular_value_to_one(factory, shape):
    layer = factory()
    x = _rand(*shape)
    layer(x)
    spectrum = np.array([3.0, 1.5, 1.0, 0.8, 0.5, 0.3])
    layer.kernel.assign(_kernel_with_spectrum(layer.kernel.shape, spectrum))
    layer.spectral_u.assign(_rand(*layer.spectral_u.shape, seed=1))
    kernel_before = np.asarray(layer.kernel).copy()
    assert _top_singular_value(kernel_before) == pytest.approx(3.0, rel=1e-5)
    u_before = np.asarray(layer.spectral_u).copy()
    layer(x, training=False)
    np.testing.assert_array_equal(np.asarray(layer.spectral_u), u_before)  # no update
    for _ in range(5):
        layer(x, training=True)
    assert not np.allclose(np.asarray(layer.spectral_u), u_before)
    assert _top_singular_value(layer.normalized_kernel()) == pytest.approx(1.0, abs=0.01)
    # The trainable kernel itself is untouched; only its use is normalised.
    np.testing.assert_array_equal(np.asarray(layer.kernel), kernel_before)


def test_spectral_conv_output_uses_normalized_kernel():
    layer = gl.SpectralConv2D(3, 3, padding="same", use_bias=False)
    x = _rand(2, 5, 5, 2)
    layer(x)
    plain = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)
    plain(x)
    plain.set_weights([np.asarray(layer.normalized_kernel())])
    np.testing.assert_allclose(
        np.asarray(layer(x, training=False)), np.asarray(plain(x)), rtol=1e-5, atol=1e-6
    )


def test_spectral_gradient_flows_through_sigma():
    # f(W) = sum(x W / sigma(W)) with sigma = ||W u|| and u held constant:
    # df/dW = x^T 1 / sigma - f / sigma * v u^T, v = W u / sigma (Miyato 2018).
    layer = gl.SpectralDense(4, use_bias=False)
    x = _rand(3, 5)
    layer(x)
    layer(x, training=True)
    w = np.asarray(layer.kernel)
    u = np.asarray(layer.spectral_u)
    u = u / np.linalg.norm(u)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x, training=False))
    sigma = np.linalg.norm(w @ u)
    v = w @ u / sigma
    expected = np.outer(x.sum(0), np.ones(4)) / sigma - np.sum(x @ w) / sigma**2 * np.outer(v, u)
    gradient = np.asarray(tape.gradient(y, layer.kernel))
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6)


def test_spectral_conv_compiles_with_xla():
    conv = gl.SpectralConv2D(4, 3, padding="same")
    x = _rand(6, 5, 5, 3)
    conv(x)

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, 5, 5, 3])])
    def forward(images):
        return conv(images, training=True)

    out = forward(x)  # a dynamic batch size under XLA
    assert tuple(out.shape) == (6, 5, 5, 4)
    np.testing.assert_allclose(np.asarray(out), np.asarray(conv(x)), rtol=1e-4, atol=1e-5)


# Self-attention ------------------------------------------------------------


def test_self_attention_starts_as_identity():
    x = _rand(2, 4, 4, 16)
    layer = gl.SelfAttention()
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), x)
    layer.gamma.assign(1.0)
    assert not np.allclose(np.asarray(layer(x)), x)


def test_self_attention_matches_numpy():
    x = _rand(2, 3, 3, 8)
    layer = gl.SelfAttention(reduction=4, spectral_normalization=False)
    layer(x)
    _randomize_weights(layer, seed=3)
    layer.gamma.assign(0.7)

    def conv1x1(conv):
        kernel, bias = (np.asarray(w) for w in conv.weights)
        return (x.reshape(2, 9, 8) @ kernel[0, 0]) + bias

    keys, queries, values = (
        conv1x1(conv) for conv in (layer.key_conv, layer.query_conv, layer.value_conv)
    )
    logits = queries @ keys.transpose(0, 2, 1)
    attention = np.exp(logits - logits.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    expected = 0.7 * (attention @ values).reshape(x.shape) + x
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)
    assert layer.key_conv.filters == 2 and layer.value_conv.filters == 8


# Adaptive instance normalization -------------------------------------------


@pytest.mark.parametrize("mode", ["mlp", "affine"])
def test_adain_output_statistics_are_beta_and_gamma(mode):
    x = 5.0 * _rand(3, 6, 6, 4) + 2.0
    w = _rand(3, 7, seed=1)
    layer = gl.AdaptiveInstanceNormalization(mode=mode)
    out = np.asarray(layer([x, w]))
    style = layer.hidden_dense(w) if mode == "mlp" else w
    gamma = np.asarray(layer.gamma_dense(style)) + (1.0 if mode == "affine" else 0.0)
    beta = np.asarray(layer.beta_dense(style))
    variance = x.var(axis=(1, 2))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), beta, atol=1e-4)
    np.testing.assert_allclose(
        out.std(axis=(1, 2)),
        np.abs(gamma) * np.sqrt(variance / (variance + 1e-5)),
        rtol=1e-4,
        atol=1e-5,
    )
    if mode == "mlp":
        assert layer.hidden_dense.units == (4 + 7) // 2  # PathologyGAN's default
        assert np.all(gamma >= 0.0)  # ReLU scale


# Noise injection -----------------------------------------------------------


def test_noise_injection_deterministic_at_inference():
    x = _rand(2, 4, 4, 3)
    layer = gl.NoiseInjection()
    layer(x)
    layer.noise_weight.assign([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    first, second = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.allclose(first, x) and not np.allclose(first, second)
    sampling = gl.NoiseInjection(noise_at_inference=True)
    sampling(x)
    sampling.noise_weight.assign([1.0, 1.0, 1.0])
    assert not np.allclose(np.asarray(sampling(x, training=False)), x)


@pytest.mark.parametrize("per_pixel", [True, False])
def test_noise_injection_explicit_noise_and_layout(per_pixel):
    x = _rand(2, 4, 4, 3)
    layer = gl.NoiseInjection(per_pixel=per_pixel)
    layer(x)
    scale = np.array([0.5, -1.0, 2.0], np.float32)
    layer.noise_weight.assign(scale)
    noise = _rand(*((2, 4, 4, 1) if per_pixel else (2, 1, 1, 3)), seed=9)
    np.testing.assert_allclose(
        np.asarray(layer(x, noise=noise, training=False)), x + scale * noise, rtol=1e-6
    )
    added = (np.asarray(layer(x, training=True)) - x) / scale
    if per_pixel:  # the same noise image on every channel
        np.testing.assert_allclose(added[..., 0], added[..., 1], rtol=1e-4, atol=1e-5)
    else:  # one value per channel, constant over positions
        np.testing.assert_allclose(added, np.broadcast_to(added[:, :1, :1], added.shape), atol=1e-5)


# Scoped dropout -------------------------------------------------------------


def test_scoped_dropout_masks_come_from_the_scope_and_the_layer_name():
    from gan_zoo.layers.noise import noise_seed_scope

    x = np.ones((64, 8, 8, 4), np.float32)
    layer, twin = gl.ScopedDropout(0.25, name="a"), gl.ScopedDropout(0.25, name="b")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)  # inference: identity
    seed = tf.constant([3, 4], tf.int64)
    with noise_seed_scope(seed):
        first = np.asarray(layer(x, training=True))
        again = np.asarray(layer(x, training=True))
        other = np.asarray(twin(x, training=True))
    with noise_seed_scope(seed + 1):
        next_seed = np.asarray(layer(x, training=True))
    # Inverted dropout: kept units are scaled by 1 / (1 - rate), ~25% are zero.
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert abs((first == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(first, again)  # the scope's seed decides
    assert not np.array_equal(first, other)  # ... folded with the layer's name
    assert not np.array_equal(first, next_seed)


def test_scoped_dropout_on_two_replicas_drops_the_global_batch_rows(mirrored):
    from gan_zoo.layers.noise import noise_seed_scope

    x = np.ones((8, 5), np.float32)
    layer = gl.ScopedDropout(0.5, name="drop")
    seed = tf.constant([7, 1], tf.int64)
    with noise_seed_scope(seed):
        single = np.asarray(layer(x, training=True))

    def replica_fn(rows):
        with noise_seed_scope(seed):
            return layer(rows, training=True)

    rows = mirrored.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))
    per_replica = mirrored.run(replica_fn, args=(next(iter(rows)),))
    stacked = np.concatenate([np.asarray(t) for t in mirrored.experimental_local_results(per_replica)])
    np.testing.assert_array_equal(stacked, single)


# Mixed precision and distribution ------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mixed_bfloat16(case):
    _, factory, shapes, expected, kwargs = case
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = factory()
        inputs = _inputs(shapes)
        out = layer(inputs, training=True, **kwargs)
        assert out.dtype == tf.bfloat16 and tuple(out.shape) == expected
        assert np.all(np.isfinite(np.asarray(tf.cast(out, tf.float32))))
        assert all(w.dtype == "float32" for w in layer.weights)
        assert layer(inputs, training=False, **kwargs).dtype == tf.bfloat16
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_spectral_norm_keeps_float32_kernel_under_mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = gl.SpectralConv2D(4, 3)
        x = _rand(2, 5, 5, 3)
        layer(x)
        kernel = np.asarray(layer.kernel).copy()
        for _ in range(3):
            layer(x, training=True)
        # Master weights are neither overwritten nor rounded to bfloat16.
        np.testing.assert_array_equal(np.asarray(layer.kernel), kernel)
        assert layer.spectral_u.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_spectral_conv_trains_under_mirrored_strategy(mirrored):
    strategy = mirrored
    with strategy.scope():
        conv = gl.SpectralConv2D(4, 3, padding="same")
        inputs = keras.Input((6, 6, 3))
        model = keras.Model(inputs, gl.SpectralDense(1)(keras.layers.Flatten()(conv(inputs))))
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)
    data = tf.data.Dataset.from_tensor_slices(_rand(8, 6, 6, 3)).batch(4)
    data = strategy.experimental_distribute_dataset(data)

    @tf.function
    def train_step(images):
        def step(images):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss = tf.nn.compute_average_loss(tf.reduce_mean(tf.square(outputs - 1.0), axis=1))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(step, args=(images,)), axis=None)

    u_before = np.asarray(conv.spectral_u).copy()
    kernel_before = np.asarray(conv.kernel).copy()
    losses = [float(train_step(batch)) for _ in range(3) for batch in data]
    assert np.all(np.isfinite(losses))
    assert not np.allclose(np.asarray(conv.spectral_u), u_before)
    assert not np.allclose(np.asarray(conv.kernel), kernel_before)
    replicas = [np.asarray(v) for v in conv.spectral_u.value.values]
    np.testing.assert_array_equal(replicas[0], replicas[1])
