"""Batches that mix real and synthetic data in a per-step share.

`mixed_batches(real, synthetic, real_share)` is a per-step curriculum: the
batch of step s holds `round(real_share(s) * batch_size)` real examples and
synthetic ones for the rest (ciGAN's classifier raises the real share every
1,000 iterations). Like `gan_zoo.data.streams.training_streams`, a stream
built from step k yields exactly the batches from step k of one built from
step 0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import tensorflow as tf

from gan_zoo.data.order import default_shuffle_buffer, epoch_examples, stream_number
from gan_zoo.data.preprocess import check_positive
from gan_zoo.data.stream_source import StreamSource, ready_source


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
    ready = {name: ready_source(name, spec) for name, spec in (("real", real), ("synthetic", synthetic))}
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
