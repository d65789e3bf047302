"""Training batches straight from a PathologyGAN HDF5 file, resumable.

`hdf5_training_stream` is to an HDF5 split what
`gan_zoo.data.pipeline.training_stream` is to an image folder: full batches
in an order that is a pure function of (seed, epoch), so a resumed run sees
the batches the uninterrupted one saw, read row by row from the file (no
copy in memory or on disk).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_zoo.data.he.hdf5 import DEFAULT_CACHE_BYTES, PathologyHDF5
from gan_zoo.data.pipeline import TrainingStream


def epoch_order(num_examples, seed, epoch):
    """The permutation of epoch `epoch`: a function of (seed, epoch) only."""
    return np.random.default_rng([int(seed), int(epoch), 0x4E5]).permutation(int(num_examples))


def hdf5_training_stream(
    path, *, batch_size, image_size, split="train", value_range=(0.0, 1.0), seed=0,
    start_epoch=0, epochs=None, cache_bytes=DEFAULT_CACHE_BYTES,
):
    """Shuffled full batches of one split of a PathologyGAN HDF5 file.

    Tiles of another size are resized (bilinear, antialiased, rounded to
    8 bits like a stored image) to `image_size`; pixels are scaled to
    `value_range`. Labels are not read (the GANs here are unconditional).

    Args:
        path: the HDF5 file.
        batch_size: examples per batch (the remainder of an epoch is dropped).
        image_size: side of the square images the model takes.
        split: the split to read (`{split}_img`).
        value_range: `(low, high)` for pixel values 0 and 255.
        seed: seed of the order.
        start_epoch: first epoch of the stream.
        epochs: epoch to stop before, or None for an endless stream.
        cache_bytes: h5py chunk cache of the reader.

    Returns:
        A `gan_zoo.data.pipeline.TrainingStream`.
    """
    with PathologyHDF5(path, split, cache_bytes) as tiles:
        num_examples, shape = len(tiles), tiles.image_shape
    batch_size, image_size = int(batch_size), int(image_size)
    steps = num_examples // batch_size
    if steps == 0:
        raise ValueError(
            f"{path}:{split}_img has {num_examples} tiles, fewer than batch_size={batch_size}."
        )
    stop = None if epochs is None else int(epochs)

    def batches():
        with PathologyHDF5(path, split, cache_bytes) as reader:
            epoch = int(start_epoch)
            while stop is None or epoch < stop:
                order = epoch_order(num_examples, seed, epoch)
                for step in range(steps):
                    rows = order[step * batch_size : (step + 1) * batch_size]
                    images = reader.read(rows)
                    yield images[0] if isinstance(images, tuple) else images
                epoch += 1

    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec((batch_size, *shape), tf.uint8)
    )
    low, high = (float(v) for v in value_range)

    def finish(images):
        images = tf.cast(images, tf.float32)
        if images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)
        if shape[:2] != (image_size, image_size):
            images = tf.image.resize(images, (image_size, image_size), antialias=True)
            images = tf.round(tf.clip_by_value(images, 0.0, 255.0))
        return images / 255.0 * (high - low) + low

    dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return TrainingStream(
        dataset=dataset.prefetch(2), steps_per_epoch=steps, num_examples=num_examples,
        batch_size=batch_size,
    )
