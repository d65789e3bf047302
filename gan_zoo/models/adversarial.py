"""The adversarial base every zoo GAN builds on.

A model declares its networks by name, its update groups (`{group: network
names}`; a network may belong to several groups, as DiaGRAM's feature
extractor does), one optimizer per group with the paper's defaults, and
optionally an `UpdateSchedule` (n critic steps per generator step, k:1
steps, phases that end on a loss). It keeps the shape of the keras.io
"customize what happens in fit" GAN (`compile`, a `train_step` with one tape
per update, `Mean` trackers) and adds what that pattern lacks:

- losses reduced per GLOBAL batch (`reduce`, `global_mean`), so one step
  under `tf.distribute.MirroredStrategy` applies the same update as one
  device would with the same batch;
- a random stream that differs per replica and is a pure function of
  (seed, training step, replica, stream id), also for noise layers deep in
  a network (`noise_scope`), so a restored run draws exactly the noise it
  would have drawn;
- update schedules chosen on the host: one traced train function per phase,
  so no `apply_gradients` sits inside a traced conditional (which fails
  under `MirroredStrategy`); the phase and the position in it are saved;
- compile configs that round-trip every optimizer's state AND its base
  learning rate (a reloaded model's current rate may be a decayed one);
- a home for state: EMA copies of networks, image pools (layers, saved),
  frozen feature networks (excluded from optimizers, checkpoints and
  `.keras` files; the model rebuilds them from its config).

Roles (`gan_zoo.models.roles`) add what a model offers users: a latent
generator (`generate`), an image translator (`translate`), a classifier
(`classify`); each contributes its exported signatures and sample grids.
"""

import threading

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.layers.ema import ExponentialMovingAverage
from gan_zoo.layers.noise import noise_seed_scope
from gan_zoo.models.replicas import (  # noqa: F401  (num_replicas re-exported)
    all_reduce_sum,
    num_replicas,
    replica_id,
)
from gan_zoo.schedules import UpdateSchedule
from gan_zoo.weights import ConfigInWeights


class _Untracked:
    """Holds objects Keras must not track (so they are not saved)."""

    def __init__(self, items):
        self.items = dict(items)


