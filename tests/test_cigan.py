"""ciGAN: architecture, losses, infilling (also through the SavedModel), the
alternation rule and its resume, one device vs two replicas."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

import gan_zoo
from gan_zoo.models import feature_networks
from gan_zoo.models.cigan import CIGAN, MALIGNANT
from gan_zoo.models.cigan_networks import boundary_weights, gaussian_kernel, generator_scales
from gan_zoo.training.checkpoint import TrainingCheckpoint

SIZE = 16


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """A tiny domain feature network file (the substitute's format)."""
    path = tmp_path_factory.mktemp("features") / "features.keras"
    keras.utils.set_random_seed(0)
    feature_networks.build_domain_classifier(SIZE, (4, 8, 8)).save(path)
    return str(path)


def tiny(features, **overrides):
    config = dict(patch_size=SIZE, widths=[8, 8, 8], discriminator_widths=[4, 8, 8, 8, 8],
                  feature_weights=features, pretrain_steps=2)
    config.update(overrides)
    return CIGAN(**config)


def patches(n=8, seed=0):
    """Bright square lesions on darker tissue; masks cover the lesions."""
    rng = np.random.default_rng(seed)
    images = np.clip(0.3 + 0.05 * rng.normal(size=(n, SIZE, SIZE, 1)), 0, 1).astype(np.float32)
    masks = np.zeros_like(images)
    for mask in masks:
        top, left = rng.integers(1, SIZE - 7, 2)
        mask[top : top + 6, left : left + 6] = 1.0
    images = np.where(masks > 0, 0.9, images).astype(np.float32)
    return images, masks, rng.integers(0, 2, n).astype(np.int32)


def batches(start_step, steps, batch=8):
    """{"images", "masks", "labels"} batches that depend on the step alone."""

    def make(step):
        seed = tf.stack([tf.cast(step, tf.int64), tf.constant(7, tf.int64)])
        noise = tf.random.stateless_normal((batch, SIZE, SIZE, 1), seed, stddev=0.05)
        corner = tf.random.stateless_uniform((2,), seed + 1, 1, SIZE - 7, dtype=tf.int32)
        rows = tf.range(SIZE)[:, None]
        cols = tf.range(SIZE)[None, :]
        inside = ((rows >= corner[0]) & (rows < corner[0] + 6)
                  & (cols >= corner[1]) & (cols < corner[1] + 6))
        masks = tf.tile(tf.cast(inside, tf.float32)[None, :, :, None], [batch, 1, 1, 1])
        images = tf.clip_by_value(tf.where(masks > 0, 0.9, 0.3 + noise), 0.0, 1.0)
        labels = tf.random.stateless_uniform((batch,), seed + 2, 0, 2, dtype=tf.int32)
        return {"images": images, "masks": masks, "labels": labels}

    return tf.data.Dataset.range(start_step, start_step + steps).map(make)


def state_of(model):
    values = {v.path.replace(f"{model.name}/", "model/", 1): v.numpy() for v in model.variables}
    for group, optimizer in model.optimizers_by_group().items():
        for i, v in enumerate(optimizer.variables):
            values[f"{group}_optimizer/{i}"] = np.array(v.numpy())
    return values


# --------------------------------------------------------------- architecture
@pytest.mark.parametrize("size, blocks", [(256, 7), (64, 5)])
def test_paper_architecture(size, blocks):
    gan = CIGAN(patch_size=size)  # the feature network is not built for this
    g, d = gan.generator, gan.discriminator
    assert generator_scales(size)[0] == 4 and generator_scales(size)[-1] == size
    assert [i.shape[-1] for i in g.inputs[:2]] == [1, 1]
    assert g.get_layer("input_stack").output.shape[-1] == 4  # context, mask, 2 class channels
    convs = [layer for layer in g.layers if layer.name.startswith("block") and "conv" in layer.name]
    widths = (128, 128, 64, 64, 32, 32, 32)[:blocks]
    assert [c.filters for c in convs] == [w for w in widths for _ in (1, 2)]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    ups = [layer for layer in g.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(ups) == blocks - 1 and all(u.interpolation == "nearest" for u in ups)
    assert g.get_layer("stack_4").output.shape[1:3] == (4, 4)
    assert g.get_layer(f"block{blocks}_concat").output.shape[1] == size
    d_convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in d_convs] == [32, 64, 128, 256, 512]
    assert all(c.kernel_size == (3, 3) for c in d_convs)
    assert len([layer for layer in d.layers if isinstance(layer, keras.layers.MaxPooling2D)]) == 5
    assert len([layer for layer in d.layers if isinstance(layer, keras.layers.LeakyReLU)]) == 5
    assert d.get_layer("image_and_class").output.shape[-1] == 3  # image + 2 class maps
    assert d.output_shape == (None, 1)
    assert gan.effective_boundary_sigma == pytest.approx(10.0 * size / 256)
    opt = gan.default_optimizers()["g"]
    assert float(opt.learning_rate) == pytest.approx(1e-4)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.9, 0.999, 1e-8)
    assert gan.training_plan().batch_size == 8
    assert [p.name for p in gan.update_schedule.phases] == ["pretrain", "d", "g"]
    assert gan.update_schedule.phases[0].steps == 10000
    assert gan.update_schedule.phases[1].until_below == ("d_loss", 0.3)
    assert gan.update_schedule.phases[2].until_below == ("g_adv_loss", 0.3)


