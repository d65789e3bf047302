"""Several data sources in one fit, and per-step mixes of real and synthetic data.

`training_streams({name: StreamSource})` yields one dict per batch,
`{name: images}` or `{name: (images, labels)}`, which Keras `fit` hands to
`train_step` as it is:

- `pairing="unpaired"` (CycleGAN's domains A and B, DiaGRAM's patches and
  whole images): every source has its own order, a function of
  `(seed, epoch, name)` only; a source shorter than the epoch goes on
  through further permutations (cycles) keyed by the cycle as well.
- `pairing="aligned"` (an image, its mask and its class): sources of equal
  length share one permutation per epoch, and random flips are drawn once per
  example and applied identically to every source, so example i of each
  source stays together. `ImageRecord.mask_path` and `mask_records` give the
  mask source of image records.

Like `training_stream`, the stream built with `start_epoch=k` yields exactly
the batches of epoch k of a stream built from epoch 0.

`unpaired_source(domain_a, domain_b, image_size=...)` wraps an unpaired
`{"a", "b"}` stream as the `(start_epoch, epochs) -> stream` callable that
`gan_zoo.training.loop.train_gan` takes (an image translator's two domains).

`mixed_batches(real, synthetic, real_share)` is a per-step curriculum: the
batch of step s holds `round(real_share(s) * batch_size)` real examples and
synthetic ones for the rest (ciGAN's classifier raises the real share every
1,000 iterations).

    >>> streams = training_streams(
    ...     {"a": StreamSource(domain_a, image_size=256, flips=True),
    ...      "b": StreamSource(domain_b, image_size=256, flips=True)},
    ...     batch_size=1, seed=0)
    >>> model.fit(streams.dataset, steps_per_epoch=streams.steps_per_epoch,
    ...           epochs=200, shuffle=False)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import tensorflow as tf

from gan_zoo.data.image_folder import check_on_error
from gan_zoo.data.order import (
    default_shuffle_buffer,
    epoch_examples,
    epoch_range,
    finalize_fn,
    stream_number,
)
from gan_zoo.data.preprocess import check_positive, preprocessing, scaling
from gan_zoo.data.sources import PreparedSource, prepare_source

PAIRINGS = ("unpaired", "aligned")


@dataclasses.dataclass(frozen=True)
class StreamSource:
    """One source of `training_streams` or `mixed_batches`, and how to read it.

    The options are those of `gan_zoo.data.pipeline.training_stream`.

    Args:
        source: a sequence of `ImageRecord` (or an `ImageFolder`), or a
            finite `tf.data.Dataset` of dicts with `"image"` (uint8) and
            optionally `"label"`.
        image_size: `(height, width)` of the output, or one int.
        channels: 1 or 3.
        value_range: `(low, high)` that pixels 0 and 255 map to.
        size_policy: `"resize"`, `"pad"`, `"crop"`, `"pad_end"` or `"error"`.
        flips: random horizontal and vertical flips.
        cache: None, `"memory"` or a file path prefix.
        labels: yield `(images, labels)` (True), `images` (False), or
            whatever the source has (None).
        on_error: `"raise"` or `"skip"` for unreadable files.
        pad_value: the constant of the pad policies.
        cache_key: names a dataset source's data, for a file cache.
        shuffle_buffer: buffer size for a dataset source without a cache.
        what: a few words naming the source in errors (default: its name).
    """

    source: object
    image_size: int | tuple[int, int]
    channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    size_policy: str = "resize"
    flips: bool = False
    cache: str | None = None
    labels: bool | None = None
    on_error: str = "raise"
    pad_value: int = 0
    cache_key: str | None = None
    shuffle_buffer: int | None = None
    what: str | None = None


@dataclasses.dataclass(frozen=True)
class MultiStream:
    """What `training_streams` returns.

    Args:
        dataset: yields `{name: images}` or `{name: (images, labels)}` per
            batch; images float32 `[batch, h, w, c]`, labels int32 `[batch]`.
        steps_per_epoch: full batches per epoch; pass it to `model.fit`.
        batch_size: examples per batch, of every source.
        examples_per_epoch: `steps_per_epoch * batch_size`.
        num_examples: `{name: examples in one pass over that source}`.
        skipped: `{name: (path, reason) of files left out}`.
        num_skipped: `{name: files or elements left out}` (None: unknown).
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    batch_size: int
    examples_per_epoch: int
    num_examples: dict[str, int]
    skipped: dict[str, tuple[tuple[str, str], ...]]
    num_skipped: dict[str, int | None]