class AdversarialModel(ConfigInWeights, keras.Model):
    """Base of the zoo's adversarial models: networks, update groups, schedules.

    Subclasses build their networks, pass them here by name, override
    `update_groups()` and `default_optimizers()`, and implement `train_step`
    with the helpers below:

        with tf.GradientTape() as tape:
            loss = self.reduce(per_example_loss)          # global-batch mean
            scaled = self.scale_loss("d", loss)
        self.apply_group_gradients("d", tape, scaled)

    With an update schedule (`set_update_schedule`), `train_step` asks
    `self.updates("d")` which updates the current phase makes (a Python
    bool at trace time: each phase is traced on its own).

    Args:
        networks: {name: built keras.Model}; each becomes an attribute.
        frozen_networks: {name: keras.Model} used by losses only (e.g. a
            VGG-19 feature network): never trained, not saved with the
            model (rebuild them from the model's config).
        data_range: (low, high) of the images the networks see.
        seed: base seed of the per-replica random stream.
        **kwargs: `keras.Model` arguments (e.g. `name`).
    """

    tracked_losses = ()

    def __init__(self, networks, *, frozen_networks=None, data_range=(-1.0, 1.0), seed=0, **kwargs):
        super().__init__(**kwargs)
        if not networks:
            raise ValueError("An adversarial model needs at least one network.")
        self.network_names = tuple(networks)
        for name, network in networks.items():
            setattr(self, name, network)
        frozen = dict(frozen_networks or {})
        for network in frozen.values():
            network.trainable = False
        self._frozen = _Untracked(frozen)
        self.data_range = tuple(float(v) for v in data_range)
        self.seed = int(seed)
        # Counts train steps; it seeds the random stream and is saved with
        # the weights, so a restored run continues the same stream.
        self.step_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="step_counter",
        )
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked_losses}
        self._optimizer_groups = ()
        self.base_learning_rates = {}
        self.update_schedule = None
        self.active_phase = None
        # Per thread: MirroredStrategy traces each replica in its own thread.
        self._step_signals = _Untracked({})
        self._step_signals.local = threading.local()
        self._ema_copies = _Untracked({})
        # The networks are functional models, already built; building the
        # wrapper here lets fit() under a strategy and load_weights work.
        self.built = True

    # ------------------------------------------------------------ networks
    def network(self, name):
        return getattr(self, name)

    def frozen_network(self, name):
        return self._frozen.items[name]

    @property
    def metrics(self):
        # Listing the trackers here makes Keras reset them every epoch.
        return list(self.trackers.values())

    # ------------------------------------------------------- update groups
    def update_groups(self):
        """{group: network names} (one optimizer per group). Override."""
        raise NotImplementedError(f"{type(self).__name__} must define update_groups().")

    def group_variables(self, group):
        """Trainable variables of a group's networks (each once)."""
        variables, seen = [], set()
        for name in self.update_groups()[group]:
            for variable in self.network(name).trainable_variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        return variables

    def default_optimizers(self):
        """{group: optimizer} with the paper's settings. Override."""
        raise NotImplementedError(f"{type(self).__name__} must define default_optimizers().")

    def optimizer_for(self, group):
        """The compiled optimizer of `group` (an attribute `<group>_optimizer`)."""
        return getattr(self, f"{group}_optimizer", None)

    def optimizers_by_group(self):
        return {group: self.optimizer_for(group) for group in self._optimizer_groups}

    @property
    def initial_learning_rates(self):
        """{optimizer attribute: base rate}, for epoch-based rate callbacks."""
        return {f"{g}_optimizer": rate for g, rate in self.base_learning_rates.items()}

    # --------------------------------------------------------------- compile
    def compile(
        self, g_optimizer=None, d_optimizer=None, *, optimizers=None, jit_compile=False,
        base_learning_rates=None, **kwargs,
    ):
        """Configures training; groups without an optimizer get the paper's.

        Args:
            g_optimizer: shorthand for `optimizers={"g": ...}` (the keras.io
                two-player pattern).
            d_optimizer: shorthand for `optimizers={"d": ...}`.
            optimizers: {group: optimizer or its config}; see
                `update_groups()` for the groups.
            jit_compile: XLA-compile the train step (slower on CPU; measure
                with `benchmarks/throughput.py` before turning it on).
            base_learning_rates: {group: rate} the learning-rate schedules
                scale (default: each optimizer's current rate). A reloaded
                model passes the rates it was first compiled with.
            **kwargs: passed to `keras.Model.compile` (e.g.
                `steps_per_execution`, `run_eagerly`).
        """
        groups = self.update_groups()
        given = dict(optimizers or {})
        for group, optimizer in (("g", g_optimizer), ("d", d_optimizer)):
            if optimizer is not None:
                if group in given:
                    raise ValueError(f"Optimizer of group {group!r} given twice.")
                given[group] = optimizer
        unknown = sorted(set(given) - set(groups))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no update group {unknown}; its groups are {sorted(groups)}."
            )
        defaults = self.default_optimizers()
        super().compile(optimizer=None, jit_compile=jit_compile, **kwargs)
        scaled = keras.mixed_precision.global_policy().name == "mixed_float16"
        for group in groups:
            optimizer = keras.optimizers.get(given.get(group) or defaults[group])
            if scaled and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            setattr(self, f"{group}_optimizer", optimizer)
            # Create the slots now: MirroredStrategy cannot create them
            # lazily inside the replicated train step.
            optimizer.build(self.group_variables(group))
        self._optimizer_groups = tuple(groups)
        rates = {g: _current_rate(self.optimizer_for(g)) for g in groups}
        rates.update({g: float(r) for g, r in (base_learning_rates or {}).items() if g in groups})
        self.base_learning_rates = rates
        if self.update_schedule is not None and not self.update_schedule.is_constant:
            if self.steps_per_execution != 1:
                raise ValueError(
                    "steps_per_execution must be 1 with an update schedule of several "
                    "phases: the host picks each step's phase."
                )

    def get_compile_config(self):
        if not self._optimizer_groups:
            return None
        return {
            "optimizers": {
                g: keras.optimizers.serialize(o) for g, o in self.optimizers_by_group().items()
            },
            "base_learning_rates": dict(self.base_learning_rates),
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config):
        if "optimizers" in config:
            optimizers = {
                g: keras.optimizers.deserialize(c) for g, c in config["optimizers"].items()
            }
        else:  # a compile config with the two-player keys g_optimizer / d_optimizer
            optimizers = {
                g: keras.optimizers.deserialize(config[f"{g}_optimizer"]) for g in ("g", "d")
            }
        self.compile(
            optimizers=optimizers,
            jit_compile=config.get("jit_compile", False),
            base_learning_rates=config.get("base_learning_rates"),
        )

    # ------------------------------------------------------ random stream
    def stream_seed(self, stream, per_replica=True):
        """A stateless seed for (seed, step, replica, stream); shape [2].

        `per_replica=False` gives every replica the same seed (for state
        that all replicas must update alike, such as an image pool).
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.step_counter, tf.int64)])
        replica = tf.cast(replica_id(), tf.int64) if per_replica else tf.constant(-1, tf.int64)
        return tf.random.experimental.stateless_fold_in(seed, replica * 1_000_003 + stream)

    def random_normal(self, shape, stream, stddev=1.0):
        return tf.random.stateless_normal(shape, self.stream_seed(stream), stddev=stddev)

    def random_uniform(self, shape, stream, minval=0.0, maxval=1.0):
        return tf.random.stateless_uniform(shape, self.stream_seed(stream), minval=minval, maxval=maxval)

    def noise_scope(self, stream):
        """Noise layers called inside draw from this stream (see `NoiseInjection`)."""
        return noise_seed_scope(self.stream_seed(stream))

    # ------------------------------------------------- train-step helpers
    @staticmethod
    def unpack(data):
        """(images, labels or None) from a batch of images or (images, labels)."""
        if isinstance(data, (tuple, list)):
            images = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            images, labels = data, None
        images = tf.cast(images, tf.float32)
        if labels is not None:
            labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        return images, labels

    @staticmethod
    def reduce(per_example_loss):
        """Mean over the GLOBAL batch: gradients summed over replicas match one device."""
        return tf.nn.compute_average_loss(tf.cast(per_example_loss, tf.float32))

    @staticmethod
    def global_mean(values, axis=0):
        """Mean over the global batch along `axis`, differentiable, identical on every replica."""
        values = tf.cast(values, tf.float32)
        total = all_reduce_sum(tf.reduce_sum(values, axis=axis, keepdims=True))
        count = all_reduce_sum(tf.cast(tf.shape(values)[axis], tf.float32))
        return total / count

    def scale_loss(self, group, loss):
        """The loss the group's optimizer differentiates (loss-scaled under float16)."""
        return self.optimizer_for(group).scale_loss(loss)

    def apply_group_gradients(self, group, tape, scaled_loss):
        """Applies the gradients of `scaled_loss` to the group's variables."""
        variables = self.group_variables(group)
        grads = tape.gradient(scaled_loss, variables)
        self.optimizer_for(group).apply_gradients(zip(grads, variables))

    def track(self, **per_example_losses):
        """Logs each loss; watched losses also become this step's signals.

        Epoch logs are global means (Keras sums the trackers' totals and
        counts over replicas). A loss an update schedule watches is also
        reduced over the global batch of this step, for the host.
        """
        signals = self.active_phase.signal if self.active_phase is not None else None
        for name, value in per_example_losses.items():
            value = tf.cast(value, tf.float32)
            self.trackers[name].update_state(value)
            if name == signals:
                self._signals_of_this_replica()[name] = all_reduce_sum(self.reduce(value))

    def finish_step(self):
        self.step_counter.assign_add(1)
        # Keras averages a step's outputs over replicas, so each replica's
        # running mean would weigh alike however many examples it saw:
        # return all-reduced totals / counts, the global running means (the
        # epoch logs, read from the synced trackers, are global already).
        logs = {
            name: tf.math.divide_no_nan(
                all_reduce_sum(t.total), all_reduce_sum(t.count)
            )
            for name, t in self.trackers.items()
        }
        signals = self._signals_of_this_replica()
        for name, value in signals.items():
            logs[f"_signal/{name}"] = value
        signals.clear()
        return logs

    def _signals_of_this_replica(self):
        local = self._step_signals.local
        if not hasattr(local, "signals"):
            local.signals = {}
        return local.signals

    # ------------------------------------------------------- update schedule
    def set_update_schedule(self, schedule):
        """Makes train steps follow `schedule` (an `UpdateSchedule`); call in __init__."""
        if not isinstance(schedule, UpdateSchedule):
            raise TypeError(f"Expected an UpdateSchedule, got {type(schedule).__name__}.")
        self.update_schedule = schedule
        if not schedule.is_constant and not hasattr(self, "schedule_state"):
            # (phase index, steps done in it): saved, so a resumed run
            # continues in the same phase at the same position.
            self.schedule_state = self.add_weight(
                shape=(2,), dtype="int64", initializer="zeros", trainable=False,
                aggregation="only_first_replica", name="schedule_state",
            )
        self.active_phase = schedule.phases[0] if schedule.is_constant else None

    @property
    def active_updates(self):
        """The updates of the phase being traced (all of them without a schedule)."""
        return None if self.active_phase is None else self.active_phase.updates

    def updates(self, name):
        """Does the step being traced make update `name`?"""
        return self.active_phase is None or name in self.active_phase.updates

    def current_phase(self):
        """The phase the next step runs in (host side)."""
        schedule = self.update_schedule
        if schedule is None:
            return None
        if schedule.is_constant:
            return schedule.phases[0]
        index, _ = (int(v) for v in keras.ops.convert_to_numpy(self.schedule_state))
        return schedule.phase(index)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds a model under a strategy by reducing one input batch
        # over replicas, which fails for dict batches (several streams)
        # under MultiWorkerMirroredStrategy. The networks are built at
        # construction and the optimizers in compile(), so nothing needs
        # a batch; Keras' other post-build steps still run.
        if all(layer.built for layer in self._flatten_layers()):
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch={})
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        schedule = self.update_schedule
        phased = schedule is not None and not schedule.is_constant
        functions = {}

        def phase_step(phase):
            def step(data):
                self.active_phase = phase  # read by train_step while it is traced
                logs = self.train_step(data)
                # As [1]-vectors: Keras reduces replica outputs with axis=0
                # under MultiWorkerMirroredStrategy, which fails on scalars.
                return {name: tf.reshape(value, [1]) for name, value in logs.items()}

            return step

        def train_function(iterator):
            if phased:
                index, done = (int(v) for v in keras.ops.convert_to_numpy(self.schedule_state))
                phase = schedule.phase(index)
            else:
                phase = self.active_phase
            key = phase.name if phase is not None else None
            if key not in functions:
                functions[key] = self._make_function(phase_step(phase))
            self.active_phase = phase
            logs = {name: tf.reshape(value, []) for name, value in functions[key](iterator).items()}
            signals = {
                key.split("/", 1)[1]: float(logs.pop(key)) for key in list(logs) if key.startswith("_signal/")
            }
            if phased:
                state = schedule.advance(index, done, signals)
                self.schedule_state.assign(np.asarray(state, np.int64))
            return logs

        self.train_function = train_function
        return train_function

    # ------------------------------------------------------------------ EMA
    def enable_ema(self, network_name, decay=None, half_life_steps=None, warmup=False):
        """Keeps an exponential moving average of a network for sampling and export.

        Call in `__init__` (inside the strategy scope). `update_ema` in
        `train_step` after the network's update moves the average;
        `sampling_network(name)` returns a copy of the network holding it.
        """
        ema = ExponentialMovingAverage(
            decay=decay, half_life_steps=half_life_steps, warmup=warmup, name=f"{network_name}_ema"
        )
        ema.track(self.network(network_name))
        setattr(self, f"{network_name}_ema", ema)
        copy = keras.models.clone_model(self.network(network_name))
        copy.trainable = False
        self._ema_copies.items[network_name] = copy

    def ema_of(self, network_name):
        return getattr(self, f"{network_name}_ema", None)

    def update_ema(self, network_name):
        self.ema_of(network_name).update(self.network(network_name), self.step_counter)

    def sampling_network(self, name):
        """The network to sample from: its EMA copy when one is kept, else itself."""
        ema = self.ema_of(name)
        if ema is None:
            return self.network(name)
        copy = self._ema_copies.items[name]
        ema.copy_to(copy, source=self.network(name))
        return copy

    def export_networks(self):
        """Networks the exported signatures use besides the tracked ones."""
        return list(self._ema_copies.items.values())

    # ------------------------------------------------------------- ranges
    def to_unit_range(self, images):
        low, high = self.data_range
        images = (tf.cast(images, tf.float32) - low) / (high - low)
        return tf.clip_by_value(images, 0.0, 1.0)

    def from_unit_range(self, images):
        low, high = self.data_range
        return tf.cast(images, tf.float32) * (high - low) + low

    # ------------------------------------------------------------ serving
    def serving_endpoints(self):
        """{name: (fn, input signature)} for `gan_zoo.export`; roles add theirs."""
        return {}

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        """(images in [0, 1], rows) for a sample grid; roles define it."""
        raise NotImplementedError(f"{type(self).__name__} has no sample preview.")


def _current_rate(optimizer):
    rate = optimizer.learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(rate(0)))
    return float(keras.ops.convert_to_numpy(rate))
