"""tf.data pipelines: image files or datasets in, float32 batches out.

Two entry points:

- `training_stream`: an endless (or `epochs`-long) stream of shuffled,
  optionally flipped, full batches whose epoch `e` is a pure function of
  `(seed, e)`, so a resumed run sees exactly the batches the uninterrupted
  run would have seen.
- `evaluation_dataset`: one ordered pass, no shuffling, no augmentation.

Several sources in one fit: `gan_zoo.data.streams.training_streams`.

A *source* is either a sequence of `ImageRecord` (an `ImageFolder` works too),
decoded from files, or a `tf.data.Dataset` of dicts with `"image"` (uint8,
HxWxC or HxW) and optionally `"label"`, e.g. parsed TFRecords or a TFDS split
(see `gan_zoo.data.sources`). Images are kept as uint8 through decoding,
resizing, caching and flipping (`gan_zoo.data.preprocess`) and scaled to
`value_range` as float32 batches at the very end. The order of epochs is
`gan_zoo.data.order`; caches are `gan_zoo.data.cache`.

    >>> folder = scan_image_folder("data/idc")
    >>> stream = training_stream(folder, batch_size=64, image_size=(50, 50))
    >>> model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch,
    ...           epochs=20, initial_epoch=0)
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from gan_zoo.data.image_folder import check_on_error
from gan_zoo.data.order import (
    default_shuffle_buffer,
    epoch_examples,
    epoch_range,
    finalize_fn,
)
from gan_zoo.data.preprocess import (
    SIZE_POLICIES,
    check_positive,
    naming,
    preprocessing,
    scaling,
)
from gan_zoo.data.sources import (
    as_records,
    dataset_base,
    prepare_source,
    record_tensors,
    records_base,
)

__all__ = ["SIZE_POLICIES", "TrainingStream", "evaluation_dataset", "training_stream"]


@dataclasses.dataclass(frozen=True)
class TrainingStream:
    """What `training_stream` returns.

    Args:
        dataset: yields `(images, labels)` batches, or `images` for unlabelled
            sources; images are float32 `[batch, h, w, channels]` in
            `value_range`, labels int32 `[batch]`.
        steps_per_epoch: full batches per epoch (`num_examples // batch_size`);
            pass it to `model.fit`.
        num_examples: examples in one pass over the source (after skipping
            unreadable files).
        batch_size: examples per batch.
        skipped: `(path, reason)` of files left out with `on_error="skip"`
            (empty for dataset sources, whose elements have no path).
        num_skipped: how many files or elements `on_error="skip"` left out;
            None when a dataset source's cardinality is unknown, so what was
            dropped cannot be counted.
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    num_examples: int
    batch_size: int
    skipped: tuple[tuple[str, str], ...] = ()
    num_skipped: int | None = 0


