"""Epoch order: which example comes where in each epoch, and its flips.

Every random choice of an epoch is a pure function of `(seed, epoch)` (and,
for one of several named streams, of the stream), through stateless random
ops keyed by them: independent of `tf.random.set_seed` and of the epochs
before. So a stream rebuilt at epoch k yields exactly what epoch k had.

- Sources read by index (file records, and every cached source): a global
  permutation of all examples per epoch, so every batch samples the whole
  epoch, and a cache changes nothing about the order. An epoch longer than
  its source (the shorter of several streams) goes on through further
  permutations, the c-th keyed by the cycle c as well.
- Dataset sources without a cache can only be read in their own order: a
  shuffle buffer of `shuffle_buffer` examples, seeded the same way. With a
  source larger than the buffer, a batch samples only a window of the
  source's order (for IDC, neighbouring patients): give such sources a cache.
- Flips: horizontal and vertical, each with probability 1/2, keyed by
  `(seed, epoch, position in the epoch)`, whatever the kind of source.
"""

from __future__ import annotations

import hashlib

import tensorflow as tf

from gan_zoo.data.preprocess import check_positive

# Shuffle buffers (of uncached dataset sources) hold uint8 images; this caps
# their memory by default.
_SHUFFLE_BUFFER_BYTES = 256 * 2**20
# Graph-level seed fixed inside each function that shuffles with a buffer,
# so that the buffer's order does not depend on the caller's
# `tf.random.set_seed`.
_FIXED_GRAPH_SEED = 20240607


def stream_number(name: str) -> int:
    """A stable 63-bit number for a stream name, folded into its keys.

    Python's `hash` of a string changes between processes; this does not.
    """
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_range(start_epoch, epochs):
    """The epoch numbers a stream yields, as an int64 dataset (checked).

    Args:
        start_epoch: the first epoch, >= 0.
        epochs: the epoch to stop before (>= start_epoch), or None: endless.
    """
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, got {start_epoch}.")
    # epochs == start_epoch (a finished run resumed) is allowed: no batches.
    if epochs is not None and epochs < start_epoch:
        raise ValueError(f"epochs ({epochs}) must be at least start_epoch ({start_epoch}).")
    if epochs is None:
        return tf.data.Dataset.counter(start_epoch)
    return tf.data.Dataset.range(start_epoch, epochs)


