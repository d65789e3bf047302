"""PathologyGAN: layer list and parameter counts, style mixing, seeded noise,
n_critic, exact resume, one device vs two replicas, save / export, latent tools."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.layers.noise import noise_seed_scope
from gan_zoo.models import latent_tools
from gan_zoo.models.pathology_gan import PAPER_CONFIG, PathologyGAN
from gan_zoo.models.pathology_gan_networks import (
    FusedDownscaleConv2D,
    FusedUpscaleConv2DTranspose,
    GlobalBatchNoise,
    SpectralAdaIN,
    orthogonal_penalty,
    regularised_kernels,
)
from gan_zoo.training.checkpoint import TrainingCheckpoint

# 28x28 (two stages), narrow: every layer of the paper, few channels.
TINY = dict(stages=2, latent_dim=8, mapping_blocks=1, base_channels=4, initial_channels=4,
            dense_units=8, attention_resolution=14)


@pytest.fixture(autouse=True, scope="module")
def fast_graphs():
    """Grappler's graph rewrites cost more than the tiny steps they speed up."""
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    restore = before.get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": restore})


def tiny(**overrides):
    return PathologyGAN(**{**TINY, **overrides})


def real_batches(start_step, steps, batch=4, size=28):
    """Batches whose pixels are a function of the global step only."""
    def make(step):
        seed = tf.stack([tf.cast(step, tf.int64), tf.constant(7, tf.int64)])
        return tf.random.stateless_uniform((batch, size, size, 3), seed)
    return tf.data.Dataset.range(start_step, start_step + steps).map(make)


def state_of(model):
    values = {v.path.replace(f"{model.name}/", "model/", 1): np.array(v.numpy()) for v in model.variables}
    for group, optimizer in model.optimizers_by_group().items():
        for i, v in enumerate(optimizer.variables):
            values[f"{group}_optimizer/{i}"] = np.array(v.numpy())
    return values


# ------------------------------------------------------------ parameter counts
def _adain(features, latent):
    hidden = (features + latent) // 2
    return latent * hidden + hidden + 2 * (hidden * features + features)