@pytest.mark.parametrize("option, value, message", [
    ("patch_size", 48, "patch_size must be a power of two >= 8; got 48"),
    ("widths", [8, 8], r"widths must hold 3 values for 16-px patches"),
    ("widths", [8, 0, 8], r"widths\[1\] must be an integer >= 1; got 0"),
    ("boundary_weight", -1.0, "boundary_weight must be a number >= 0; got -1.0"),
    ("switch_threshold", 0.0, "switch_threshold must be a number > 0; got 0.0"),
    ("beta_1", 1.0, r"beta_1 must be a number in \[0, 1\); got 1.0"),
    ("max_phase_steps", 0, "max_phase_steps must be None or an integer >= 1; got 0"),
    ("pretrain_steps", 2.5, "pretrain_steps must be an integer >= 0"),
    ("feature_weights", None, "feature_weights must be 'imagenet', 'random' or a file path; got None"),
])
def test_config_values_are_checked(features, option, value, message):
    with pytest.raises(ValueError, match=message):
        tiny(features, **{option: value})


# -------------------------------------------------------------------- losses
def test_boundary_weight_map_equals_a_hand_built_one():
    # One lesion pixel: its 3x3 dilation minus its (empty) erosion is a 3x3
    # ring of ones; blurred, w(i, j) = sum over that square of g(i-a) g(j-b).
    mask = np.zeros((1, 11, 11, 1), np.float32)
    mask[0, 5, 5, 0] = 1.0
    sigma = 1.0
    taps = np.exp(-0.5 * np.arange(-4, 5) ** 2)  # radius int(4 * sigma + 0.5) = 4
    taps /= taps.sum()
    hand = np.zeros((11, 11))
    for a in range(4, 7):
        for b in range(4, 7):
            for i in range(11):
                for j in range(11):
                    if abs(i - a) <= 4 and abs(j - b) <= 4:
                        hand[i, j] += taps[i - a + 4] * taps[j - b + 4]
    np.testing.assert_allclose(boundary_weights(mask, sigma).numpy()[0, ..., 0], hand, atol=1e-7)
    np.testing.assert_allclose(gaussian_kernel(sigma), taps, atol=1e-7)

    # A lesion touching the patch border: the border is not an edge.
    rng = np.random.default_rng(3)
    mask = np.zeros((32, 32), bool)
    mask[10:20, 0:14] = True
    mask[rng.integers(0, 32, 20), rng.integers(0, 32, 20)] = True
    ring = ndimage.binary_dilation(mask, np.ones((3, 3))) & ~ndimage.binary_erosion(
        mask, np.ones((3, 3)), border_value=1)
    expected = ndimage.gaussian_filter(ring.astype(np.float64), 2.5, mode="constant", truncate=4.0)
    got = boundary_weights(mask[None, ..., None].astype(np.float32), 2.5).numpy()[0, ..., 0]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[15, 0] < got[9, 5]  # the image border inside the lesion carries no edge weight


def test_feature_networks_give_three_pooled_maps(features):
    with pytest.warns(UserWarning, match="RANDOM VGG-19"):
        vgg, info = feature_networks.load_feature_network("random")
    assert info["kind"] == "vgg19_random" and info["layers"] == list(feature_networks.VGG19_LAYERS)
    maps = vgg(np.zeros((2, 32, 32, 1), np.float32))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 64), (2, 8, 8, 128), (2, 4, 4, 256)]
    domain, info = feature_networks.load_feature_network(features)
    assert info["kind"] == "domain_classifier" and len(info["sha256"]) == 64
    assert "domain substitute" in feature_networks.describe_feature_network(info)
    assert [tuple(m.shape) for m in domain(np.zeros((1, SIZE, SIZE, 1)))] == [
        (1, 8, 8, 4), (1, 4, 4, 8), (1, 2, 2, 8)]
    with pytest.raises(FileNotFoundError, match="neither 'imagenet', 'random' nor an existing file"):
        feature_networks.load_feature_network("/nonexistent/vgg.h5")


