"""The base class every zoo GAN subclasses.

It keeps the shape of the keras.io "customize what happens in fit" GAN
(`compile(g_optimizer, d_optimizer)`, a `train_step` with two tapes, `Mean`
trackers) and adds what that pattern lacks:

- losses reduced per GLOBAL batch (`reduce`), so one step under
  `tf.distribute.MirroredStrategy` applies the same update as one device;
- a random stream that differs per replica and is a pure function of
  (seed, training step, replica, stream id), so an interrupted run that is
  restored from a checkpoint draws exactly the noise it would have drawn;
- logged losses that are means over all replicas, not replica 0's;
- loss scaling for `mixed_float16` and float32 outputs under mixed policies;
- `.keras` round trips that keep both optimizers' states
  (`get_compile_config` / `compile_from_config`);
- `generate(n, labels, seed)` returning images in [0, 1].
"""

import numpy as np
import tensorflow as tf
import keras

from gan_zoo.options import PRECISIONS


def set_precision(policy):
    """Sets the global Keras dtype policy; one of float32 / mixed_(b)float16."""
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {policy!r}.")
    keras.mixed_precision.set_global_policy(policy)


def replica_id():
    """This replica's index in the whole sync group (0 outside tf.distribute)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context, e.g. a callback
        return tf.constant(0, tf.int32)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="gan_zoo")
class GAN(keras.Model):
    """Base class for the zoo's generative adversarial networks.

    Subclasses build `generator` and `discriminator` in their `__init__`, pass
    them here, and implement `train_step` with the helpers below
    (`sample_latent`, `random_normal`, `reduce`, `apply_gradients`, `track`).
    `call(z)` or `call([z, labels])` runs the generator.

    Args:
        generator: built `keras.Model` mapping z (and labels) to images in
            `data_range`.
        discriminator: built `keras.Model`.
        latent_dim: size of z.
        num_classes: 0 for an unconditional generator, else the number of
            classes it is conditioned on (labels are int class indices).
        latent_distribution: "normal" (N(0, 1)) or "uniform" (U[-1, 1]).
        data_range: (low, high) of the images the networks see.
        seed: base seed of the per-replica random stream.
    """

    tracked_losses = ("d_loss", "g_loss")

    def __init__(
        self,
        generator,
        discriminator,
        *,
        latent_dim,
        num_classes=0,
        latent_distribution="normal",
        data_range=(-1.0, 1.0),
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(
                "latent_distribution must be 'normal' or 'uniform', "
                f"got {latent_distribution!r}."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.latent_distribution = latent_distribution
        self.data_range = tuple(float(v) for v in data_range)
        self.seed = int(seed)
        # Counts train steps; it seeds the random stream and is saved with
        # the weights, so a restored run continues the same stream.
        self.step_counter = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="step_counter",
        )
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked_losses}
        self.g_optimizer = None
        self.d_optimizer = None
        self.initial_learning_rates = {}
        # The sub-networks are functional models, already built; building
        # the wrapper here lets fit() under a strategy and load_weights work.
        self.built = True

    # ------------------------------------------------------------ properties
    @property
    def image_shape(self):
        return tuple(self.generator.output_shape[1:])

    @property
    def conditional(self):
        return self.num_classes > 0

    @property
    def metrics(self):
        # Listing the trackers here makes Keras reset them every epoch.
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # --------------------------------------------------------------- compile
    def default_optimizers(self):
        """The paper's (g_optimizer, d_optimizer); subclasses override."""
        return (
            keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999),
            keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999),
        )

    def compile(self, g_optimizer=None, d_optimizer=None, jit_compile=False, **kwargs):
        """Configures training; without optimizers, uses the paper's.

        Args:
            g_optimizer: optimizer of the generator (and any generator-side
                networks).
            d_optimizer: optimizer of the discriminator.
            jit_compile: XLA-compile the train step (slower on CPU; measure
                with `benchmarks/throughput.py` before turning it on).
            **kwargs: passed to `keras.Model.compile` (e.g.
                `steps_per_execution`, `run_eagerly`).
        """
        default_g, default_d = self.default_optimizers()
        g_optimizer = keras.optimizers.get(g_optimizer or default_g)
        d_optimizer = keras.optimizers.get(d_optimizer or default_d)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            g_optimizer = _with_loss_scale(g_optimizer)
            d_optimizer = _with_loss_scale(d_optimizer)
        super().compile(optimizer=None, jit_compile=jit_compile, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Create the slots now: MirroredStrategy cannot create them lazily
        # inside the replicated train step.
        self.g_optimizer.build(self.generator_variables())
        self.d_optimizer.build(self.discriminator_variables())
        self.initial_learning_rates = {
            "g_optimizer": float(keras.ops.convert_to_numpy(g_optimizer.learning_rate)),
            "d_optimizer": float(keras.ops.convert_to_numpy(d_optimizer.learning_rate)),
        }

    def generator_variables(self):
        """Variables the generator optimizer updates (override to add more)."""
        return self.generator.trainable_variables

    def discriminator_variables(self):
        """Variables the discriminator optimizer updates."""
        return self.discriminator.trainable_variables

    def get_compile_config(self):
        if self.g_optimizer is None:
            return None
        return {
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config):
        self.compile(
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            jit_compile=config.get("jit_compile", False),
        )

    # ------------------------------------------------------ random stream
    def stream_seed(self, stream):
        """A stateless seed for (seed, step, replica, stream); shape [2]."""
        seed = tf.stack(
            [tf.constant(self.seed, tf.int64), tf.cast(self.step_counter, tf.int64)]
        )
        data = tf.cast(replica_id(), tf.int64) * 1_000_003 + stream
        return tf.random.experimental.stateless_fold_in(seed, data)

    def random_normal(self, shape, stream, stddev=1.0):
        return tf.random.stateless_normal(shape, self.stream_seed(stream), stddev=stddev)

    def random_uniform(self, shape, stream, minval=0.0, maxval=1.0):
        return tf.random.stateless_uniform(
            shape, self.stream_seed(stream), minval=minval, maxval=maxval
        )

    def sample_latent(self, batch_size, stream=0):
        shape = (batch_size, self.latent_dim)
        if self.latent_distribution == "uniform":
            return self.random_uniform(shape, stream, -1.0, 1.0)
        return self.random_normal(shape, stream)

    def sample_labels(self, batch_size, stream=1):
        return tf.random.stateless_uniform(
            (batch_size,), self.stream_seed(stream), 0, self.num_classes, dtype=tf.int32
        )

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

    def generator_inputs(self, z, labels):
        return [z, labels] if self.conditional else z

    @staticmethod
    def reduce(per_example_loss):
        """Mean over the GLOBAL batch: gradients summed over replicas match one device."""
        return tf.nn.compute_average_loss(tf.cast(per_example_loss, tf.float32))

    @staticmethod
    def apply_gradients(optimizer, tape, scaled_loss, variables):
        """Applies the gradients of `scaled_loss` (= optimizer.scale_loss(loss))."""
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def track(self, **per_example_losses):
        """Logs each loss as its replica-local mean; Keras then averages replicas."""
        for name, value in per_example_losses.items():
            self.trackers[name].update_state(tf.reduce_mean(tf.cast(value, tf.float32)))

    def finish_step(self):
        self.step_counter.assign_add(1)
        return {name: t.result() for name, t in self.trackers.items()}

    # ----------------------------------------------------------- inference
    def serving_endpoints(self):
        """Signatures `gan_zoo.export` writes: `generate(z[, labels])`."""
        from gan_zoo.export_lib import generate_endpoint

        return {"generate": generate_endpoint(self)}

    def to_unit_range(self, images):
        low, high = self.data_range
        images = (tf.cast(images, tf.float32) - low) / (high - low)
        return tf.clip_by_value(images, 0.0, 1.0)

    def from_unit_range(self, images):
        low, high = self.data_range
        return tf.cast(images, tf.float32) * (high - low) + low

    def latent(self, n, seed=0):
        """n latent vectors drawn deterministically from `seed`."""
        seed = tf.constant([int(seed), 0x5EED], tf.int64)
        shape = (int(n), self.latent_dim)
        if self.latent_distribution == "uniform":
            return tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
        return tf.random.stateless_normal(shape, seed)

    def generate(self, n=None, labels=None, seed=None, z=None, batch_size=256):
        """Generates images in [0, 1] as a float32 numpy array [n, H, W, C].

        Args:
            n: number of images (optional when `z` or `labels` is given).
            labels: for a conditional model, an int (every image of that
                class), a sequence of class indices, or None (classes cycle
                0, 1, ..., so each class gets an equal share).
            seed: seed of the latent draw; None draws a fresh one.
            z: explicit latent vectors [n, latent_dim] (overrides `seed`).
            batch_size: images generated per forward pass.
        """
        if z is not None:
            z = tf.convert_to_tensor(z, tf.float32)
            n = int(z.shape[0])
        elif n is None and labels is not None and not np.isscalar(labels):
            n = len(labels)
        if n is None:
            raise ValueError("generate() needs n, z, or a sequence of labels.")
        if z is None:
            seed = np.random.randint(2**31 - 1) if seed is None else seed
            z = self.latent(n, seed)
        labels = self._labels_for(n, labels)
        batches = []
        for start in range(0, n, batch_size):
            inputs = self.generator_inputs(
                z[start : start + batch_size],
                None if labels is None else labels[start : start + batch_size],
            )
            batches.append(self.to_unit_range(self.generator(inputs, training=False)))
        return keras.ops.convert_to_numpy(tf.concat(batches, axis=0))

    def _labels_for(self, n, labels):
        if not self.conditional:
            if labels is not None:
                raise ValueError("This generator is unconditional; pass labels=None.")
            return None
        if labels is None:
            labels = np.arange(n) % self.num_classes
        elif np.isscalar(labels):
            labels = np.full(n, int(labels))
        labels = np.asarray(labels, np.int32).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"Got {labels.shape[0]} labels for {n} images.")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}."
            )
        return tf.constant(labels)


def _with_loss_scale(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
