"""The GAN base under distribution, serialization, resume and mixed precision."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo.models.dcgan import DCGAN
from gan_zoo.training.checkpoint import NonFiniteLossError, TrainingCheckpoint

def tiny(**overrides):
    config = dict(image_size=16, base_filters=4, latent_dim=8)
    config.update(overrides)
    return DCGAN(**config)


def weights_of(model):
    return [v.numpy().copy() for v in model.weights]


def assert_same_weights(a, b, atol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


class DataNoiseDCGAN(DCGAN):
    """z derived from each example, so one device and two replicas see equal z."""

    def unpack(self, data):
        images, labels = super().unpack(data)
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        self._z = tf.tanh(3.0 * flat[:, : self.latent_dim])
        return images, labels

    def sample_latent(self, batch_size, stream=0):
        return self._z


def sgd():
    # SGD, not the paper's Adam: the update is lr * gradient, so any error in
    # the loss reduction or gradient aggregation shows directly. (Adam divides
    # by sqrt(v): for biases that feed batch norm, whose true gradient is 0,
    # it turns float rounding noise into full-size steps.)
    return keras.optimizers.SGD(0.1)


@pytest.mark.slow
def test_mirrored_step_equals_single_device_step(mirrored):
    images = tf.random.stateless_uniform((8, 16, 16, 3), [1, 2], -1, 1)
    dataset = tf.data.Dataset.from_tensors(images)

    single = DataNoiseDCGAN(image_size=16, base_filters=4, latent_dim=8)
    single.compile(sgd(), sgd())
    start = weights_of(single)
    single_logs = single.fit(dataset, epochs=1, verbose=0).history

    with mirrored.scope():
        mirrored = DataNoiseDCGAN(image_size=16, base_filters=4, latent_dim=8)
        mirrored.compile(sgd(), sgd())
    for variable, value in zip(mirrored.weights, start):
        variable.assign(value)
    mirrored_logs = mirrored.fit(dataset, epochs=1, verbose=0).history

    # Same update of the networks and batch-norm statistics.
    assert_same_weights(weights_of(single), weights_of(mirrored), atol=1e-6)
    moved = max(np.abs(a - b).max() for a, b in zip(start, weights_of(single)))
    assert moved > 1e-3  # the step really changed the weights
    # Logged losses are over the whole global batch, not replica 0's half.
    for name in ("d_loss", "g_loss"):
        assert single_logs[name][0] == pytest.approx(mirrored_logs[name][0], abs=1e-5)


def test_random_stream_differs_per_replica_and_repeats_per_step(mirrored):
    strategy = mirrored
    with strategy.scope():
        gan = tiny()

    @tf.function
    def draw():
        return strategy.run(lambda: gan.random_normal((4,), stream=0))

    first = [t.numpy() for t in strategy.experimental_local_results(draw())]
    assert not np.allclose(first[0], first[1])
    again = [t.numpy() for t in strategy.experimental_local_results(draw())]
    np.testing.assert_array_equal(first[0], again[0])  # a function of the step only
    gan.step_counter.assign_add(1)
    later = [t.numpy() for t in strategy.experimental_local_results(draw())]
    assert not np.allclose(first[0], later[0])


@pytest.mark.slow
def test_keras_round_trip_keeps_both_optimizer_states(tmp_path):
    gan = tiny(variant="v2", num_classes=2)
    gan.compile()
    images = tf.random.stateless_uniform((6, 16, 16, 3), [3, 4], -1, 1)
    labels = tf.constant([0, 1, 0, 1, 1, 0])
    for _ in range(2):
        gan.train_on_batch(images, labels)
    path = tmp_path / "dcgan.keras"
    gan.save(path)
    loaded = keras.models.load_model(path)

    assert type(loaded) is DCGAN and loaded.get_config() == gan.get_config()
    assert_same_weights(weights_of(gan), weights_of(loaded))
    for opt in ("g_optimizer", "d_optimizer"):
        a, b = getattr(gan, opt), getattr(loaded, opt)
        assert int(b.iterations) == int(a.iterations) > 0
        assert_same_weights([v.numpy() for v in a.variables], [v.numpy() for v in b.variables])
    np.testing.assert_array_equal(gan.generate(4, seed=7), loaded.generate(4, seed=7))
    # Continuing training from either gives the same next step.
    gan.train_on_batch(images, labels)
    loaded.train_on_batch(images, labels)
    assert_same_weights(weights_of(gan), weights_of(loaded), atol=1e-6)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated kill")


@pytest.fixture
def image_records(tmp_path):
    from PIL import Image

    from gan_zoo.data.image_folder import ImageRecord

    rng = np.random.default_rng(0)
    records = []
    for i in range(20):
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(str(path), label=i % 2))
    return records


def _train(records, backup, epochs=3, interrupt=None):
    from gan_zoo.data.pipeline import training_stream

    keras.utils.set_random_seed(123)  # a restarted process re-initialises weights
    gan = tiny(variant="v2")  # instance noise: the random stream matters too
    gan.compile()
    checkpoint = TrainingCheckpoint(backup)
    stream = training_stream(
        records, batch_size=4, image_size=(16, 16), seed=5, flips=True,
        start_epoch=checkpoint.resume(gan), epochs=epochs,
    )
    callbacks = ([interrupt] if interrupt else []) + [checkpoint]
    gan.fit(
        stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
        callbacks=callbacks, verbose=0,
    )
    return gan


@pytest.mark.slow
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, image_records):
    reference = weights_of(_train(image_records, tmp_path / "uninterrupted"))

    with pytest.raises(KeyboardInterrupt):
        _train(image_records, tmp_path / "resumed", interrupt=Interrupt(epoch=1, batch=2))
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["completed_epochs"] == 1
    resumed = _train(image_records, tmp_path / "resumed")

    assert int(resumed.step_counter) == 3 * 5
    assert_same_weights(reference, weights_of(resumed))

    # A corrupt newest backup: resume falls back to the previous one AND
    # replays the data from there, so the result is still the same run.
    backup = tmp_path / "corrupted"
    with pytest.raises(KeyboardInterrupt):
        _train(image_records, backup, interrupt=Interrupt(epoch=2, batch=0))
    (backup / "epoch-00002.weights.h5").write_bytes(b"truncated")
    assert_same_weights(reference, weights_of(_train(image_records, backup)))


@pytest.mark.slow
def test_nan_loss_stops_before_saving(tmp_path):
    good = tf.data.Dataset.from_tensors(tf.zeros((4, 16, 16, 3))).repeat()
    bad = tf.data.Dataset.from_tensors(tf.fill((4, 16, 16, 3), np.nan)).repeat()
    gan = tiny()
    gan.compile()
    checkpoint = TrainingCheckpoint(tmp_path / "backup")
    gan.fit(good, steps_per_epoch=2, epochs=1, callbacks=[checkpoint], verbose=0)
    with pytest.raises(NonFiniteLossError, match=r"d_loss became nan at epoch 2, step 1"):
        gan.fit(bad, steps_per_epoch=2, epochs=2, callbacks=[checkpoint], verbose=0)
    assert checkpoint.completed_epochs() == 1
    restored = tiny()
    restored.compile()
    assert checkpoint.restore(restored) == 1
    assert all(np.isfinite(w).all() for w in weights_of(restored))


class PoisonWeights(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        variable = self.model.generator.trainable_variables[0]
        variable.assign(tf.fill(variable.shape, np.nan))


@pytest.mark.slow
def test_non_finite_weights_are_never_saved(tmp_path):
    gan = tiny()
    gan.compile()
    checkpoint = TrainingCheckpoint(tmp_path / "backup")
    data = tf.data.Dataset.from_tensors(tf.zeros((4, 16, 16, 3))).repeat()
    with pytest.raises(NonFiniteLossError, match="Not saving epoch 1: non-finite values in project"):
        gan.fit(data, steps_per_epoch=1, epochs=1, callbacks=[PoisonWeights(), checkpoint], verbose=0)
    assert checkpoint.completed_epochs() == 0


@pytest.mark.slow
def test_corrupt_latest_backup_falls_back_to_previous(tmp_path):
    gan = tiny()
    gan.compile()
    data = tf.data.Dataset.from_tensors(tf.zeros((4, 16, 16, 3))).repeat()
    checkpoint = TrainingCheckpoint(tmp_path / "backup")
    gan.fit(data, steps_per_epoch=1, epochs=2, callbacks=[checkpoint], verbose=0)
    latest = tmp_path / "backup" / "epoch-00002.weights.h5"
    latest.write_bytes(b"truncated")
    fresh = tiny()
    fresh.compile()
    assert checkpoint.resume(fresh) == 1
    with pytest.raises(ValueError, match="Compile the model before resuming"):
        checkpoint.resume(tiny())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.slow
def test_mixed_precision_trains_and_keeps_float32_io(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        gan = tiny()
        gan.compile()
        logs = gan.train_on_batch(tf.zeros((4, 16, 16, 3)), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
        assert gan.generator.output.dtype == "float32"
        assert gan.discriminator.output.dtype == "float32"
        assert all(v.dtype == "float32" for v in gan.generator.trainable_weights)
        is_scaled = isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert is_scaled == (policy == "mixed_float16")
        assert gan.generate(2, seed=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