def _attention(c):
    key = max(1, c // 8)
    return 2 * (c * key + key) + c * c + c + 1


def expected_counts(stages, latent_dim, mapping_blocks, base_channels, initial_channels,
                    dense_units, attention_resolution, **_):
    """Trainable parameters of (mapping, synthesis, critic) from the layer list."""
    L, U, C0 = latent_dim, dense_units, initial_channels
    mapping = mapping_blocks * 2 * (L * L + L) + L * L + L
    widths = [base_channels * 2**i for i in range(stages)][::-1]
    synthesis = L * U + U + _adain(U, L) + U * 49 * C0 + 49 * C0 + _adain(49 * C0, L)
    c, size = C0, 7
    for f in widths:
        synthesis += 2 * (9 * c * c + c) + 2 * c + 2 * _adain(c, L)  # residual block
        synthesis += _attention(c) if size == attention_resolution else 0
        synthesis += 2 * 2 * c * f + f + f + _adain(f, L)  # 2x2 up-conv, noise, AdaIN
        c, size = f, size * 2
    synthesis += 9 * c * 3 + 3
    critic, c, size = 0, 3, 7 * 2**stages
    for f in widths[::-1]:
        critic += 2 * (9 * c * c + c) + (_attention(c) if size == attention_resolution else 0)
        critic += 4 * 4 * c * f + f  # 4x4 down-conv
        c, size = f, size // 2
    critic += 49 * c * U + U + U + 1
    return mapping, synthesis, critic


def trainable(network):
    return sum(int(np.prod(v.shape)) for v in network.trainable_weights)


@pytest.mark.parametrize("stages,attention", [(2, 14), (3, 28)])
def test_layer_list_and_parameter_counts(stages, attention):
    config = {**TINY, "stages": stages, "attention_resolution": attention}
    gan = PathologyGAN(**config)
    size = 7 * 2**stages
    assert gan.generator.output_shape == (None, size, size, 3)
    assert gan.synthesis.input_shape == (None, stages + 1, 8)
    assert gan.discriminator.output_shape == (None, 1)
    assert (trainable(gan.mapping), trainable(gan.synthesis), trainable(gan.discriminator)) == \
        expected_counts(**config)
    g_layers = {layer.name: layer for layer in gan.synthesis.layers}
    ups = [layer for layer in gan.synthesis.layers if isinstance(layer, FusedUpscaleConv2DTranspose)]
    assert [u.filters for u in ups] == [4 * 2**i for i in range(stages)][::-1]
    assert [u.output.shape[1] for u in ups] == [14 * 2**i for i in range(stages)]
    assert all(u.kernel.shape[:2] == (2, 2) and u.strides == (2, 2) for u in ups)
    assert [layer.name for layer in gan.synthesis.layers if "attention" in layer.name] == \
        [f"stage{int(np.log2(attention // 7))}_attention"]
    assert sum(isinstance(layer, SpectralAdaIN) for layer in gan.synthesis.layers) == 2 + 3 * stages
    assert sum(isinstance(layer, GlobalBatchNoise) for layer in gan.synthesis.layers) == 3 * stages
    assert g_layers["sigmoid"].activation.__name__ == "sigmoid"
    downs = [layer for layer in gan.discriminator.layers if isinstance(layer, FusedDownscaleConv2D)]
    assert [d.filters for d in downs] == [4 * 2**i for i in range(stages)]
    assert all(d.kernel.shape[:2] == (4, 4) for d in downs)
    assert not any("norm" in type(layer).__name__.lower() for layer in gan.discriminator.layers)
    assert all(layer.negative_slope == pytest.approx(0.2) for layer in gan.discriminator.layers
               if isinstance(layer, keras.layers.LeakyReLU))
    # Orthogonal init (conv and dense) except the AdaIN MLP and noise (Xavier).
    conv = g_layers["stage0_res_conv1"]
    assert isinstance(conv.kernel_initializer, keras.initializers.Orthogonal)
    assert conv.power_iterations == 1
    adain = g_layers["stage0_res_adain1"]
    assert isinstance(adain.gamma_dense.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(g_layers["stage0_res_noise1"].weight_initializer, keras.initializers.GlorotUniform)
    assert float(np.abs(g_layers["stage0_res_noise1"].noise_weight.numpy()).max()) > 0
    attention_layer = g_layers[f"stage{int(np.log2(attention // 7))}_attention"]
    assert float(attention_layer.gamma.numpy()) == 0.0
    # A fresh 2x2 kernel's fused 3x3 kernel is the sum of its four shifts.
    kernel = ups[0].kernel.numpy()
    fused = np.zeros((3, 3) + kernel.shape[2:], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            fused[dy:dy + 2, dx:dx + 2] += kernel
    sigma = ups[0].normalized_kernel().numpy()
    np.testing.assert_allclose(sigma * (fused.max() / sigma.max()), fused, rtol=1e-4, atol=1e-6)


def test_options_are_checked_and_paper_defaults_registered():
    with pytest.raises(ValueError, match="attention_resolution must be 0"):
        tiny(attention_resolution=28)
    with pytest.raises(ValueError, match="stages must be"):
        tiny(stages=0)
    with pytest.raises(ValueError, match="noise_layout"):
        tiny(noise_layout="per_image")
    with pytest.raises(ValueError, match="augmentation policy"):
        tiny(augment_policy="colour")
    with pytest.raises(ValueError, match="ema_decay"):
        tiny(ema_decay=1.0)
    with pytest.raises(ValueError, match="augment_probability must be in"):
        tiny(augment_probability=1.5)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with pytest.raises(ValueError, match="mixed_float16"):
            tiny()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    spec = gan_zoo.registry.get_spec("pathology_gan")
    assert spec.config["latent_dim"] == 200 and spec.config["stages"] == 5
    assert spec.config["gradient_penalty_weight"] == 0.65 and spec.config["n_critic"] == 5
    gan = gan_zoo.load("pathology_gan", **TINY)
    plan = gan.training_plan()
    assert (plan.epochs, plan.batch_size) == (45, 64)
    optimizers = gan.default_optimizers()
    assert all(float(keras.ops.convert_to_numpy(o.learning_rate)) == pytest.approx(1e-4)
               and o.beta_1 == 0.5 and o.beta_2 == 0.999 for o in optimizers.values())
    # The paper's counts at 224 x 224 follow from the layer list checked above.
    assert expected_counts(**PAPER_CONFIG) == (361_800, 186_879_384, 30_068_458)
    assert [p.name for p in gan.update_schedule.phases] == ["critic", "all"]
    assert gan.update_schedule.phases[0].steps == 4


# ----------------------------------------------------------------- style mixing
def test_style_mixing_switches_w_at_the_cut():
    gan = tiny(stages=3, attention_resolution=28)
    w1, w2 = np.ones((2, 8), np.float32), -np.ones((2, 8), np.float32)
    for cut in range(1, 5):
        styles = gan.mix_styles(w1, w2, cut).numpy()
        assert (styles[:, :cut] == 1).all() and (styles[:, cut:] == -1).all()
    cuts = [int(gan.style_mixing_cut(tf.constant([s, 0], tf.int64))) for s in range(200)]
    assert set(cuts) == {1, 2, 3, 4}  # 4 = stages + 1: no mixing
    assert 0.35 < cuts.count(4) / 200 < 0.65  # mixing in half of the batches
    never = tiny(stages=3, attention_resolution=28, style_mixing_probability=0.0)
    assert {int(never.style_mixing_cut(tf.constant([s, 0], tf.int64))) for s in range(50)} == {4}
    # Every slot reaches the image: changing one slot's w changes it.
    w = np.random.default_rng(0).normal(size=(2, 4, 8)).astype(np.float32)
    base = gan.synthesis(w).numpy()
    for slot in range(4):
        moved = w.copy()
        moved[:, slot] += 1.0
        assert not np.allclose(gan.synthesis(moved).numpy(), base, atol=1e-6), slot


# ------------------------------------------------------------------------ noise
def test_noise_inputs_are_seeded_and_drawn_per_channel():
    layer = GlobalBatchNoise(name="noise")
    x = tf.zeros((3, 5, 5, 16))
    layer.build(x.shape)
    weights = layer.noise_weight.numpy()
    assert 0 < np.abs(weights).max() <= np.sqrt(3 / 16) + 1e-6  # Xavier on [C]
    with noise_seed_scope(tf.constant([1, 2], tf.int64)):
        a = layer(x, training=True).numpy()
    with noise_seed_scope(tf.constant([1, 2], tf.int64)):
        b = layer(x, training=True).numpy()
    with noise_seed_scope(tf.constant([1, 3], tf.int64)):
        c = layer(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.allclose(a, a[:, :1, :1, :])  # one value per channel and sample
    assert not np.allclose(a[0], a[1])
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    pixel = GlobalBatchNoise(per_pixel=True, name="pixel")
    with noise_seed_scope(tf.constant([1, 2], tf.int64)):
        p = pixel(x, training=True).numpy()
    assert not np.allclose(p[:, 0, 0], p[:, 1, 1])


_NOISE_CHECK = """
import json, sys
import numpy as np
import tensorflow as tf
from gan_zoo.layers.noise import noise_seed_scope
from gan_zoo.models.pathology_gan import PathologyGAN

w = np.random.default_rng(1).normal(size=(2, 3, 8)).astype(np.float32)


def two_draws(gan):
    # A training call also runs the spectral norms' power iteration:
    # start both draws from the same singular-vector estimates.
    state = [v.numpy() for v in gan.synthesis.non_trainable_weights]
    outs = []
    for seed in (1, 2):
        for v, value in zip(gan.synthesis.non_trainable_weights, state):
            v.assign(value)
        with noise_seed_scope(tf.constant([seed, 0], tf.int64)):
            outs.append(gan.synthesis(w, training=True).numpy())
    return float(np.abs(outs[0] - outs[1]).max())


tiny = json.loads(sys.argv[1])
print(json.dumps({layout: two_draws(PathologyGAN(**tiny, noise_layout=layout))
                  for layout in ("per_channel", "per_pixel")}))
"""


def test_per_channel_noise_is_cancelled_by_the_adain_after_it():
    """The reference adds [B, 1, 1, C] noise right before instance
    normalisation, which subtracts each channel's mean: the noise cannot
    reach the image. Per-pixel noise does.

    Run in a fresh process: in a test worker that had run other files
    first, per-pixel noise once left the output unchanged too (cause not
    found; in a fresh process and in this file alone it never has).
    """
    done = subprocess.run([sys.executable, "-c", _NOISE_CHECK, json.dumps(TINY)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    largest_change = json.loads(done.stdout.strip().splitlines()[-1])
    assert largest_change["per_channel"] <= 1e-5
    assert largest_change["per_pixel"] > 1e-4


# --------------------------------------------------------------------- training
@pytest.mark.slow
def test_n_critic_updates_and_finite_losses():
    gan = tiny(stages=1, attention_resolution=0, n_critic=2, ema_decay=0.5)
    gan.compile()
    ema_before = gan.generator_ema.shadows[0].numpy().copy()
    history = gan.fit(real_batches(0, 4, size=14), epochs=1, steps_per_epoch=4, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert set(logs) == {"d_loss", "g_loss", "gradient_penalty"}
    assert all(np.isfinite(v) for v in logs.values()) and logs["gradient_penalty"] > 0
    assert int(gan.optimizer_for("d").iterations) == 4
    assert int(gan.optimizer_for("g").iterations) == 2  # steps 2 and 4
    assert not np.allclose(gan.generator_ema.shadows[0].numpy(), ema_before)


def test_orthogonal_regulariser_covers_conv_and_dense_kernels_outside_adain():
    gan = tiny(orthogonal_regularization=1e-4)
    kernels = regularised_kernels(gan.discriminator)
    assert len(kernels) == 2 * 2 + 3 + 2 + 2  # residual convs, attention, downs, dense head
    manual = sum(
        float(np.sum((m.T @ m * (1 - np.eye(m.shape[1]))) ** 2))
        for m in (k.numpy().reshape(-1, k.shape[-1]) for k in kernels)
    )
    assert float(orthogonal_penalty(kernels)) == pytest.approx(manual, rel=1e-4)
    assert float(gan._orthogonal_penalty(gan.discriminator)) == pytest.approx(1e-4 * manual, rel=1e-4)
    assert tiny()._orthogonal_penalty(gan.discriminator) == 0.0  # off by default, as trained
    g_kernels = regularised_kernels(gan.generator)
    assert g_kernels and not any("adain" in k.path for k in g_kernels)


def test_discriminator_sees_augmented_real_and_fake_and_g_learns_through_it():
    gan = tiny(stages=1, attention_resolution=0, augment_policy="translation,cutout")
    real = tf.random.stateless_uniform((4, 14, 14, 3), [1, 2])
    seen = []
    augment = gan.augment

    def spy(images, stream):
        out = augment(images, stream)
        seen.append((stream, images, out))
        return out

    gan.augment = spy
    with tf.GradientTape() as tape:
        fake = gan._fakes(4, stream=40)
        real_logits, fake_logits = gan._critic_pair(real, fake, stream=50)
        loss = tf.reduce_mean(gan_zoo.losses.generator_relativistic_average(real_logits, fake_logits))
    # One augmentation for both (the same layer, so the same p and policy),
    # each batch with its own draws.
    assert [s for s, _, _ in seen] == [50, 51]
    assert seen[0][1] is real and seen[1][1] is fake
    for _, images, out in seen:
        assert not np.allclose(out.numpy(), images.numpy())
        assert ((out.numpy() == 0.5).all(axis=-1)).any()  # cut out or shifted in
    expected = gan.discriminator(tf.concat([seen[0][2], seen[1][2]], 0), training=False)
    np.testing.assert_allclose(tf.concat([real_logits, fake_logits], 0).numpy(), expected.numpy(),
                               rtol=1e-3, atol=1e-3)
    # G's gradients reach it through the augmentation.
    gradients = tape.gradient(loss, gan.generator.trainable_variables)
    assert all(g is not None for g in gradients)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients) > 0


# Every source of randomness on: per-pixel noise (which reaches the images),
# style mixing in every batch, adaptive augmentation, EMA. At 14 x 14 (one
# stage): tracing the step is what these tests spend their time on.
EVERYTHING = dict(stages=1, attention_resolution=0, noise_layout="per_pixel",
                  augment_policy="color,translation,cutout", augment_adaptive=True, augment_probability=0.5, augment_speed_images=100,
                  ema_decay=0.5, style_mixing_probability=1.0, n_critic=1, seed=9)
EPOCHS, STEPS = 2, 3


def _everything():
    keras.utils.set_random_seed(2)
    gan = tiny(**EVERYTHING)
    gan.compile()
    return gan


@pytest.fixture(scope="module")
def reference_run():
    """(state before, state after 2 epochs of 3 steps) of one uninterrupted run."""
    gan = _everything()
    before = state_of(gan)
    history = gan.fit(real_batches(0, EPOCHS * STEPS, size=14), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert {"augment_p", "r_t"} <= set(history.history)
    return before, state_of(gan)


@pytest.mark.slow
def test_kill_and_resume_is_bit_exact(tmp_path, reference_run):
    """Noise inputs, style mixing, penalty interpolation, augmentation and
    ADA's p come from the model's stream: restored from its epoch-1 backup,
    a run ends bit-identical to the uninterrupted one."""
    _, reference = reference_run
    gan = _everything()
    checkpoint = TrainingCheckpoint(tmp_path / "backup")
    gan.fit(real_batches(0, STEPS, size=14), epochs=1, steps_per_epoch=STEPS, callbacks=[checkpoint], verbose=0)
    # A new process would start from fresh weights: scramble every variable
    # (the same traced step is reused; tracing a second model is slow).
    rng = np.random.default_rng(0)
    for v in list(gan.variables) + [v for o in gan.optimizers_by_group().values() for v in o.variables]:
        value = np.asarray(v.numpy())
        v.assign(rng.normal(size=value.shape).astype(value.dtype) if value.dtype.kind == "f"
                 else np.zeros_like(value))
    keras.utils.set_random_seed(123)  # the resumed run must not depend on the process's seed
    start = TrainingCheckpoint(tmp_path / "backup").resume(gan)
    assert start == 1
    gan.fit(real_batches(STEPS, STEPS, size=14), epochs=EPOCHS, initial_epoch=1, steps_per_epoch=STEPS, verbose=0)
    resumed = state_of(gan)
    assert sorted(resumed) == sorted(reference)
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
    assert float(gan.augmentation.probability.numpy()) != 0.5  # ADA moved p


@pytest.mark.slow
def test_one_step_one_device_equals_two_replicas(mirrored, reference_run):
    before, reference = reference_run
    with mirrored.scope():
        replicated = _everything()
    for name, value in state_of(replicated).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    replicated.fit(real_batches(0, EPOCHS * STEPS, size=14), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)
    after = state_of(replicated)
    for name in reference:
        np.testing.assert_allclose(after[name], reference[name], atol=5e-5, rtol=1e-4, err_msg=name)
    moved = np.abs(reference["generator_ema/shadow_0"] - before["generator_ema/shadow_0"]).max()
    assert moved > 1e-4


# ----------------------------------------------------------- save, export, tools
@pytest.mark.slow
def test_save_load_export_and_latent_tools(tmp_path):
    gan = tiny(stages=1, attention_resolution=0, ema_decay=0.5, augment_policy="cutout")
    gan.compile()
    path = tmp_path / "pathology_gan.keras"
    gan.save(path)
    again = gan_zoo.load_model(path)
    assert isinstance(again, PathologyGAN) and again.augment_policy == "cutout"
    images = gan.generate(3, seed=5)
    assert images.shape == (3, 14, 14, 3) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(again.generate(3, seed=5), images)

    assert set(gan_zoo.export(gan, tmp_path / "export")) == {
        "generate", "map_latent", "generate_from_w", "generate_from_styles"}
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    z = gan.latent(3, seed=5).numpy()
    np.testing.assert_allclose(loaded.generate(z=tf.constant(z))["images"].numpy(), images, atol=1e-6)
    w = loaded.map_latent(z=tf.constant(z))["w"].numpy()
    np.testing.assert_allclose(w, gan.map_latent(z), atol=1e-6)
    np.testing.assert_allclose(loaded.generate_from_w(w=tf.constant(w))["images"].numpy(), images, atol=1e-6)

    # Latent tools: strips start and end at the endpoints' images.
    strip_z = latent_tools.interpolate_z(gan, z[0], z[1], steps=5)
    strip_w = latent_tools.interpolate_w(gan, z[0], z[1], steps=5)
    for strip in (strip_z, strip_w):
        assert strip.shape == (5, 14, 14, 3)
        np.testing.assert_allclose(strip[0], images[0], atol=1e-5)
        np.testing.assert_allclose(strip[-1], images[1], atol=1e-5)
    # In z the path is mapped point by point, so its middle differs from w's.
    assert not np.allclose(strip_z[2], strip_w[2], atol=1e-4)

    def brighter(batch):  # a property with both outcomes among samples
        means = batch.mean(axis=(1, 2, 3))
        return means > np.median(means)

    vector = latent_tools.attribute_vector(gan, brighter, n=32, seed=1)
    assert vector["with"] == vector["without"] == 16
    assert vector["vector"].shape == (8,)
    strips = latent_tools.vector_strips(gan, w[:2], vector["vector"], scales=(-1.0, 0.0, 1.0))
    assert strips.shape == (2, 3, 14, 14, 3)
    np.testing.assert_allclose(strips[:, 1], images[:2], atol=1e-5)
    out = latent_tools.save_strips(tmp_path / "strips.png", strips, upscale=2)
    from PIL import Image

    assert Image.open(out).size == (3 * 29 - 1, 2 * 29 - 1)  # 28 px tiles, 1 px gaps
    with pytest.raises(ValueError, match="both groups"):
        latent_tools.attribute_vector(gan, lambda b: np.ones(len(b), bool), n=8)
