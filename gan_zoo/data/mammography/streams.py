"""DiaGRAM's two data streams: ROI patches and whole images in one fit.

`diagram_streams(whole, patches, batch_size=...)` yields dicts
`{"patches": (patches, labels), "images": (images, labels)}` with images
float32 in [-1, 1] (`[batch, s, s, 1]` and `[batch, S, S, 1]`), unpaired:
each stream has its own order, a function of `(seed, epoch, name)` only,
so a stream built with `start_epoch=k` yields exactly epoch k's batches.
An epoch is one pass over the whole images (`epoch_length="images"`);
the far more numerous patches go on through fresh permutations.

Two implementations with the same batches' layout:

- 8-bit data (every source file 8-bit): `gan_zoo.data.streams.
  training_streams(..., pairing="unpaired")` over in-memory uint8 sources
  (exact: an 8-bit file loses nothing at 8 bits);
- deeper data (16-bit PNG, 12-16-bit DICOM): that pipeline carries only
  uint8 images, so a float32 stream of the same contract is built here
  (`float_streams`), and the dynamic range reaches the model intact.

Random left-right mirroring applies to both streams by default, as in the
paper (`flips="both"` adds vertical flips; the patches were already rotated
and mirrored when cut, `augmented_crops`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from gan_zoo.data.order import flip_axes, stream_number
from gan_zoo.data.streams import StreamSource, training_streams


@dataclasses.dataclass(frozen=True)
class DiagramStream:
    """What `diagram_streams` returns.

    Args:
        dataset: yields `{"patches": (x, y), "images": (x, y)}` batches.
        steps_per_epoch: batches per epoch (one pass over the whole images).
        batch_size: examples of each stream per batch.
        kind: "uint8" (through `training_streams`) or "float32".
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    batch_size: int
    kind: str


def diagram_streams(whole, patches, *, batch_size, seed=0, start_epoch=0, epochs=None,
                    flips="horizontal", force_float=False) -> DiagramStream:
    """The two unpaired streams of DiaGRAM (see the module docstring).

    Args:
        whole: `MammogramArrays` of whole images (with labels).
        patches: `MammogramArrays` of ROI patches (with labels).
        batch_size: examples of each stream per batch.
        seed: seed of orders and flips.
        start_epoch: first epoch yielded.
        epochs: epoch to stop before (None: endless).
        flips: random flips (`gan_zoo.data.order.flip_axes`): "horizontal"
            by default, as the paper mirrors images across the vertical axis
            only (a mammogram's top and bottom are not interchangeable).
        force_float: use the float32 stream even for 8-bit data.
    """
    for name, part in (("whole images", whole), ("ROI patches", patches)):
        if part is None or len(part) == 0:
            raise ValueError(f"DiaGRAM needs {name}; none were found in the training records.")
    if len(whole) < batch_size:
        raise ValueError(f"{len(whole)} whole images hold no full batch of {batch_size}.")
    sources = {"patches": patches, "images": whole}
    if max(whole.bit_depth, patches.bit_depth) <= 8 and not force_float:
        streams = training_streams(
            {name: _uint8_source(name, arrays, flips) for name, arrays in sources.items()},
            batch_size=batch_size, seed=seed, start_epoch=start_epoch, epochs=epochs,
            pairing="unpaired", epoch_length="images",
        )
        return DiagramStream(streams.dataset, streams.steps_per_epoch, batch_size, "uint8")
    return float_streams(sources, batch_size=batch_size, seed=seed, start_epoch=start_epoch,
                         epochs=epochs, flips=flips, epoch_length="images")


def _uint8_source(name, arrays, flips):
    pixels = np.clip(np.round(arrays.images * 255.0), 0, 255).astype(np.uint8)
    dataset = tf.data.Dataset.from_tensor_slices({"image": pixels, "label": arrays.labels})
    side = arrays.images.shape[1]
    return StreamSource(dataset, image_size=side, channels=1, value_range=(-1.0, 1.0),
                        size_policy="error", flips=flips, cache="memory", labels=True,
                        what=f"DiaGRAM {name}")


def float_streams(sources, *, batch_size, seed=0, start_epoch=0, epochs=None, flips="horizontal",
                  epoch_length="images") -> DiagramStream:
    """float32 unpaired streams `{name: (images in [-1, 1], labels)}`.

    Each source's epoch-e order is a permutation keyed by (seed, e, name),
    continued by further permutations when the epoch is longer than the
    source; flips are keyed likewise, per example.

    Args:
        sources: `{name: MammogramArrays}`.
        batch_size: examples per source per batch.
        seed, start_epoch, epochs, flips: as `diagram_streams`.
        epoch_length: the source whose length is an epoch.
    """
    length = len(sources[epoch_length])
    steps = length // batch_size
    if steps == 0:
        raise ValueError(f"An epoch of {length} examples holds no full batch of {batch_size}.")
    per_epoch = steps * batch_size
    horizontal, vertical = flip_axes(flips)
    epoch_numbers = (tf.data.Dataset.counter(start_epoch) if epochs is None
                     else tf.data.Dataset.range(start_epoch, epochs))
    parts = {}
    for name, arrays in sources.items():
        images = tf.constant(arrays.images * 2.0 - 1.0, tf.float32)
        labels = tf.constant(arrays.labels, tf.int32)
        count, stream = len(arrays), stream_number(name) % 1_000_003
        cycles = math.ceil(per_epoch / count)

        def epoch_indices(epoch, count=count, stream=stream, cycles=cycles):
            base = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            fold = tf.random.experimental.stateless_fold_in
            order = tf.concat([tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), fold(base, stream * 100 + c))
                for c in range(cycles)], 0)[:per_epoch]
            flip_bits = tf.random.stateless_uniform([per_epoch, 2], fold(base, stream * 100 + 99),
                                                    0, 2, tf.int32)
            return tf.data.Dataset.from_tensor_slices((order, flip_bits))

        def load(index, bits, images=images, labels=labels):
            image = tf.gather(images, index)
            if horizontal:
                image = tf.cond(bits[0] > 0, lambda: tf.reverse(image, [1]), lambda: image)
            if vertical:
                image = tf.cond(bits[1] > 0, lambda: tf.reverse(image, [0]), lambda: image)
            return image, tf.gather(labels, index)

        parts[name] = (epoch_numbers.flat_map(epoch_indices)
                       .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                       .batch(batch_size, drop_remainder=True))
    dataset = tf.data.Dataset.zip(parts).prefetch(tf.data.AUTOTUNE)
    return DiagramStream(dataset, steps, batch_size, "float32")