def training_stream(
    source,
    *,
    batch_size: int,
    image_size,
    channels: int = 3,
    value_range: tuple[float, float] = (-1.0, 1.0),
    size_policy: str = "resize",
    seed: int = 0,
    start_epoch: int = 0,
    epochs: int | None = None,
    cache: str | None = None,
    flips: bool = False,
    shuffle_buffer: int | None = None,
    on_error: str = "raise",
    pad_value: int = 0,
    cache_key: str | None = None,
    what: str | None = None,
) -> TrainingStream:
    """Builds a resumable stream of shuffled training batches.

    The dataset is the concatenation of epochs `start_epoch, start_epoch + 1,
    ...` up to `epochs - 1` (or endless when `epochs` is None). Each epoch is
    exactly `steps_per_epoch` full batches (the remainder is dropped), and
    its order and flips are a pure function of `(seed, epoch)`, independent
    of `tf.random.set_seed` and of which epochs came before. So a run that
    restarts at epoch k with `start_epoch=k` sees exactly the batches the
    uninterrupted run saw in epoch k. Use it as

        model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch,
                  epochs=E, initial_epoch=k, shuffle=False)

    Order within an epoch (`gan_zoo.data.order`): for file records, and for
    any source with a cache, a global permutation of all examples (a
    stateless shuffle keyed by `(seed, epoch)`), so every batch samples the
    whole epoch, and a cache, in memory or in a file, never changes the
    batches: the same seed gives the same images, labels and flips with
    `cache=None`, `"memory"` or a file. A dataset source without a cache
    can only be read in its own order: a shuffle buffer of `shuffle_buffer`
    examples seeded by `(seed, epoch)`; its order differs from the cached
    one, and with a source larger than the buffer a batch samples only a
    window of the source (give large dataset sources a cache).

    Unreadable files: with `on_error="raise"` the first one reached raises an
    `InvalidArgumentError` whose message names the file and the problem
    (empty, truncated PNG/JPEG, unknown format, corrupt data, missing). With
    `on_error="skip"` all files are test-decoded once up front (one extra
    pass) so that the count, `num_examples` and `steps_per_epoch` are exact;
    the bad ones are logged and listed in `TrainingStream.skipped`. To check
    a folder without building a pipeline, use
    `scan_image_folder(root, verify=True)`. For a dataset source, elements
    that fail to decode are dropped (`ignore_errors`) and counted in
    `TrainingStream.num_skipped` when the source's cardinality is known.

    A dataset source whose cardinality is unknown (e.g. TFRecords) is counted
    with one pass; to avoid that, declare its size with
    `source.apply(tf.data.experimental.assert_cardinality(n))`, which
    TensorFlow also checks.

    Args:
        source: a sequence of `ImageRecord` (or an `ImageFolder`), or a
            finite `tf.data.Dataset` of dicts with `"image"` (uint8) and
            optionally `"label"`, in a fixed order.
        batch_size: examples per batch.
        image_size: `(height, width)` of the output, or one int for squares.
        channels: 1 (grayscale) or 3 (RGB); other inputs are converted
            (alpha dropped, gray repeated, RGB to luma).
        value_range: `(low, high)`: pixel 0 maps to low, 255 to high. GANs use
            (-1, 1), classifiers (0, 1).
        size_policy: for images whose size differs from `image_size`:
            `"resize"` (bilinear, antialiased); `"pad"` or `"crop"` (each axis
            is centred independently: padded with `pad_value` where too small,
            cropped where too large; the two names give the same pixels and
            exist so a config can say which case it expects); `"pad_end"`
            (the top-left corner stays put: padded at the bottom and right,
            cropped there too; for tiles cut at a slide's border, as IDC's);
            `"error"` (raise, naming the file).
        seed: seed of the shuffling and flips.
        start_epoch: the first epoch the stream yields.
        epochs: the epoch to stop before (like `model.fit`'s `epochs`), or
            None for an endless stream.
        cache: None, `"memory"`, or a file path prefix. Decoded, resized
            uint8 images are cached as one array read by index, so no epoch
            opens the files again; the cache is filled when the stream is
            built. A file cache is a memory-mapped `.npy` file (bounded
            memory, written once and atomically) whose name hashes what its
            images depend on: the preprocessing options and, for file
            records, each file's path, label, size and modification time, so
            files rewritten in place are read afresh; for a dataset source,
            `cache_key`, its element spec and its cardinality. It is reused
            by a resumed process and by `evaluation_dataset`.
        flips: random horizontal and vertical flips, each with probability
            1/2, seeded by `(seed, epoch, position in epoch)`.
        shuffle_buffer: images in the shuffle buffer (dataset sources
            without a cache only). Default: the whole epoch, capped at
            256 MiB of images.
        on_error: `"raise"` or `"skip"` for unreadable files (see above).
        pad_value: the constant used by the pad policies.
        cache_key: required with a file `cache` and a dataset source: a
            string naming its data (e.g. the split and patients), since a
            dataset's contents cannot be hashed without reading it.
        what: a few words naming the source in error messages, e.g.
            "training split of data/idc".

    Returns:
        A `TrainingStream`.
    """
    prep = preprocessing(image_size, channels, size_policy, pad_value)
    scale = scaling(value_range)
    check_positive("batch_size", batch_size)
    check_on_error(on_error)
    epoch_numbers = epoch_range(start_epoch, epochs)
    prepared = prepare_source(
        source, prep, cache=cache, cache_key=cache_key, on_error=on_error, what=what
    )
    steps_per_epoch = prepared.num_examples // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"The source{naming(what)} has {prepared.num_examples} examples, fewer than "
            f"batch_size={batch_size}: not one full batch per epoch."
        )
    dataset = epoch_examples(
        prepared,
        epoch_numbers,
        seed=seed,
        per_epoch=steps_per_epoch * batch_size,
        flips=flips,
        shuffle_buffer=default_shuffle_buffer(shuffle_buffer, prep, batch_size),
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        finalize_fn(scale, prepared.has_labels),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return TrainingStream(
        dataset=dataset.prefetch(tf.data.AUTOTUNE),
        steps_per_epoch=steps_per_epoch,
        num_examples=prepared.num_examples,
        batch_size=batch_size,
        skipped=prepared.skipped,
        num_skipped=prepared.num_skipped,
    )


def evaluation_dataset(
    source,
    *,
    batch_size: int,
    image_size,
    channels: int = 3,
    value_range: tuple[float, float] = (-1.0, 1.0),
    size_policy: str = "resize",
    cache: str | None = None,
    on_error: str = "raise",
    pad_value: int = 0,
    cache_key: str | None = None,
    what: str | None = None,
) -> tf.data.Dataset:
    """One ordered pass over `source`: no shuffling, no augmentation.

    The last batch may be smaller. With `on_error="skip"` an unreadable file
    is dropped and a warning naming it is printed to stderr (with a cache,
    files are checked when the cache is filled, and logged); with `"raise"`
    the error names the file. Arguments are as for `training_stream`; an
    empty source raises a ValueError naming it by `what`.

    Returns:
        A dataset of `(images, labels)` batches, or `images` when the source
        has no labels; images are float32 in `value_range`.
    """
    prep = preprocessing(image_size, channels, size_policy, pad_value)
    scale = scaling(value_range)
    check_positive("batch_size", batch_size)
    check_on_error(on_error)
    if cache is not None:
        # The cache of training_stream: the same key, so one fill serves both.
        prepared = prepare_source(
            source, prep, cache=cache, cache_key=cache_key, on_error=on_error, what=what
        )
        indices = tf.data.Dataset.range(prepared.num_examples)
        dataset = prepared.cache.gather(indices.map(lambda index: {"index": index}))
        has_labels = prepared.has_labels
    elif isinstance(source, tf.data.Dataset):
        if int(source.cardinality()) == 0:
            raise ValueError(f"The dataset source{naming(what)} is empty.")
        dataset, has_labels = dataset_base(source, prep, on_error)
    else:
        paths, labels = record_tensors(as_records(source, what))
        has_labels = labels is not None
        dataset = records_base(paths, labels, prep, skip=on_error == "skip")
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        finalize_fn(scale, has_labels), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
