"""A tiny adversarial model that exercises every capability of the base.

Three update groups with a shared network (DiaGRAM's shape: the feature
network F is in both "fd" and "fe"), an optional update schedule, EMA of
the generator, an image pool, and two data streams ("x" and "y"). Its noise
is derived from the data, so one device and two replicas see the same
noise and must give the same weights.
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.layers.image_pool import ImagePool
from gan_zoo.models.adversarial import AdversarialModel


def _dense(units, inputs, name):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(units, name=f"{name}_dense")], name=name
    )


class ToyAdversarial(AdversarialModel):
    tracked_losses = ("d_loss", "e_loss", "g_loss")

    def __init__(self, schedule=None, ema=False, pool_size=0, seed=0, **kwargs):
        keras.utils.set_random_seed(seed)
        networks = {
            "features": _dense(6, 4, "features"),
            "head_d": _dense(1, 6, "head_d"),
            "head_e": _dense(1, 6, "head_e"),
            "generator": _dense(4, 3, "generator"),
        }
        super().__init__(networks, seed=seed, **kwargs)
        if schedule is not None:
            self.set_update_schedule(schedule)
        if ema:
            self.enable_ema("generator", decay=0.5)
        self.pool = ImagePool(pool_size, name="pool") if pool_size else None
        if self.pool is not None:
            self.pool.build((None, 2, 2, 1))

    def update_groups(self):
        return {"fd": ("features", "head_d"), "fe": ("features", "head_e"), "g": ("generator",)}

    def default_optimizers(self):
        return {g: keras.optimizers.SGD(0.1) for g in ("fd", "fe", "g")}

    def _d(self, x):
        return self.head_d(tf.tanh(self.features(x)))

    def train_step(self, data):
        x, y = tf.cast(data["x"], tf.float32), tf.cast(data["y"], tf.float32)
        z = tf.tanh(3.0 * x[:, :3])  # noise from the data
        zeros = tf.zeros([tf.shape(x)[0]])
        d_loss = e_loss = g_loss = zeros
        if self.updates("fd"):
            with tf.GradientTape() as tape:
                fake = self.generator(z)
                if self.pool is not None:
                    images = tf.reshape(fake, [-1, 2, 2, 1])
                    fake = tf.reshape(self.pool.query(images, self.stream_seed(7, per_replica=False)), [-1, 4])
                d_loss = tf.nn.softplus(-self._d(x))[:, 0] + tf.nn.softplus(self._d(fake))[:, 0]
                scaled = self.scale_loss("fd", self.reduce(d_loss))
            self.apply_group_gradients("fd", tape, scaled)
        if self.updates("fe"):
            with tf.GradientTape() as tape:
                e_loss = tf.square(self.head_e(tf.tanh(self.features(y)))[:, 0] - tf.reduce_mean(y, axis=1))
                scaled = self.scale_loss("fe", self.reduce(e_loss))
            self.apply_group_gradients("fe", tape, scaled)
        if self.updates("g"):
            with tf.GradientTape() as tape:
                g_loss = tf.nn.softplus(-self._d(self.generator(z)))[:, 0]
                scaled = self.scale_loss("g", self.reduce(g_loss))
            self.apply_group_gradients("g", tape, scaled)
            if self.ema_of("generator") is not None:
                self.update_ema("generator")
        self.track(d_loss=d_loss, e_loss=e_loss, g_loss=g_loss)
        return self.finish_step()


def toy_batches(start_step, steps, batch=8):
    """Batches whose content is a function of the global step index alone."""

    def make(step):
        seed = tf.stack([tf.cast(step, tf.int64), tf.constant(99, tf.int64)])
        x = tf.random.stateless_uniform((batch, 4), seed, -1.0, 1.0)
        y = tf.random.stateless_uniform((batch, 4), seed + 1, 0.0, 2.0)
        return {"x": x, "y": y}

    return tf.data.Dataset.range(start_step, start_step + steps).map(make)


def state_of(model):
    """Every variable of the model (networks, EMA shadows, pool, schedule, optimizers)."""
    values = {}
    for v in model.variables:
        path = v.path.replace(f"{model.name}/", "model/", 1)  # names differ per instance
        values[path] = np.array(v.numpy())
    for group, optimizer in model.optimizers_by_group().items():
        for i, v in enumerate(optimizer.variables):
            values[f"{group}_optimizer/{i}"] = np.array(v.numpy())
    return values
