"""CycleGAN's history of generated images (Shrivastava et al. 2017)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="gan_zoo")
class ImagePool(keras.layers.Layer):
    """A buffer of past generated images that the discriminator also sees.

    For each image of a batch, in order: while the pool is not full, the
    image is stored and returned; once it is full, with probability 1/2 a
    random stored image is returned and replaced by the new one, else the new
    image is returned (the CycleGAN reference's `ImagePool.query`). Returned
    images carry no gradient (only the discriminator uses them).

    The pool is one buffer over the GLOBAL batch: under `tf.distribute`,
    every replica gathers the batch of all replicas, applies the same draws
    (the seed must not depend on the replica) and keeps its own slice of the
    result, so N replicas update and return exactly what one device would
    with the global batch. The buffer and its fill count are variables, so
    they are saved with the model and a resumed run continues with the same
    pool. `pool_size=0` disables the pool.

    Args:
        pool_size: images kept (50 in the reference).
        **kwargs: base `keras.layers.Layer` arguments.

    References: Shrivastava et al., "Learning from Simulated and
    Unsupervised Images through Adversarial Training", CVPR 2017; Zhu, Park,
    Isola & Efros, "Unpaired Image-to-Image Translation using
    Cycle-Consistent Adversarial Networks", ICCV 2017.
    """

    def __init__(self, pool_size=50, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if int(pool_size) < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}.")
        self.pool_size = int(pool_size)

    def build(self, image_shape):
        shape = (max(self.pool_size, 1), *tuple(image_shape)[-3:])
        self.images = self.add_weight(
            shape=shape, dtype="float32", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="images",
        )
        self.count = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="count",
        )
        self.built = True

    def query(self, images, seed):
        """Images for the discriminator: the batch with some swapped for past ones.

        Args:
            images: this replica's generated batch `[b, H, W, C]`.
            seed: stateless seed (int64 `[2]`), the same on every replica.
        """
        images = tf.stop_gradient(tf.cast(images, tf.float32))
        if self.pool_size == 0:
            return images
        if not self.built:
            self.build(images.shape)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        local = tf.shape(images)[0]
        batch = context.all_gather(images, axis=0) if replicas > 1 else images
        total = tf.shape(batch)[0]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        use_stored = tf.random.stateless_uniform([total], seeds[0]) > 0.5
        slots = tf.random.stateless_uniform([total], seeds[1], 0, self.pool_size, dtype=tf.int32)

        def step(i, pool, count, out):
            image = batch[i]

            def fill():
                return tf.tensor_scatter_nd_update(pool, [[count]], [image]), count + 1, image

            def swap():
                slot = slots[i]
                return tf.tensor_scatter_nd_update(pool, [[slot]], [image]), count, pool[slot]

            def keep():
                return pool, count, image

            pool, count, chosen = tf.cond(
                count < self.pool_size, fill, lambda: tf.cond(use_stored[i], swap, keep)
            )
            return i + 1, pool, count, out.write(i, chosen)

        out = tf.TensorArray(tf.float32, size=total, element_shape=images.shape[1:])
        _, pool, count, out = tf.while_loop(
            lambda i, *_: i < total, step,
            (tf.constant(0), tf.convert_to_tensor(self.images.value), tf.convert_to_tensor(self.count.value), out),
        )
        # One assignment after the loop: an update of a distributed variable
        # inside control flow would be a synchronisation point there.
        self.images.assign(pool)
        self.count.assign(count)
        chosen = out.stack()
        replica = context.replica_id_in_sync_group if replicas > 1 else 0
        return chosen[replica * local : (replica + 1) * local]

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.update({"pool_size": self.pool_size})
        return config
