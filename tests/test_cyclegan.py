"""CycleGAN: architecture, losses on known inputs, image pools, distribution, export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.data.streams import unpaired_source
from gan_zoo.models.cyclegan import CycleGAN
from gan_zoo.models.cyclegan_networks import (
    ReflectionPadding2D,
    build_discriminator,
    build_generator,
    cycle_loss,
    default_downsamplings,
    identity_loss,
    patchgan_receptive_field,
)
from gan_zoo.schedules import LinearDecay
from gan_zoo.experiments import Run


def tiny(**overrides):
    config = dict(image_size=16, generator_filters=4, discriminator_filters=4, residual_blocks=2,
                  pool_size=3)
    config.update(overrides)
    return CycleGAN(**config)


def batch(size=2, side=16, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size, side, side, 3)
    return {"a": rng.uniform(-1, 1, shape).astype("float32"), "b": rng.uniform(-1, 1, shape).astype("float32")}


def layers_of(model, kind):
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def sgd_compile(gan):
    # SGD: an update is lr * gradient, so a wrong loss reduction shows directly.
    gan.compile(optimizers={"g": keras.optimizers.SGD(0.05), "d": keras.optimizers.SGD(0.05)})


# --------------------------------------------------------------- architecture
def test_reference_generator_and_discriminator_layer_by_layer():
    g = build_generator(256, 3, 64, residual_blocks=9)
    convs = layers_of(g, "Conv2D")
    assert [c.filters for c in convs[:3]] == [64, 128, 256]
    assert [c.kernel_size for c in convs[:3]] == [(7, 7), (3, 3), (3, 3)]
    assert [c.strides for c in convs[:3]] == [(1, 1), (2, 2), (2, 2)]
    assert [c.filters for c in layers_of(g, "Conv2DTranspose")] == [128, 64]
    assert convs[-1].filters == 3 and convs[-1].kernel_size == (7, 7)
    assert g.layers[-1].activation.__name__ == "tanh"
    assert len(layers_of(g, "ReflectionPadding2D")) == 2 + 2 * 9
    norms = layers_of(g, "GroupNormalization")
    assert all(n.groups == n.input.shape[-1] and not n.weights for n in norms)  # instance norm, no affine
    # The official 9-block generator and 70x70 PatchGAN have these sizes.
    assert g.count_params() == 11_378_179
    d = build_discriminator(256, 3, 64, downsamplings=3)
    assert d.count_params() == 2_764_737
    assert d.output_shape == (None, 30, 30, 1)
    assert [c.strides for c in layers_of(d, "Conv2D")] == [(2, 2)] * 3 + [(1, 1)] * 2
    assert all(a.negative_slope == pytest.approx(0.2) for a in layers_of(d, "LeakyReLU"))
    assert convs[1].kernel.numpy().std() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("size, blocks", [(256, 9), (129, 9), (128, 6), (50, 6)])
@pytest.mark.slow
def test_six_or_nine_residual_blocks_by_size(size, blocks):
    gan = CycleGAN(image_size=size, generator_filters=2, discriminator_filters=2)
    assert gan.residual_blocks == blocks
    for name in ("generator_ab", "generator_ba"):
        g = gan.network(name)
        assert len([layer for layer in g.layers if layer.name.endswith("_add")]) == blocks
        assert g.output_shape == (None, size, size, 3)  # odd sizes (129, 25, 13) come back
    assert gan.get_config()["residual_blocks"] is None  # the rule, not a number, is saved
    assert CycleGAN(image_size=64, generator_filters=2, residual_blocks=9).residual_blocks == 9


def test_patchgan_receptive_field_is_scaled_to_the_patch():
    assert [patchgan_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    assert [default_downsamplings(s) for s in (256, 70, 69, 50, 33, 16)] == [3, 3, 2, 2, 1, 1]
    # Measured: the input pixels one output of the 50 px discriminator depends
    # on, through its convolutions (instance norm's statistics span the image).
    d = build_discriminator(50, 3, 4, downsamplings=default_downsamplings(50))
    assert d.output_shape == (None, 10, 10, 1)
    image = tf.Variable(tf.random.uniform((1, 50, 50, 3)))
    with tf.GradientTape() as tape:
        x = image
        for layer in d.layers[1:]:
            x = x if isinstance(layer, keras.layers.GroupNormalization) else layer(x)
        score = x[0, 5, 5, 0]
    rows = np.flatnonzero(np.abs(tape.gradient(score, image).numpy()).sum(axis=(0, 2, 3)))
    assert rows.max() - rows.min() + 1 == 34


def test_reflection_padding_matches_numpy_and_round_trips():
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    layer = ReflectionPadding2D(2)
    expected = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(layer(x).numpy(), expected)
    assert ReflectionPadding2D.from_config(layer.get_config()).padding == 2


def test_options_are_checked():
    for bad, match in [({"image_size": 4}, "image_size"), ({"cycle_weight": -1}, "cycle_weight"),
                       ({"discriminator_downsamplings": 4}, "discriminator_downsamplings"),
                       ({"residual_blocks": 0}, "residual_blocks"), ({"pool_size": -1}, "pool_size"),
                       ({"channels": 2}, "channels"), ({"beta_1": 1.0}, "beta_1"),
                       ({"lr_decay": "cosine"}, "lr_decay")]:
        with pytest.raises(ValueError, match=match):
            tiny(**bad)


# ------------------------------------------------------------------- losses
def test_cycle_and_identity_losses_on_known_inputs():
    real = np.zeros((2, 4, 4, 3), "float32")
    reconstructed = np.full((2, 4, 4, 3), 0.5, "float32")
    reconstructed[1] = -0.25
    np.testing.assert_allclose(cycle_loss(real, reconstructed, 10.0).numpy(), [5.0, 2.5])
    np.testing.assert_allclose(identity_loss(real, reconstructed, 10.0, 0.5).numpy(), [2.5, 1.25])


def test_generator_losses_of_a_model_with_known_networks():
    """Zero weights: every generator outputs 0 and every discriminator 0.

    Then fake = reconstruction = identity output = 0, so with a = 0.5 and
    b = -0.25: cycle = 10 (0.5 + 0.25), identity = 0.5 * 10 (0.25 + 0.5),
    each LSGAN generator term (0 - 1)^2 = 1.
    """
    gan = tiny()
    for network in gan.network_names:
        for weight in gan.network(network).weights:
            weight.assign(tf.zeros_like(weight))
    a = tf.fill((3, 16, 16, 3), 0.5)
    b = tf.fill((3, 16, 16, 3), -0.25)
    found, fake_a, fake_b = gan.generator_losses(a, b)
    assert not fake_a.numpy().any() and not fake_b.numpy().any()
    expected = {"cycle_loss": 7.5, "identity_loss": 3.75, "g_ab_loss": 1.0, "g_ba_loss": 1.0,
                "g_loss": 13.25}
    for name, value in expected.items():
        np.testing.assert_allclose(found[name].numpy(), [value] * 3, rtol=1e-6, err_msg=name)
    without = tiny(identity_weight=0.0)
    without.set_weights(gan.get_weights())
    assert not without.generator_losses(a, b)[0]["identity_loss"].numpy().any()


@pytest.fixture(scope="module")
def stepped():
    """A tiny CycleGAN after 6 steps (one traced train step serves several tests)."""
    keras.utils.set_random_seed(1)
    gan = tiny(pool_size=3)
    sgd_compile(gan)
    first = batch(size=2)
    before = {n: [w.numpy().copy() for w in gan.network(n).trainable_weights] for n in gan.network_names}
    # The reference shows D the fakes of the same forward pass as the G update.
    fakes = {"b": gan.generator_ab(first["a"]).numpy(), "a": gan.generator_ba(first["b"]).numpy()}
    logs = gan.train_on_batch(first, return_dict=True)
    pools = {"a": gan.pool_a.images.numpy().copy(), "b": gan.pool_b.images.numpy().copy()}
    counts = (int(gan.pool_a.count.numpy()), int(gan.pool_b.count.numpy()))
    for step in range(1, 6):
        gan.train_on_batch(batch(size=2, seed=step))
    return {"gan": gan, "before": before, "fakes": fakes, "logs": logs, "pools": pools, "counts": counts}


@pytest.mark.slow
def test_one_step_updates_both_generators_then_both_discriminators(stepped):
    gan, logs = stepped["gan"], stepped["logs"]
    assert set(logs) == set(CycleGAN.tracked_losses)
    assert logs["g_loss"] == pytest.approx(
        logs["g_ab_loss"] + logs["g_ba_loss"] + logs["cycle_loss"] + logs["identity_loss"], rel=1e-5)
    assert logs["d_loss"] == pytest.approx(logs["d_a_loss"] + logs["d_b_loss"], rel=1e-5)
    assert int(gan.optimizer_for("g").iterations) == int(gan.optimizer_for("d").iterations) == 6
    for name, weights in stepped["before"].items():
        after = gan.network(name).trainable_weights
        assert any(not np.allclose(w, v.numpy()) for w, v in zip(weights, after)), name
    with pytest.raises(ValueError, match="unpaired"):
        gan.train_step(tf.constant(batch()["a"]))


# --------------------------------------------------------------- image pools
def test_pools_hold_each_directions_fakes_from_before_the_update(stepped):
    gan = stepped["gan"]
    assert stepped["counts"] == (2, 2)  # one batch of 2 stored per direction
    np.testing.assert_allclose(stepped["pools"]["b"][:2], stepped["fakes"]["b"], atol=1e-6)
    np.testing.assert_allclose(stepped["pools"]["a"][:2], stepped["fakes"]["a"], atol=1e-6)
    assert int(gan.pool_a.count.numpy()) == int(gan.pool_b.count.numpy()) == 3  # full
    # Once full, stored fakes are swapped out (p = 1/2 per image, 10 draws).
    assert not np.allclose(gan.pool_b.images.numpy()[:2], stepped["fakes"]["b"])
    assert np.abs(gan.pool_b.images.numpy()).max() <= 1.0
    # Without a pool the discriminators see the current fakes.
    images = tf.random.uniform((2, 16, 16, 3))
    np.testing.assert_array_equal(tiny(pool_size=0).pool_a.query(images, tf.constant([1, 2], tf.int64)), images)


@pytest.mark.slow
def test_one_step_one_device_equals_two_replicas(mirrored):
    # A global batch of 4 into a pool of 3: the step fills the pool, then
    # swaps or keeps the 4th fake, with draws shared by both replicas.
    data = batch(size=4, seed=9)

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(7)
            gan = tiny(pool_size=3, seed=3)
            sgd_compile(gan)
        history = gan.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0, shuffle=False)
        return gan, history.history

    single, single_logs = train(tf.distribute.get_strategy())
    replicated, replicated_logs = train(mirrored)
    for a, b in zip(single.weights, replicated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, rtol=0, err_msg=a.path)
    assert int(replicated.pool_a.count.numpy()) == 3
    for name in CycleGAN.tracked_losses:
        assert single_logs[name][0] == pytest.approx(replicated_logs[name][0], rel=1e-5), name


# ---------------------------------------------------------------- translating
def test_translate_directions_and_errors():
    gan = tiny()
    images = np.random.default_rng(0).uniform(0, 1, (3, 16, 16, 3)).astype("float32")
    to_b = gan.translate(images)
    to_a = gan.translate(images, direction="b_to_a")
    assert to_b.shape == images.shape and to_b.dtype == np.float32
    assert 0 <= to_b.min() and to_b.max() <= 1
    expected = (gan.generator_ab(images * 2 - 1).numpy() + 1) / 2
    np.testing.assert_allclose(to_b, expected, atol=1e-6)
    assert not np.allclose(to_a, to_b)
    with pytest.raises(ValueError, match="direction"):
        gan.translate(images, direction="sideways")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gan.translate(images * 255)
    with pytest.raises(ValueError, match="translates"):
        gan.translate(np.zeros((1, 8, 8, 3), "float32"))


def test_keras_file_round_trip_keeps_pools_and_optimizers(tmp_path, stepped):
    gan = stepped["gan"]
    path = tmp_path / "cyclegan.keras"
    gan.save(path)
    loaded = gan_zoo.load_model(path)
    assert isinstance(loaded, CycleGAN) and loaded.get_config() == gan.get_config()
    np.testing.assert_array_equal(loaded.pool_b.images.numpy(), gan.pool_b.images.numpy())
    assert int(loaded.pool_a.count.numpy()) == 3
    assert int(loaded.optimizer_for("g").iterations) == 6
    images = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.translate(images, direction="b_to_a"),
                               gan.translate(images, direction="b_to_a"), atol=1e-6)


@pytest.mark.slow
def test_translate_round_trip_through_the_saved_model(tmp_path, stepped):
    gan = stepped["gan"]
    names = gan_zoo.export(gan, tmp_path / "exported")
    assert sorted(names) == ["translate_a_to_b", "translate_b_to_a"]
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    images = np.random.default_rng(2).uniform(0, 1, (3, 16, 16, 3)).astype("float32")
    for direction in ("a_to_b", "b_to_a"):
        served = getattr(loaded, f"translate_{direction}")(images)["images"].numpy()
        np.testing.assert_allclose(served, gan.translate(images, direction=direction), atol=1e-5)
    # a -> b -> a through the served signatures is the model's cycle.
    there = loaded.translate_a_to_b(images)["images"]
    back = loaded.translate_b_to_a(there)["images"].numpy()
    np.testing.assert_allclose(back, gan.translate(gan.translate(images), direction="b_to_a"), atol=1e-5)


# ------------------------------------------------------------------ training
def test_plan_decays_linearly_to_zero_after_half_the_epochs():
    plan = tiny().training_plan()
    assert (plan.epochs, plan.batch_size) == (200, 1)
    assert plan.learning_rate == LinearDecay(constant_epochs=100, total_epochs=200)
    short = tiny().training_plan(epochs=4)
    assert [short.learning_rate.epoch_factor(e) for e in range(4)] == [1.0, 1.0, 1.0, 0.5]
    # Chi et al.'s 25 epochs on the reference's own epoch numbers: no decay yet.
    reference = tiny(lr_decay="reference").training_plan(epochs=25)
    assert {reference.learning_rate.epoch_factor(e) for e in range(25)} == {1.0}
    assert tiny(lr_decay="reference").get_config()["lr_decay"] == "reference"


@pytest.mark.slow
def test_train_gan_on_two_unpaired_streams(tmp_path):
    from gan_zoo.training.loop import train_gan

    rng = np.random.default_rng(0)
    domain_a = tf.data.Dataset.from_tensor_slices({"image": rng.integers(0, 120, (6, 16, 16, 3), dtype=np.uint8)})
    domain_b = tf.data.Dataset.from_tensor_slices({"image": rng.integers(120, 255, (9, 16, 16, 3), dtype=np.uint8)})
    gan = tiny()
    gan.compile()
    source = unpaired_source(domain_a, domain_b, image_size=16, batch_size=3, seed=1)
    assert source(0, 1).steps_per_epoch == 3  # the larger domain sets the epoch
    inputs = {"a": np.full((2, 16, 16, 3), 0.2, "float32"), "b": np.full((2, 16, 16, 3), 0.8, "float32")}
    logs = train_gan(gan, source, Run(tmp_path / "run", {}), epochs=4, sample_inputs=inputs,
                     sample_every=2, verbose=0)
    assert len(logs) == 4 and int(gan.optimizer_for("g").iterations) == 12
    # The plan: constant for epochs 1-2, then linearly down (epoch 4 at half).
    rates = [e["lr_g_optimizer"] for e in logs]
    assert rates == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4], rel=1e-6)
    assert [e["lr_d_optimizer"] for e in logs] == pytest.approx(rates, rel=1e-6)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png")) == [
        "samples-epoch-0002.png", "samples-epoch-0004.png"]
    assert json.loads((tmp_path / "run" / "backup" / "state.json").read_text())["completed_epochs"] == 4


def test_registry_and_benchmark_hooks():
    gan = gan_zoo.load("cyclegan", generator_filters=2, discriminator_filters=2)
    assert isinstance(gan, CycleGAN) and gan.image_size == 50 and gan.residual_blocks == 6
    assert gan.discriminator_downsamplings == 2
    synthetic = gan.synthetic_batch(2, seed=0)
    assert set(synthetic) == {"a", "b"} and synthetic["a"].shape == (2, 50, 50, 3)
    assert gan.training_plan().batch_size == 1
    # benchmarks/throughput.py's analytic count: 6 generator passes (2 on real
    # images skip their first layer's input gradient) and 6 discriminator ones.
    fake = {id(gan.generator_ab): (10.0, 1.0), id(gan.discriminator_a): (2.0, 0.0)}
    assert gan.train_step_flops(lambda net: fake[id(net)]) == 2 * (9 * 10 - 2) + 2 * 4 + 4 * 4