def test_imagenet_failure_is_one_clear_line(monkeypatch):
    real_vgg19 = keras.applications.VGG19

    def offline(**kwargs):
        if kwargs.get("weights") == "imagenet":
            raise Exception("URL fetch failure on https://...: Name or service not known")
        return real_vgg19(**kwargs)

    monkeypatch.setattr(keras.applications, "VGG19", offline)
    with pytest.raises(RuntimeError, match="could not be downloaded .* pass feature_weights=<path"):
        feature_networks.load_feature_network("imagenet")
    gan = CIGAN(patch_size=SIZE, widths=[8, 8, 8], discriminator_widths=[4, 4, 4, 4, 4])
    gan.compile()
    with pytest.raises(RuntimeError, match="VGG-19 ImageNet weights could not be downloaded"):
        gan.fit(batches(0, 1), steps_per_epoch=1, verbose=0)
    with pytest.warns(UserWarning, match="RANDOM"):  # benchmarks only
        gan.synthetic_batch(2)
    assert gan.feature_network_info["kind"] == "vgg19_random"


# ------------------------------------------------------------------- infilling
def test_infill_keeps_pixels_outside_the_mask_also_through_the_savedmodel(features, tmp_path):
    keras.utils.set_random_seed(1)
    gan = tiny(features)
    gan.compile()
    gan.fit(batches(0, 3), steps_per_epoch=3, verbose=0)
    images, masks, _ = patches(5, seed=4)
    out = gan.infill(images, masks, target_class=MALIGNANT)
    outside = masks == 0
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[outside], images[outside])
    assert np.abs(out[~outside] - images[~outside]).max() > 0.05  # the region is repainted
    benign = gan.infill(images[..., 0], masks[..., 0], target_class=[0] * 5)  # [N, S, S] works too
    assert not np.allclose(benign[~outside], out[~outside])  # the class matters

    assert gan_zoo.export(gan, tmp_path / "sm") == ["infill"]
    served = tf.saved_model.load(str(tmp_path / "sm"))
    result = served.signatures["infill"](
        images=tf.constant(images), masks=tf.constant(masks),
        target_class=tf.constant([MALIGNANT] * 5, tf.int32),
    )["images"].numpy()
    np.testing.assert_array_equal(result[outside], images[outside])
    np.testing.assert_allclose(result, out, atol=1e-6)
    empty = np.zeros_like(masks)
    with pytest.raises(tf.errors.InvalidArgumentError, match="every mask needs at least one pixel"):
        served.signatures["infill"](images=tf.constant(images), masks=tf.constant(empty),
                                    target_class=tf.constant([1] * 5, tf.int32))


def test_infill_errors_are_clear(features):
    gan = tiny(features)
    images, masks, _ = patches(3)
    masks[1] = 0
    with pytest.raises(ValueError, match=r"mask 1 is empty \(no pixel > 0.5\)"):
        gan.infill(images, masks, 1)
    with pytest.raises(ValueError, match=r"images and masks differ in size: images \[3, 16, 16, 1\], "
                                         r"masks \[3, 8, 8, 1\]"):
        gan.infill(images, masks[:, :8, :8], 1)
    with pytest.raises(ValueError, match="images are 32x32x1 but this ciGAN infills 16x16"):
        gan.infill(np.zeros((3, 32, 32, 1), np.float32), np.ones((3, 32, 32, 1), np.float32), 1)
    with pytest.raises(ValueError, match="target_class must be 0 .* or 1"):
        gan.infill(images[:1], masks[:1], 2)
    with pytest.raises(ValueError, match=r"expects float images in \[0, 1\]"):
        gan.infill(images * 255, masks, 1)


def test_figure_rows_follow_fig_1(features):
    gan = tiny(features)
    images, masks, labels = patches(3)
    grid, rows = gan.figure_rows(images, masks, labels, seed=2)
    assert rows == 3 and grid.shape == (9, SIZE, SIZE, 1)
    np.testing.assert_array_equal(grid[0::3], images)  # original
    inside = masks > 0
    np.testing.assert_array_equal(grid[1::3][~inside], images[~inside])  # input: noise in the mask
    assert not np.allclose(grid[1::3][inside], images[inside])
    np.testing.assert_array_equal(grid[2::3], gan.infill(images, masks, 1 - labels, seed=2))


