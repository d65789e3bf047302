"""Update groups, schedules, EMA and the image pool: one device vs two replicas,
and exact resume in the middle of a cycle or a phase."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo.schedules import Phase, UpdateSchedule
from gan_zoo.training.checkpoint import TrainingCheckpoint
from toy_adversarial import ToyAdversarial, state_of, toy_batches

SCHEDULES = {
    "every_step": None,
    "n_critic_5": UpdateSchedule.ratio(5, critic=("fd", "fe"), both=("fd", "fe", "g")),
    # Phases ending on losses: g pre-trains for 2 steps, then d and g take
    # turns, each until its loss drops below a threshold (ciGAN's rule).
    "loss_triggered": UpdateSchedule([
        Phase("pretrain", ("g",), steps=2, next="d"),
        Phase("d", ("fd",), until_below=("d_loss", 1.3)),
        Phase("g", ("g",), until_below=("g_loss", 0.75), next="d"),
    ]),
}


def _fit(model, steps, start=0):
    model.fit(toy_batches(start, steps), epochs=1, steps_per_epoch=steps, verbose=0)


def assert_same_state(a, b, atol=1e-6):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


def test_schedule_state_machine():
    schedule = SCHEDULES["loss_triggered"]
    assert schedule.advance(0, 0) == (0, 1)
    assert schedule.advance(0, 1) == (1, 0)  # pretrain ends after 2 steps
    assert schedule.advance(1, 5, {"d_loss": 1.4}) == (1, 6)
    assert schedule.advance(1, 5, {"d_loss": 1.2}) == (2, 0)
    assert schedule.advance(2, 0, {"g_loss": 0.7}) == (1, 0)  # back to d, not pretrain
    with pytest.raises(ValueError, match="watches 'd_loss'"):
        schedule.advance(1, 0, {})
    ratio = SCHEDULES["n_critic_5"]
    position, seen = (0, 0), []
    for _ in range(10):
        seen.append(ratio.phase(position[0]).name)
        position = ratio.advance(*position)
    assert seen == ["critic"] * 4 + ["all"] + ["critic"] * 4 + ["all"]
    with pytest.raises(ValueError, match="unknown phase 'nope'"):
        UpdateSchedule([Phase("a", ("g",), next="nope")])


def test_n_critic_updates_generator_every_fifth_step():
    model = ToyAdversarial(schedule=SCHEDULES["n_critic_5"])
    model.compile()
    _fit(model, 12)
    assert int(model.optimizer_for("fd").iterations) == 12
    assert int(model.optimizer_for("fe").iterations) == 12
    assert int(model.optimizer_for("g").iterations) == 2  # steps 5 and 10
    assert model.schedule_state.numpy().tolist() == [0, 2]  # 2 critic steps into the third cycle


def test_loss_triggered_phase_switch_follows_the_rule():
    model = ToyAdversarial(schedule=SCHEDULES["loss_triggered"])
    model.compile()
    phases = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            phases.append(self.model.current_phase().name)

    model.fit(toy_batches(0, 40), epochs=1, steps_per_epoch=40, callbacks=[Record()], verbose=0)
    assert phases[:2] == ["pretrain", "pretrain"]
    assert {"d", "g"} <= set(phases[2:]) and "pretrain" not in phases[2:]
    updates = {g: int(model.optimizer_for(g).iterations) for g in ("fd", "fe", "g")}
    assert updates["fe"] == 0  # no phase updates fe
    assert updates["fd"] == phases.count("d")
    assert updates["g"] == phases.count("g") + 2


def test_shared_network_is_updated_by_both_of_its_groups():
    model = ToyAdversarial()
    model.compile()
    features = model.features.trainable_variables
    assert all(any(v is w for w in model.group_variables(g)) for v in features for g in ("fd", "fe"))
    assert not any(v is w for v in features for w in model.group_variables("g"))
    before = state_of(model)
    _fit(model, 1)
    after = state_of(model)
    for name in before:
        if any(name.startswith(n) for n in ("features/", "head_d/", "head_e/", "generator/")):
            assert not np.allclose(before[name], after[name]), name
    assert int(model.optimizer_for("fd").iterations) == int(model.optimizer_for("fe").iterations) == 1


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.slow
def test_one_device_equals_two_replicas(mirrored, schedule):
    def build():
        model = ToyAdversarial(schedule=SCHEDULES[schedule], ema=True, pool_size=6, seed=3)
        model.compile()
        return model

    single = build()
    start = state_of(single)
    _fit(single, 14)
    with mirrored.scope():
        replicated = build()
    assert_same_state(start, state_of(replicated), atol=0)
    _fit(replicated, 14)
    assert_same_state(state_of(single), state_of(replicated))
    assert int(single.pool.count.numpy()) == 6  # the pool filled, then swapped
    moved = np.abs(state_of(single)["generator_ema/shadow_0"] - start["generator_ema/shadow_0"]).max()
    assert moved > 1e-3


def _resumable_fit(backup, schedule, epochs=3, steps=7, interrupt=None):
    model = ToyAdversarial(schedule=SCHEDULES[schedule], ema=True, pool_size=6, seed=5)
    model.compile()
    checkpoint = TrainingCheckpoint(backup)
    start = checkpoint.resume(model)
    callbacks = ([interrupt] if interrupt else []) + [checkpoint]
    model.fit(
        toy_batches(start * steps, (epochs - start) * steps).repeat(), epochs=epochs,
        steps_per_epoch=steps, callbacks=callbacks, verbose=0,
    )
    return model


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.parametrize("schedule", ["n_critic_5", "loss_triggered"])
@pytest.mark.slow
def test_kill_and_resume_mid_cycle_is_bit_identical(tmp_path, schedule):
    reference = _resumable_fit(tmp_path / "uninterrupted", schedule)
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "resumed", schedule, interrupt=Interrupt(epoch=1, batch=3))
    saved = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert saved["completed_epochs"] == 1
    resumed = _resumable_fit(tmp_path / "resumed", schedule)
    assert_same_state(state_of(reference), state_of(resumed), atol=0)
    # 7 steps per epoch: the backup after epoch 1 was taken inside a phase.
    if schedule == "n_critic_5":
        assert resumed.schedule_state.numpy().tolist() == [0, 1]  # 21 = 4 cycles + 1


def test_optimizer_groups_are_checked_and_round_trip(tmp_path):
    model = ToyAdversarial(schedule=SCHEDULES["n_critic_5"], ema=True)
    with pytest.raises(ValueError, match=r"no update group \['d'\]; its groups are \['fd', 'fe', 'g'\]"):
        model.compile(d_optimizer=keras.optimizers.SGD(0.1))
    model.compile(optimizers={"g": keras.optimizers.Adam(1e-3)})
    assert isinstance(model.optimizer_for("g"), keras.optimizers.Adam)
    assert isinstance(model.optimizer_for("fd"), keras.optimizers.SGD)
    assert model.base_learning_rates == pytest.approx({"fd": 0.1, "fe": 0.1, "g": 1e-3})
    config = model.get_compile_config()
    model.optimizer_for("g").learning_rate = 1e-5  # e.g. decayed by a schedule
    again = ToyAdversarial(schedule=SCHEDULES["n_critic_5"], ema=True)
    again.compile_from_config(model.get_compile_config())
    assert again.base_learning_rates["g"] == pytest.approx(1e-3)  # not the decayed 1e-5
    assert float(again.optimizer_for("g").learning_rate.numpy()) == pytest.approx(1e-5)
    assert set(config["optimizers"]) == {"fd", "fe", "g"}


def test_steps_per_execution_must_be_one_with_phases():
    model = ToyAdversarial(schedule=SCHEDULES["n_critic_5"])
    with pytest.raises(ValueError, match="steps_per_execution must be 1"):
        model.compile(steps_per_execution=4)


def test_frozen_networks_are_not_trained_nor_saved(tmp_path):
    frozen = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="frozen_dense")], name="vgg")
    model = ToyAdversarial(frozen_networks={"vgg": frozen})
    model.compile()
    assert model.frozen_network("vgg") is frozen and not frozen.trainable
    ids = {id(v) for v in frozen.weights}
    assert not ids & {id(v) for v in model.weights}  # not in checkpoints or .keras files
    for group in ("fd", "fe", "g"):
        assert not ids & {id(v) for v in model.group_variables(group)}
    path = tmp_path / "toy.weights.h5"
    model.save_weights(path)
    import h5py

    with h5py.File(path) as file:
        names = []
        file.visit(names.append)
    assert not any("frozen_dense" in name for name in names)


def test_noise_layers_draw_from_the_model_stream(mirrored):
    from gan_zoo.layers.noise import NoiseInjection

    def build():
        noise = NoiseInjection(per_pixel=False, name="noise")
        inputs = keras.Input((2, 2, 3))
        network = keras.Model(inputs, noise(inputs), name="generator")
        noise.noise_weight.assign(np.ones(3, np.float32))
        return ToyAdversarial(frozen_networks={"noisy": network}), network

    model, network = build()
    x = np.zeros((2, 2, 2, 3), np.float32)

    def draw():
        with model.noise_scope(stream=3):
            return network(x, training=True).numpy()

    first, again = draw(), draw()
    np.testing.assert_array_equal(first, again)  # a function of (seed, step, replica, stream)
    assert not np.allclose(first[0], first[1])  # each sample its own noise
    model.step_counter.assign_add(1)
    assert not np.allclose(draw(), first)

    with mirrored.scope():
        model, network = build()

    @tf.function
    def per_replica():
        def fn():
            with model.noise_scope(stream=3):
                return network(tf.zeros((1, 2, 2, 3)), training=True)

        return mirrored.run(fn)

    results = [t.numpy() for t in mirrored.experimental_local_results(per_replica())]
    assert not np.allclose(results[0], results[1])  # replicas draw different noise
