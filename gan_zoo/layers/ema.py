"""Exponential moving average of a network's weights (e.g. an EMA generator)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="gan_zoo")
class ExponentialMovingAverage(keras.layers.Layer):
    """Shadow copies of a network's trainable weights, averaged after each update.

    `shadow <- decay * shadow + (1 - decay) * weight`. The shadows are
    variables of this layer, so they are saved with the model and restored
    by a resumed run. They are created with `only_first_replica`
    aggregation: under `tf.distribute` every replica holds the same weights,
    so every replica computes the same average, and the update needs no
    cross-replica reduction.

    Sampling from an EMA generator (Karras et al. 2018; Yazici et al. 2019)
    gives visibly smoother, better-scoring samples than the raw generator
    at no training cost. `decay` may be given directly or as a half-life in
    steps (`decay = 0.5 ** (1 / half_life_steps)`, as stylegan2-ada gives
    it in images). With `warmup`, the decay used at step t is
    `min(decay, (1 + t) / (10 + t))` (TensorFlow's
    `ExponentialMovingAverage(num_updates=...)`), so early shadows are not
    dominated by the random initial weights.

    Args:
        decay: the averaging decay in [0, 1).
        half_life_steps: alternative to `decay`: steps after which a weight's
            contribution has halved.
        warmup: ramp the decay up over the first steps (see above).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> ema = ExponentialMovingAverage(decay=0.999)
    >>> ema.track(generator)                 # once, inside the strategy scope
    >>> ema.update(generator, step)          # in train_step, after G's update
    >>> ema.copy_to(generator_copy, generator)  # weights for sampling

    References: Karras, Aila, Laine & Lehtinen, "Progressive Growing of
    GANs", ICLR 2018; Yazici et al., "The Unusual Effectiveness of Averaging
    in GAN Training", ICLR 2019.
    """

    def __init__(self, decay=None, half_life_steps=None, warmup=False, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if (decay is None) == (half_life_steps is None):
            raise ValueError("Give exactly one of decay and half_life_steps.")
        if half_life_steps is not None:
            if float(half_life_steps) <= 0:
                raise ValueError(f"half_life_steps must be positive, got {half_life_steps}.")
            decay = 0.5 ** (1.0 / float(half_life_steps))
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        self.decay = float(decay)
        self.half_life_steps = None if half_life_steps is None else float(half_life_steps)
        self.warmup = bool(warmup)
        self.shadows = []

    def track(self, network):
        """Creates one shadow per trainable weight of `network`, set to its value."""
        if self.shadows:
            raise ValueError(f"{self.name} already tracks a network.")
        for index, weight in enumerate(network.trainable_weights):
            shadow = self.add_weight(
                shape=weight.shape,
                dtype=weight.dtype,
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name=f"shadow_{index}",
            )
            shadow.assign(weight)
            self.shadows.append(shadow)
        self.built = True

    def decay_at(self, step):
        """The decay used at training step `step` (a tensor)."""
        if not self.warmup:
            return tf.constant(self.decay, tf.float32)
        step = tf.cast(step, tf.float32)
        return tf.minimum(self.decay, (1.0 + step) / (10.0 + step))

    def update(self, network, step):
        """Moves every shadow towards `network`'s current weights."""
        decay = self.decay_at(step)
        for shadow, weight in zip(self.shadows, network.trainable_weights, strict=True):
            value = tf.cast(weight.value, tf.float32)
            new = decay * tf.cast(shadow.value, tf.float32) + (1.0 - decay) * value
            shadow.assign(tf.cast(new, shadow.dtype))

    def copy_to(self, network, source):
        """Makes `network` (a clone of `source`) hold the averaged weights.

        Trainable weights get their shadows; the others (e.g. batch-norm
        statistics) are copied from `source`. Weights are paired by position,
        which a clone keeps, whatever its own `trainable` flags.
        """
        shadow_of = {id(w): s for w, s in zip(source.trainable_weights, self.shadows, strict=True)}
        for target, original in zip(network.weights, source.weights, strict=True):
            target.assign(shadow_of.get(id(original), original))

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        if self.half_life_steps is not None:
            config.update({"half_life_steps": self.half_life_steps})
        else:
            config.update({"decay": self.decay})
        config.update({"warmup": self.warmup})
        return config