# ------------------------------------------------------------------ training
def test_pretraining_trains_g_on_the_feature_loss_alone(features):
    gan = tiny(features, pretrain_steps=3)
    gan.compile()
    d_before = [w.numpy() for w in gan.discriminator.weights]
    logs = gan.fit(batches(0, 3), steps_per_epoch=3, verbose=0).history
    assert int(gan.g_optimizer.iterations) == 3 and int(gan.d_optimizer.iterations) == 0
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(d_before, gan.discriminator.weights))
    assert logs["g_loss"][0] == pytest.approx(10.0 * logs["feature_loss"][0], rel=1e-5)
    assert gan.current_phase().name == "d"
    # The frozen feature network is neither trained nor saved.
    frozen = {id(v) for v in gan.build_feature_network().variables}
    assert frozen and not frozen & {id(v) for v in gan.variables}
    assert len(gan.g_optimizer.variables) == 2 * len(gan.generator.trainable_variables) + 2


def test_alternation_rule_switches_as_specified(features):
    keras.utils.set_random_seed(0)
    gan = tiny(features, switch_threshold=0.67, learning_rate=1e-2)
    gan.compile()
    steps = []
    schedule = gan.update_schedule
    advance = schedule.advance

    def recording(index, done, losses=None):
        state = advance(index, done, losses)
        steps.append((schedule.phase(index).name, dict(losses or {}), schedule.phase(state[0]).name))
        return state

    schedule.advance = recording
    gan.fit(batches(0, 20), steps_per_epoch=20, verbose=0)
    assert [s[0] for s in steps[:2]] == ["pretrain", "pretrain"] and steps[1][2] == "d"
    watched = {"d": "d_loss", "g": "g_adv_loss"}
    for phase, losses, following in steps[2:]:
        assert set(losses) == {watched[phase]}  # each phase reports the loss it watches
        switched = losses[watched[phase]] < 0.67
        assert following == ({"d": "g", "g": "d"}[phase] if switched else phase)
    kinds = {(p, f) for p, _, f in steps[2:]}
    assert {("d", "d"), ("d", "g"), ("g", "d")} <= kinds  # stays, and switches both ways
    counts = {p: sum(s[0] == p for s in steps) for p in ("pretrain", "d", "g")}
    assert int(gan.d_optimizer.iterations) == counts["d"]
    assert int(gan.g_optimizer.iterations) == counts["pretrain"] + counts["g"]