@dataclasses.dataclass(frozen=True)
class MixedStream:
    """What `mixed_batches` returns.

    Args:
        dataset: yields dicts `{"images", "real"}` and, when both sources are
            labelled, `"labels"`: images float32 `[batch, h, w, c]` with the
            real examples first, `real` bool `[batch]`, labels int32.
        batch_size: examples per batch.
        real_count: `real_count(step)`, the real examples of that step.
        num_real: examples in one pass over the real source.
        num_synthetic: examples in one pass over the synthetic source.
    """

    dataset: tf.data.Dataset
    batch_size: int
    real_count: Callable[[int], int]
    num_real: int
    num_synthetic: int


@dataclasses.dataclass(frozen=True)
class _Ready:
    """A named source, prepared, with what it yields."""

    name: str
    spec: StreamSource
    prepared: PreparedSource
    scale: tuple[float, float]
    labels: bool

    @property
    def count(self):
        return self.prepared.num_examples


def training_streams(
    sources: dict[str, StreamSource],
    *,
    batch_size: int,
    seed: int = 0,
    start_epoch: int = 0,
    epochs: int | None = None,
    pairing: str = "unpaired",
    epoch_length: str = "max",
) -> MultiStream:
    """Builds one resumable stream of batches from several sources.

    Every epoch has `steps_per_epoch` batches, each holding `batch_size`
    examples of every source. Order and flips of epoch e are a function of
    `(seed, e, name)` (unpaired) or `(seed, e)` (aligned) only, so a stream
    built with `start_epoch=k` yields exactly epoch k's batches. Use it as

        model.fit(streams.dataset, steps_per_epoch=streams.steps_per_epoch,
                  epochs=E, initial_epoch=k, shuffle=False)

    Args:
        sources: `{name: StreamSource}`; names become the keys of each batch.
        batch_size: examples per batch, of every source.
        seed: seed of every order and flip.
        start_epoch: the first epoch the stream yields.
        epochs: the epoch to stop before, or None for an endless stream.
        pairing: `"unpaired"`: independent orders per source. `"aligned"`:
            sources of equal length read in one shared order, with the same
            flips (their `flips` must agree); `on_error="skip"` is refused
            (it could drop an image and keep its mask), and dataset sources
            without a cache are aligned only with each other (they are read
            through equally seeded shuffle buffers of equal size).
        epoch_length: unpaired only: examples per epoch follow the longest
            source (`"max"`; shorter ones cycle through further
            permutations), the shortest (`"min"`; longer ones are cut, and a
            new permutation each epoch reaches all their examples over
            time), or the named source.

    Returns:
        A `MultiStream`.
    """
    _check_sources(sources, pairing)
    check_positive("batch_size", batch_size)
    epoch_numbers = epoch_range(start_epoch, epochs)
    ready = {name: _ready(name, spec) for name, spec in sources.items()}
    counts = {name: r.count for name, r in ready.items()}
    if pairing == "aligned":
        length = _aligned_length(ready)
        streams = {name: None for name in ready}  # one shared order and flips
        buffer = min(
            default_shuffle_buffer(r.spec.shuffle_buffer, r.prepared.prep, batch_size)
            for r in ready.values()
        )
        buffers = {name: buffer for name in ready}
    else:
        length = _epoch_length(epoch_length, counts)
        streams = {name: stream_number(name) for name in ready}
        buffers = {
            name: default_shuffle_buffer(r.spec.shuffle_buffer, r.prepared.prep, batch_size)
            for name, r in ready.items()
        }
    steps_per_epoch = length // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"An epoch of {length} examples (epoch_length={epoch_length!r}, sources {counts}) "
            f"holds no full batch of {batch_size}."
        )
    per_epoch = steps_per_epoch * batch_size
    parts = {}
    for name, r in ready.items():
        examples = epoch_examples(
            r.prepared,
            epoch_numbers,
            seed=seed,
            per_epoch=per_epoch,
            stream=streams[name],
            flips=r.spec.flips,
            shuffle_buffer=buffers[name],
        )
        parts[name] = examples.batch(batch_size, drop_remainder=True).map(
            finalize_fn(r.scale, r.labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return MultiStream(
        dataset=tf.data.Dataset.zip(parts).prefetch(tf.data.AUTOTUNE),
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        examples_per_epoch=per_epoch,
        num_examples=counts,
        skipped={name: r.prepared.skipped for name, r in ready.items()},
        num_skipped={name: r.prepared.num_skipped for name, r in ready.items()},
    )


def mixed_batches(
    real: StreamSource,
    synthetic: StreamSource,
    real_share: Callable[[int], float],
    *,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
    steps: int | None = None,
) -> MixedStream:
    """Batches whose real:synthetic split follows a per-step schedule.

    The batch of step s holds `real_count(s) = floor(real_share(s) *
    batch_size + 0.5)` real examples, first, then synthetic ones. Each
    source is read as an endless sequence of its epochs (for sources read by
    index, a global permutation per epoch keyed by `(seed, epoch, name)`,
    names `"real"` and `"synthetic"`; flips keyed likewise), and every step
    takes the next examples of each sequence. A batch is therefore a
    function of `(seed, step)` and the schedule, and a stream built with
    `start_step=k` yields exactly the batches from step k on (the positions
    in both sequences are summed over the schedule's first k steps).

    Args:
        real: the real images; its image size, channels and value range must
            equal the synthetic source's.
        synthetic: the synthetic images (e.g. generated files).
        real_share: `real_share(step) -> float` in [0, 1]; called on the
            host, so any Python function of the step works; it must depend
            on the step alone.
        batch_size: examples per batch.
        seed: seed of both orders and flips.
        start_step: the first step the stream yields.
        steps: the step to stop before, or None for an endless stream.

    Returns:
        A `MixedStream`.
    """
    check_positive("batch_size", batch_size)
    if start_step < 0 or (steps is not None and steps < start_step):
        raise ValueError(f"Need 0 <= start_step <= steps, got {start_step} and {steps}.")
    real_count = _real_count(real_share, batch_size)
    ready = {name: _ready(name, spec) for name, spec in (("real", real), ("synthetic", synthetic))}
    _check_mixable(ready["real"], ready["synthetic"])
    labels = ready["real"].labels
    consumed_real = sum(real_count(step) for step in range(start_step))
    consumed = {"real": consumed_real, "synthetic": start_step * batch_size - consumed_real}
    real_count(start_step)  # a bad schedule fails now, not inside the pipeline

    sequences = []
    for name, r in ready.items():
        first_epoch, offset = divmod(consumed[name], r.count)
        examples = epoch_examples(
            r.prepared,
            tf.data.Dataset.counter(first_epoch),
            seed=seed,
            per_epoch=r.count,
            stream=stream_number(name),
            flips=r.spec.flips,
            shuffle_buffer=default_shuffle_buffer(r.spec.shuffle_buffer, r.prepared.prep, 1),
            skip=offset,
        )
        keys = ("image", "label") if labels else ("image",)
        sequences.append(examples.map(lambda e, keys=keys: {k: e[k] for k in keys}))

    step_numbers = (
        tf.data.Dataset.counter(start_step)
        if steps is None
        else tf.data.Dataset.range(start_step, steps)
    )
    counts = step_numbers.map(_count_fn(real_count))
    positions = tf.range(batch_size, dtype=tf.int64)
    # Source 0 (real) for the first real_count(s) places of a batch, then 1.
    choices = counts.flat_map(
        lambda count: tf.data.Dataset.from_tensor_slices(tf.cast(positions >= count, tf.int64))
    )
    mixed = tf.data.Dataset.choose_from_datasets(sequences, choices)
    low, step = ready["real"].scale

    def finalize(batch, count):
        out = {
            "images": tf.cast(batch["image"], tf.float32) * step + low,
            "real": positions < count,
        }
        if labels:
            out["labels"] = batch["label"]
        return out

    dataset = tf.data.Dataset.zip(mixed.batch(batch_size, drop_remainder=True), counts)
    dataset = dataset.map(finalize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return MixedStream(
        dataset=dataset.prefetch(tf.data.AUTOTUNE),
        batch_size=batch_size,
        real_count=real_count,
        num_real=ready["real"].count,
        num_synthetic=ready["synthetic"].count,
    )


def unpaired_source(
    domain_a,
    domain_b,
    *,
    image_size,
    batch_size: int = 1,
    seed: int = 0,
    flips: bool = True,
    size_policy: str = "resize",
    cache="memory",
    channels: int = 3,
) -> Callable[[int, int | None], MultiStream]:
    """A `train_gan` source of unpaired {"a", "b"} batches from two image sources.

    The two domains of an image translator such as CycleGAN: images scaled
    to [-1, 1], without labels. Each domain keeps its own order per epoch (a
    function of seed, epoch and domain); an epoch follows the larger domain
    (CycleGAN's max(len(A), len(B)) iterations), the smaller one cycling.

    Args:
        domain_a: image records (or a dataset source) of domain A.
        domain_b: image records of domain B.
        image_size: side the images are brought to (see `size_policy`).
        batch_size: images of each domain per step.
        seed: seed of the orders and flips.
        flips: random horizontal and vertical flips.
        size_policy: how off-size images are fitted (IDC: "pad_end").
        cache: decoded-image cache ("memory", a file prefix, or None).
        channels: image channels.

    Returns:
        `(start_epoch, epochs) -> MultiStream`, the callable `train_gan` takes.

    Example:

    >>> source = unpaired_source(non_idc_records, idc_records, image_size=50)
    >>> train_gan(cyclegan, source, run, epochs=25)
    """

    def sources():
        common = dict(image_size=image_size, channels=channels, value_range=(-1.0, 1.0),
                      size_policy=size_policy, flips=flips, cache=cache, labels=False)
        return {"a": StreamSource(domain_a, what="domain A", **common),
                "b": StreamSource(domain_b, what="domain B", **common)}

    def stream(start_epoch, epochs):
        return training_streams(sources(), batch_size=batch_size, seed=seed,
                                start_epoch=start_epoch, epochs=epochs, pairing="unpaired")

    return stream


def _check_sources(sources, pairing):
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}.")
    if not isinstance(sources, dict) or not sources:
        raise ValueError("sources must be a non-empty dict {name: StreamSource}.")
    for name, spec in sources.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"Source names must be non-empty strings, got {name!r}.")
        if not isinstance(spec, StreamSource):
            raise TypeError(f"Source {name!r} must be a StreamSource, got {type(spec).__name__}.")
    if pairing == "aligned":
        skipping = sorted(name for name, spec in sources.items() if spec.on_error == "skip")
        if skipping:
            raise ValueError(
                f"Aligned sources read example i of every source together; on_error='skip' "
                f"(sources {skipping}) could drop an image and keep its mask. Remove the "
                "unreadable files (scan with verify=True) and use on_error='raise'."
            )
        if len({spec.flips for spec in sources.values()}) > 1:
            raise ValueError(
                "Aligned sources are flipped together: give all of them the same flips."
            )


def _ready(name, spec):
    prep = preprocessing(spec.image_size, spec.channels, spec.size_policy, spec.pad_value)
    scale = scaling(spec.value_range)
    check_on_error(spec.on_error)
    prepared = prepare_source(
        spec.source,
        prep,
        cache=spec.cache,
        cache_key=spec.cache_key,
        on_error=spec.on_error,
        what=spec.what or f"stream {name!r}",
    )
    labels = prepared.has_labels if spec.labels is None else bool(spec.labels)
    if labels and not prepared.has_labels:
        raise ValueError(f"Source {name!r} has labels=True but its examples have no labels.")
    return _Ready(name, spec, prepared, scale, labels)


def _aligned_length(ready):
    counts = {name: r.count for name, r in ready.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"Aligned sources must hold equally many examples, got {counts}.")
    buffered = {name for name, r in ready.items() if r.prepared.kind == "buffer"}
    if buffered and buffered != set(ready):
        raise ValueError(
            f"Sources {sorted(buffered)} are dataset sources without a cache, read through a "
            "shuffle buffer, and cannot share the permutation of the others: give them "
            "cache='memory' or a file cache."
        )
    return next(iter(counts.values()))


def _epoch_length(epoch_length, counts):
    if epoch_length == "max":
        return max(counts.values())
    if epoch_length == "min":
        return min(counts.values())
    if epoch_length in counts:
        return counts[epoch_length]
    raise ValueError(
        f"epoch_length must be 'max', 'min' or a source name {sorted(counts)}, "
        f"got {epoch_length!r}."
    )


def _real_count(real_share, batch_size):
    """`real_count(step)`: the schedule's share of a batch, rounded half up."""

    def real_count(step):
        share = float(real_share(int(step)))
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"real_share({step}) is {share}; a share must lie in [0, 1].")
        return math.floor(share * batch_size + 0.5)

    return real_count


def _count_fn(real_count):
    def count(step):
        value = tf.numpy_function(
            lambda s: np.int64(real_count(int(s))), [step], tf.int64, stateful=False
        )
        value.set_shape([])
        return value

    return count


def _check_mixable(real, synthetic):
    shapes = {r.name: r.prepared.prep.image_shape for r in (real, synthetic)}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"Real and synthetic images must have one shape, got {shapes}.")
    if real.scale != synthetic.scale:
        raise ValueError(
            f"Real and synthetic sources must share value_range, got "
            f"{real.spec.value_range} and {synthetic.spec.value_range}."
        )
    if real.labels != synthetic.labels:
        raise ValueError(
            "Both sources must yield labels, or neither (set labels= on the StreamSources)."
        )
