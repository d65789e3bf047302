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

`mixed_batches(real, synthetic, real_share)` (`gan_zoo.data.mixed_stream`,
importable from here) is a per-step curriculum: the batch of step s holds
`round(real_share(s) * batch_size)` real examples and synthetic ones for the
rest. `StreamSource` is in `gan_zoo.data.stream_source`, importable from here.

    >>> streams = training_streams(
    ...     {"a": StreamSource(domain_a, image_size=256, flips=True),
    ...      "b": StreamSource(domain_b, image_size=256, flips=True)},
    ...     batch_size=1, seed=0)
    >>> model.fit(streams.dataset, steps_per_epoch=streams.steps_per_epoch,
    ...           epochs=200, shuffle=False)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from gan_zoo.data.mixed_stream import MixedStream, mixed_batches  # noqa: F401  (re-exported)
from gan_zoo.data.order import (
    default_shuffle_buffer,
    epoch_examples,
    epoch_range,
    finalize_fn,
    stream_number,
)
from gan_zoo.data.preprocess import check_positive
from gan_zoo.data.stream_source import StreamSource, ready_source

PAIRINGS = ("unpaired", "aligned")


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
    ready = {name: ready_source(name, spec) for name, spec in sources.items()}
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