def test_the_rule_compares_the_mean_d_loss_or_on_request_the_sum(features):
    from gan_zoo.models.cigan import alternation_schedule

    def thresholds(schedule):
        return {phase.name: phase.until_below for phase in schedule.phases if phase.until_below}

    # The mean of D's two BCE terms is on G's scale: one threshold for both.
    assert thresholds(alternation_schedule(10, 0.3)) == {"d": ("d_loss", 0.3), "g": ("g_adv_loss", 0.3)}
    # Their sum below 0.3 is the mean below 0.15.
    assert thresholds(alternation_schedule(10, 0.3, d_loss="sum"))["d"] == ("d_loss", 0.15)
    gan = tiny(features, switch_d_loss="sum")
    assert thresholds(gan.update_schedule)["d"] == ("d_loss", 0.15)
    assert gan.get_config()["switch_d_loss"] == "sum"
    with pytest.raises(ValueError, match="switch_d_loss"):
        tiny(features, switch_d_loss="max")


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.slow
def test_resumed_run_continues_in_the_same_phase(features, tmp_path):
    steps, epochs = 8, 2

    class EpochEndPhase(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.states = []

        def on_epoch_end(self, epoch, logs=None):
            state = self.model.schedule_state.numpy().tolist()
            self.states.append((self.model.current_phase().name, state))

    def run(folder, callbacks=(), phases=None):
        keras.utils.set_random_seed(0)
        gan = tiny(features, switch_threshold=0.6, learning_rate=1e-2)
        gan.compile()
        checkpoint = TrainingCheckpoint(folder)
        start = checkpoint.resume(gan)
        if phases is not None:
            phases.append((gan.current_phase().name, gan.schedule_state.numpy().tolist()))
        gan.fit(batches(start * steps, (epochs - start) * steps), steps_per_epoch=steps,
                epochs=epochs, initial_epoch=start, verbose=0, callbacks=[*callbacks, checkpoint])
        return gan

    at_epoch_end = EpochEndPhase()
    reference = run(tmp_path / "uninterrupted", [at_epoch_end])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", [Interrupt(epoch=1, batch=3)])
    saved = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert saved["completed_epochs"] == 1
    phases = []
    resumed = run(tmp_path / "resumed", phases=phases)
    # The restored run starts where epoch 0 ended: inside an alternation phase.
    assert phases == at_epoch_end.states[:1]
    assert phases[0][0] in ("d", "g") and phases[0][1][1] > 0
    reference_state, resumed_state = state_of(reference), state_of(resumed)
    assert sorted(reference_state) == sorted(resumed_state)
    for name in reference_state:
        np.testing.assert_array_equal(reference_state[name], resumed_state[name], err_msg=name)


@pytest.mark.slow
def test_one_step_one_device_equals_two_replicas(features, mirrored):
    # pretrain, d, g, d (phases capped at one step): every update, on 4 + 4 examples.
    def build():
        gan = tiny(features, pretrain_steps=1, learning_rate=1e-2, max_phase_steps=1)
        gan.compile()
        return gan

    keras.utils.set_random_seed(2)
    single = build()
    start = [w.numpy() for w in single.weights]
    single.fit(batches(0, 4), steps_per_epoch=4, verbose=0)
    with mirrored.scope():
        replicated = build()
    for variable, value in zip(replicated.weights, start):
        variable.assign(value)
    replicated.fit(batches(0, 4), steps_per_epoch=4, verbose=0)
    moved = max(np.abs(a.numpy() - s).max() for a, s in zip(single.weights, start))
    assert moved > 1e-3
    for group in ("d", "g"):
        updates = [int(m.optimizer_for(group).iterations.numpy()) for m in (single, replicated)]
        assert updates == [2, 2], group
    for a, b in zip(single.weights, replicated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)
    np.testing.assert_array_equal(single.schedule_state.numpy(), replicated.schedule_state.numpy())


@pytest.mark.slow
def test_round_trip_registry_and_bfloat16(features, tmp_path):
    gan = gan_zoo.load("cigan", patch_size=SIZE, widths=[8, 8, 8], discriminator_widths=[4, 8, 8, 8, 8],
                       feature_weights=features, pretrain_steps=1)
    gan.compile()
    gan.fit(batches(0, 2), steps_per_epoch=2, verbose=0)
    images, masks, labels = patches(4)
    expected = gan.infill(images, masks, 1 - labels)
    gan.save(tmp_path / "cigan.keras")
    gan.save_weights(tmp_path / "cigan.weights.h5")
    loaded = gan_zoo.load_model(tmp_path / "cigan.keras")
    assert loaded.get_config() == gan.get_config()
    assert loaded.current_phase().name == gan.current_phase().name
    assert int(loaded.g_optimizer.iterations) == int(gan.g_optimizer.iterations)
    np.testing.assert_array_equal(loaded.infill(images, masks, 1 - labels), expected)
    again = gan_zoo.load("cigan", weights=tmp_path / "cigan.weights.h5", **{
        k: v for k, v in gan.get_config().items() if k != "name"})
    np.testing.assert_array_equal(again.infill(images, masks, 1 - labels), expected)

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        half = tiny(features)
        half.compile()
        logs = half.fit(batches(0, 3), steps_per_epoch=3, verbose=0).history
        assert all(np.isfinite(v[0]) for v in logs.values())
        out = half.infill(images, masks, 1)
        np.testing.assert_array_equal(out[masks == 0], images[masks == 0])
    finally:
        keras.mixed_precision.set_global_policy(policy)


def test_weights_load_under_other_training_options(features, tmp_path):
    gan = tiny(features)
    gan.save_weights(tmp_path / "g.weights.h5")
    images, masks, _ = patches(2)
    again = gan_zoo.load("cigan", weights=tmp_path / "g.weights.h5", **{
        **{k: v for k, v in gan.get_config().items() if k != "name"},
        "feature_weights": "/elsewhere/features.keras", "boundary_weight": 1.0, "switch_threshold": 0.5})
    np.testing.assert_array_equal(again.infill(images, masks, 1), gan.infill(images, masks, 1))
    with pytest.raises(ValueError, match="widths"):
        gan_zoo.load("cigan", weights=tmp_path / "g.weights.h5", **{
            **{k: v for k, v in gan.get_config().items() if k != "name"}, "widths": [8, 8, 4]})