def default_shuffle_buffer(shuffle_buffer, prep, batch_size):
    """`shuffle_buffer` checked, or the default: 256 MiB of images, >= a batch.

    Args:
        shuffle_buffer: a positive int, or None for the default.
        prep: the `Preprocessing` (its image shape sizes the default).
        batch_size: the default's minimum.
    """
    if shuffle_buffer is None:
        image_bytes = prep.image_size[0] * prep.image_size[1] * prep.channels
        shuffle_buffer = max(batch_size, _SHUFFLE_BUFFER_BYTES // image_bytes)
    check_positive("shuffle_buffer", shuffle_buffer)
    return shuffle_buffer


def epoch_keys(seed, epoch, stream=None):
    """Three independent stateless keys for (permutation, buffer, flips).

    Args:
        seed: the stream's seed (int).
        epoch: int64 tensor or int.
        stream: None, or a `stream_number` folded in so that streams of one
            seed have independent orders.
    """
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    if stream is not None:
        key = tf.random.experimental.stateless_fold_in(key, tf.constant(stream, tf.int64))
    return tf.random.experimental.stateless_split(key, 3)


def epoch_examples(
    prepared, epoch_numbers, *, seed, per_epoch, stream=None, flips=False, shuffle_buffer=None,
    skip=0,
):
    """Unbatched examples of the given epochs, in order, with their flips.

    Args:
        prepared: a `PreparedSource`.
        epoch_numbers: int64 dataset of the epochs to yield.
        seed: the stream's seed.
        per_epoch: examples per epoch; more than the source holds cycles on
            through further permutations (or buffer passes).
        stream: None or a `stream_number` (see `epoch_keys`); also keys flips.
        flips: random flips (`flip_axes`: False, True / "both", "horizontal").
        shuffle_buffer: buffer size for `"buffer"` sources.
        skip: examples to leave out at the start (indices are skipped before
            anything is decoded, except for `"buffer"` sources).

    Returns:
        A dataset of dicts: `"image"`, `"label"` when labelled, and the tags
        `"epoch"` and `"position"` (in the epoch).
    """
    count = prepared.num_examples
    if prepared.kind == "buffer":
        buffer_size = min(shuffle_buffer, count)
        dataset = epoch_numbers.flat_map(
            _buffered_epoch(prepared.base, count, per_epoch, buffer_size, seed, stream)
        )
        dataset = dataset.skip(skip)
    else:
        indices = epoch_numbers.flat_map(_permuted_epoch(count, per_epoch, seed, stream))
        dataset = prepared.load(indices.skip(skip))
    horizontal, vertical = flip_axes(flips)
    if horizontal:
        dataset = dataset.map(
            _flip_fn(seed, stream, vertical), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return dataset


def _cycles(count, per_epoch):
    return -(-per_epoch // count)


def _cycle_key(key, cycle):
    """The key of cycle `cycle`; cycle 0 keeps `key` itself."""
    cycle = tf.cast(cycle, tf.int64)
    return tf.where(
        tf.equal(cycle, 0), key, tf.random.experimental.stateless_fold_in(key, cycle)
    )


def _tag(epoch, dataset):
    """Adds the epoch number and the position in the epoch to each element."""
    return dataset.enumerate().map(
        lambda position, element: {**element, "epoch": epoch, "position": position}
    )


def _permuted_epoch(count, per_epoch, seed, stream):
    """Epoch function for sources read by index: stateless permutations.

    Only indices flow through the epoch boundary; reading happens after
    `flat_map`, in one parallel map that runs on across epochs.
    """
    cycles = _cycles(count, per_epoch)

    def permutation(key):
        return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), key)

    def epoch_fn(epoch):
        keys = epoch_keys(seed, epoch, stream)
        if cycles == 1:
            order = tf.data.Dataset.from_tensor_slices(permutation(keys[0])[:per_epoch])
        else:
            order = tf.data.Dataset.range(cycles).flat_map(
                lambda cycle: tf.data.Dataset.from_tensor_slices(
                    permutation(_cycle_key(keys[0], cycle))
                )
            )
            order = order.take(per_epoch)
        return _tag(epoch, order.map(lambda index: {"index": index}))

    return epoch_fn


def _buffered_epoch(base, count, per_epoch, buffer_size, seed, stream):
    """Epoch function for uncached dataset sources: seeded shuffle buffers."""
    cycles = _cycles(count, per_epoch)

    def shuffled(key):
        # Inside a traced function `set_seed` sets only that function's
        # graph-level seed, which `shuffle` combines with its own seed.
        # Fixing it here makes the order independent of the caller's global
        # seed, so it depends on the keys alone.
        tf.random.set_seed(_FIXED_GRAPH_SEED)
        shuffle_seed = tf.random.stateless_uniform(
            [], key, minval=0, maxval=2**31 - 1, dtype=tf.int64
        )
        return base.shuffle(buffer_size, seed=shuffle_seed, reshuffle_each_iteration=False)

    def epoch_fn(epoch):
        keys = epoch_keys(seed, epoch, stream)
        if cycles == 1:
            passes = shuffled(keys[1])
        else:
            passes = tf.data.Dataset.range(cycles).flat_map(
                lambda cycle: shuffled(_cycle_key(keys[1], cycle))
            )
        return _tag(epoch, passes.take(per_epoch))

    return epoch_fn


def flip_axes(flips):
    """`(horizontal, vertical)` flips of a `flips` option.

    Args:
        flips: False (none), True or "both" (random horizontal and vertical
            flips, each with probability 1/2), or "horizontal" (mirror
            images left-right only: e.g. mammograms, whose up and down are
            not interchangeable).
    """
    if flips is False or flips is None:
        return False, False
    if flips is True or flips == "both":
        return True, True
    if flips == "horizontal":
        return True, False
    raise ValueError(f"flips must be False, True, 'both' or 'horizontal'; got {flips!r}.")


def _flip_fn(seed, stream, vertical_flips=True):
    def flip(element):
        keys = epoch_keys(seed, element["epoch"], stream)
        key = tf.random.experimental.stateless_fold_in(keys[2], element["position"])
        # The vertical key is drawn either way: horizontal flips do not
        # depend on whether vertical ones are made.
        horizontal, vertical = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        image = tf.image.stateless_random_flip_left_right(element["image"], horizontal)
        if vertical_flips:
            image = tf.image.stateless_random_flip_up_down(image, vertical)
        return {**element, "image": image}

    return flip


def finalize_fn(scale, has_labels):
    """Batch dicts to `(images, labels)` or `images`, scaled to float32.

    Args:
        scale: `(low, step)` from `preprocess.scaling`.
        has_labels: whether to yield labels.
    """
    low, step = scale

    def finalize(batch):
        images = tf.cast(batch["image"], tf.float32) * step + low
        return (images, batch["label"]) if has_labels else images

    return finalize
