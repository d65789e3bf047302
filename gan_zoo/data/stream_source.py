"""One source of a training stream, and how it is read.

`StreamSource` names a source (image records, an `ImageFolder` or a
`tf.data.Dataset`) and the options it is read with; `ready_source` makes it
ready to be read (`gan_zoo.data.sources.prepare_source`) by
`gan_zoo.data.streams.training_streams` and
`gan_zoo.data.mixed_stream.mixed_batches`.
"""

from __future__ import annotations

import dataclasses

from gan_zoo.data.image_folder import check_on_error
from gan_zoo.data.preprocess import preprocessing, scaling
from gan_zoo.data.sources import PreparedSource, prepare_source


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
class ReadySource:
    """A named source, prepared, with what it yields."""

    name: str
    spec: StreamSource
    prepared: PreparedSource
    scale: tuple[float, float]
    labels: bool

    @property
    def count(self):
        return self.prepared.num_examples


def ready_source(name, spec):
    """`spec` prepared (`prepare_source`), with its scale and whether it yields labels."""
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
    return ReadySource(name, spec, prepared, scale, labels)
