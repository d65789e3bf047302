"""tf.data pipelines: image files or datasets in, float32 batches out.

Two entry points:

- `training_stream`: an endless (or `epochs`-long) stream of shuffled,
  optionally flipped, full batches whose epoch `e` is a pure function of
  `(seed, e)`, so a resumed run sees exactly the batches the uninterrupted
  run would have seen.
- `evaluation_dataset`: one ordered pass, no shuffling, no augmentation.

A *source* is either a sequence of `ImageRecord` (an `ImageFolder` works too),
decoded from files, or a `tf.data.Dataset` of dicts with `"image"` (uint8,
HxWxC or HxW) and optionally `"label"`, e.g. parsed TFRecords or a TFDS split.

Images are kept as uint8 through decoding, resizing, caching and flipping
(a quarter of the memory of float32) and scaled to `value_range` as float32
batches at the very end.

    >>> folder = scan_image_folder("data/idc")
    >>> stream = training_stream(folder, batch_size=64, image_size=(50, 50))
    >>> model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch,
    ...           epochs=20, initial_epoch=0)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys

import tensorflow as tf

from gan_zoo.data.decode import decode_file, error_message, find_unreadable_files
from gan_zoo.data.image_folder import (
    ImageFolder,
    ImageRecord,
    check_on_error,
    problem_listing,
)

logger = logging.getLogger(__name__)

SIZE_POLICIES = ("resize", "pad", "crop", "pad_end", "error")

# Shuffle buffers hold uint8 images; this caps their memory by default.
_SHUFFLE_BUFFER_BYTES = 256 * 2**20
# Graph-level seed fixed inside each epoch's function, so that the shuffle
# buffer's order does not depend on the caller's `tf.random.set_seed`.
_FIXED_GRAPH_SEED = 20240607
# Keys naming the source file in dataset elements (TFDS ImageFolder uses
# "image/filename"); used only to name the file in error messages. Without
# one, an element is named by whichever of _PLACE_KEYS it has (IDC: patient
# and patch coordinates).
_NAME_KEYS = ("path", "filename", "image/filename", "file_name")
_PLACE_KEYS = ("patient", "x", "y")


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


@dataclasses.dataclass(frozen=True)
class _Preprocessing:
    """How every image is brought to one shape (see `training_stream`)."""

    image_size: tuple[int, int]
    channels: int
    size_policy: str
    pad_value: int


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

    Order within an epoch: for file records without a cache, a global
    permutation of the file list (a stateless shuffle seeded by
    `(seed, epoch)`) before parallel decoding. For dataset sources, and
    whenever `cache` is set (a cache is built in file order), a shuffle
    buffer of `shuffle_buffer` images seeded from `(seed, epoch)`.

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
            uint8 images are cached, so no epoch opens the files again; the
            cache is filled when the stream is built. A file cache gets a
            suffix hashing what its images depend on: the preprocessing
            options and, for file records, each file's path, label, size and
            modification time, so files rewritten in place are read afresh;
            for a dataset source, `cache_key`, its element spec and its
            cardinality. It is reused by a resumed process.
        flips: random horizontal and vertical flips, each with probability
            1/2, seeded by `(seed, epoch, position in epoch)`.
        shuffle_buffer: images in the shuffle buffer (buffer paths only).
            Default: the whole epoch, capped at 256 MiB of images.
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
    prep = _preprocessing(image_size, channels, size_policy, pad_value)
    scale = _scaling(value_range)
    _check_positive("batch_size", batch_size)
    check_on_error(on_error)
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, got {start_epoch}.")
    # epochs == start_epoch (a finished run resumed) is allowed: no batches.
    if epochs is not None and epochs < start_epoch:
        raise ValueError(f"epochs ({epochs}) must be at least start_epoch ({start_epoch}).")

    prepared = _prepare_training_source(source, prep, cache, cache_key, on_error, what)
    steps_per_epoch = prepared.num_examples // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"The source{_naming(what)} has {prepared.num_examples} examples, fewer than "
            f"batch_size={batch_size}: not one full batch per epoch."
        )
    if shuffle_buffer is None:
        image_bytes = prep.image_size[0] * prep.image_size[1] * prep.channels
        shuffle_buffer = max(batch_size, _SHUFFLE_BUFFER_BYTES // image_bytes)
    _check_positive("shuffle_buffer", shuffle_buffer)

    epoch_numbers = (
        tf.data.Dataset.counter(start_epoch)
        if epochs is None
        else tf.data.Dataset.range(start_epoch, epochs)
    )
    dataset = _shuffled_epochs(
        prepared, prep, epoch_numbers, seed, steps_per_epoch * batch_size, shuffle_buffer
    )
    if flips:
        dataset = dataset.map(
            _flip_fn(seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        _finalize_fn(scale, prepared.has_labels),
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
    is dropped and a warning naming it is printed to stderr; with `"raise"`
    the error names the file. Arguments are as for `training_stream`; an
    empty source raises a ValueError naming it by `what`.

    Returns:
        A dataset of `(images, labels)` batches, or `images` when the source
        has no labels; images are float32 in `value_range`.
    """
    prep = _preprocessing(image_size, channels, size_policy, pad_value)
    scale = _scaling(value_range)
    _check_positive("batch_size", batch_size)
    check_on_error(on_error)
    if isinstance(source, tf.data.Dataset):
        if int(source.cardinality()) == 0:
            raise ValueError(f"The dataset source{_naming(what)} is empty.")
        dataset, has_labels = _dataset_base(source, prep, on_error)
        records = None
    else:
        records = _as_records(source, what)
        paths, labels = _record_tensors(records)
        has_labels = labels is not None
        dataset = _records_base(paths, labels, prep, skip=on_error == "skip")
    if cache is not None:
        key = _cache_key(prep, "eval", cache, records=records, source=source, key=cache_key)
        dataset = dataset.cache(_cache_path(cache, key))
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        _finalize_fn(scale, has_labels), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- options


def _preprocessing(image_size, channels, size_policy, pad_value):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    image_size = tuple(int(s) for s in image_size)
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    if size_policy not in SIZE_POLICIES:
        raise ValueError(f"size_policy must be one of {SIZE_POLICIES}, got {size_policy!r}.")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be a uint8 value in [0, 255], got {pad_value}.")
    return _Preprocessing(image_size, channels, size_policy, int(pad_value))


def _scaling(value_range):
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
    return low, (high - low) / 255.0


def _check_positive(name, value):
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _naming(what):
    """` (what)` for error messages, or nothing."""
    return f" ({what})" if what else ""


def _as_records(source, what=None):
    records = list(source.records if isinstance(source, ImageFolder) else source)
    if not records:
        raise ValueError(f"The source{_naming(what)} holds no image records.")
    for record in records:
        if not isinstance(record, ImageRecord):
            raise TypeError(
                "A source must be a tf.data.Dataset or a sequence of ImageRecord; "
                f"found {type(record).__name__}: {record!r}."
            )
    return records


def _record_tensors(records):
    """File paths and int32 labels (None when unlabelled) as tensors."""
    paths = tf.constant([r.path for r in records], tf.string)
    labelled = [r.label is not None for r in records]
    if not any(labelled):
        return paths, None
    if not all(labelled):
        missing = records[labelled.index(False)].path
        raise ValueError(
            f"Some records have labels and some do not (e.g. {missing} has none); "
            "label all of them or none."
        )
    return paths, tf.constant([r.label for r in records], tf.int32)


def _log_skipped(skipped):
    logger.warning(
        "Skipped %d unreadable image file(s):\n%s", len(skipped), problem_listing(skipped)
    )


# ---------------------------------------------------------------- loading


def _load_file(path, prep, skip=False):
    """Decodes and preprocesses one file: `(uint8 [h, w, c], ok)`.

    With `skip=False`, an unreadable file raises an error naming it; with
    `skip=True` it gives `ok=False` and prints a warning naming it.
    """
    image, ok = decode_file(path)
    if skip:

        def warn():
            message = error_message(path, ok, "; skipping it.")
            printed = tf.print("WARNING gan_zoo.data:", message, output_stream=sys.stderr)
            with tf.control_dependencies([printed]):
                return tf.constant(False)

        checks = [tf.cond(ok, lambda: tf.constant(True), warn)]
    else:
        advice = (
            ". Find all bad files with gan_zoo.data.image_folder.scan_image_folder("
            'root, verify=True), or pass on_error="skip".'
        )
        checks = [tf.debugging.Assert(ok, [error_message(path, ok, advice)], summarize=1)]
    with tf.control_dependencies(checks):
        # A skipped file's placeholder gets the target size, so that
        # size_policy="error" does not complain about it before it is dropped.
        placeholder = tf.zeros([*prep.image_size, 1], tf.uint8)
        image = tf.cond(ok, lambda: tf.identity(image), lambda: placeholder)
    return _preprocess(image, prep, path), ok


# ---------------------------------------------------------------- preprocessing


def _preprocess(image, prep, name):
    """Brings a uint8 image to `prep.image_size` and `prep.channels`."""
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    image = _to_channels(image, prep.channels)
    image = _fit_size(image, prep, name)
    image.set_shape([*prep.image_size, prep.channels])
    return image


def _to_channels(image, channels):
    """Converts 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels."""
    has_color = tf.shape(image)[-1] >= 3
    if channels == 3:
        return tf.cond(
            has_color,
            lambda: image[..., :3],
            lambda: tf.tile(image[..., :1], [1, 1, 3]),
        )
    return tf.cond(
        has_color,
        lambda: tf.image.rgb_to_grayscale(image[..., :3]),
        lambda: image[..., :1],
    )


def _fit_size(image, prep, name):
    height, width = prep.image_size
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    if prep.size_policy == "error":
        message = tf.strings.join(
            [
                "Image ",
                name,
                " is ",
                tf.strings.as_string(shape[0]),
                "x",
                tf.strings.as_string(shape[1]),
                f' but image_size is {height}x{width} (size_policy="error"); use '
                'size_policy="resize", "pad", "pad_end" or "crop" to accept off-size images.',
            ]
        )
        with tf.control_dependencies([tf.debugging.Assert(same, [message], summarize=1)]):
            return tf.identity(image)
    if prep.size_policy == "resize":
        return tf.cond(same, lambda: image, lambda: _resize(image, height, width))
    return _crop_or_pad(image, height, width, prep.pad_value, centred=prep.size_policy != "pad_end")


def _resize(image, height, width):
    resized = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
    # Round back to uint8 so cached and uncached images are identical.
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _crop_or_pad(image, height, width, pad_value, centred):
    """Crops each axis where too long and pads it where too short.

    `centred`: at both ends equally; otherwise at the end only (bottom,
    right), so the top-left corner stays put.
    """
    shape = tf.shape(image)
    crop_h = tf.minimum(shape[0], height)
    crop_w = tf.minimum(shape[1], width)
    if centred:
        top, left = (shape[0] - crop_h) // 2, (shape[1] - crop_w) // 2
        pad_top, pad_left = (height - crop_h) // 2, (width - crop_w) // 2
    else:
        top = left = pad_top = pad_left = 0
    image = image[top : top + crop_h, left : left + crop_w]
    paddings = [
        [pad_top, height - crop_h - pad_top],
        [pad_left, width - crop_w - pad_left],
        [0, 0],
    ]
    return tf.pad(image, paddings, constant_values=tf.constant(pad_value, tf.uint8))


# ---------------------------------------------------------------- bases


def _records_base(paths, labels, prep, skip=False):
    """Decoded records in file order, as dicts (`"image"`, `"label"`)."""
    dataset = tf.data.Dataset.from_tensor_slices(
        {"path": paths} if labels is None else {"path": paths, "label": labels}
    )

    def load(element):
        image, ok = _load_file(element["path"], prep, skip)
        out = {"image": image, "ok": ok}
        if labels is not None:
            out["label"] = element["label"]
        return out

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if skip:
        dataset = dataset.filter(lambda element: element["ok"])
    return dataset.map(lambda element: {k: v for k, v in element.items() if k != "ok"})


def _dataset_base(source, prep, on_error):
    """Preprocessed dicts (`"image"`, `"label"`) from a dataset source.

    With `on_error="skip"`, elements that fail (e.g. a corrupt PNG decoded
    inside the source) are dropped.
    """
    spec = source.element_spec
    if not isinstance(spec, dict) or "image" not in spec:
        raise TypeError(
            'A dataset source must yield dicts with an "image" key (uint8 HxWxC) '
            f"and optionally a \"label\" key; its elements are {spec}."
        )
    if spec["image"].dtype != tf.uint8:
        dtype = spec["image"].dtype.name
        raise TypeError(f'The dataset source\'s "image" must be uint8, not {dtype}.')
    _check_static_size(spec["image"].shape, prep)
    has_labels = "label" in spec
    if on_error == "skip":
        source = source.ignore_errors(log_warning=True)

    def preprocess(element):
        out = {"image": _preprocess(element["image"], prep, _element_name(element, spec))}
        if has_labels:
            out["label"] = tf.cast(element["label"], tf.int32)
        return out

    base = source.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return base, has_labels


def _check_static_size(shape, prep):
    """Fails at once when every image has a known size that `"error"` rejects."""
    height, width = shape[:2] if shape.rank in (2, 3) else (None, None)
    if prep.size_policy == "error" and None not in (height, width):
        if (height, width) != prep.image_size:
            raise ValueError(
                f"The images of the dataset source are {height}x{width} but image_size is "
                f'{prep.image_size[0]}x{prep.image_size[1]} (size_policy="error").'
            )


def _element_name(element, spec):
    """A string tensor naming a dataset element: its file, or its place."""
    for key in _NAME_KEYS:
        if key in spec and spec[key].dtype == tf.string:
            return element[key]
    places = [key for key in _PLACE_KEYS if key in spec and spec[key].shape.rank == 0]
    if not places:
        return tf.constant("<an element of the dataset source>")
    parts = []
    for key in places:
        value = element[key]
        text = value if value.dtype == tf.string else tf.strings.as_string(value)
        parts += [", " if parts else "(", f"{key} ", text]
    return tf.strings.join([*parts, ")"])


def _dataset_size(dataset):
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset source is infinite (remove .repeat()): training_stream "
            "makes the epochs itself."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        logger.info("Counting the examples of the dataset source (one pass).")
        return _count(dataset)
    return cardinality


def _count(dataset):
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, *_: count + 1))


def _cache_key(prep, role, cache, records=None, source=None, key=None):
    """A short hash of what the cached images depend on.

    `role` keeps the training and evaluation caches of the same files apart,
    since two iterators may not write one cache file at once. The memory
    cache needs no key: it lives and dies with its dataset.
    """
    if cache == "memory":
        return None
    content = {"preprocessing": dataclasses.asdict(prep), "role": role}
    if records is not None:
        content["records"] = [(r.path, r.label, *_size_and_mtime(r.path)) for r in records]
    else:
        if key is None:
            raise ValueError(
                "A file cache of a dataset source needs cache_key=: a string naming its "
                "data (e.g. the split and its patients), since its contents cannot be "
                "hashed without reading them. Or use cache='memory'."
            )
        content["source"] = [key, repr(source.element_spec), int(source.cardinality())]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _size_and_mtime(path):
    try:
        stat = os.stat(path)
    except OSError:  # A missing file fails later, with a message naming it.
        return None, None
    return stat.st_size, stat.st_mtime_ns


def _cache_path(cache, key):
    if key is None:
        return ""
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    return f"{cache}-{key}"


def _cached(base, path):
    """Caches `base` at `path` ("" = memory) and fills the cache now; returns
    it and its length."""
    base = base.cache(path)
    # One full pass here completes the cache, so no epoch ever reads a
    # half-filled one (TensorFlow discards a cache whose pass stopped early).
    count = _count(base)
    return base, count


# ---------------------------------------------------------------- epochs


@dataclasses.dataclass(frozen=True)
class _TrainingSource:
    """A training source made ready for `_shuffled_epochs`.

    Exactly one of `base` (preprocessed examples in a fixed order, for the
    shuffle-buffer path) and `paths` (file records, for the permutation path)
    is set.
    """

    num_examples: int
    has_labels: bool
    base: tf.data.Dataset | None = None
    paths: tf.Tensor | None = None
    labels: tf.Tensor | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    num_skipped: int | None = 0


def _prepare_training_source(source, prep, cache, cache_key, on_error, what):
    if isinstance(source, tf.data.Dataset):
        return _prepare_dataset_source(source, prep, cache, cache_key, on_error, what)
    records = _as_records(source, what)
    skipped = ()
    if on_error == "skip":
        # Finding bad files up front keeps num_examples, and so the epoch
        # boundaries, exact; dropping them mid-stream would shift batches.
        skipped = tuple(find_unreadable_files([r.path for r in records]))
        if skipped:
            _log_skipped(skipped)
            bad = {path for path, _ in skipped}
            records = [r for r in records if r.path not in bad]
    paths, labels = _record_tensors(records)
    has_labels = labels is not None
    if cache is None:
        return _TrainingSource(
            len(records), has_labels, paths=paths, labels=labels,
            skipped=skipped, num_skipped=len(skipped),
        )
    base = _records_base(paths, labels, prep)
    base, count = _cached(base, _cache_path(cache, _cache_key(prep, "train", cache, records)))
    return _TrainingSource(
        count, has_labels, base=base, skipped=skipped, num_skipped=len(skipped)
    )


def _prepare_dataset_source(source, prep, cache, cache_key, on_error, what):
    declared = int(source.cardinality())
    if declared == 0:
        raise ValueError(f"The dataset source{_naming(what)} is empty.")
    base, has_labels = _dataset_base(source, prep, on_error)
    if cache is not None:
        key = _cache_key(prep, "train", cache, source=source, key=cache_key)
        base, count = _cached(base, _cache_path(cache, key))
    else:
        # Counting the raw source decodes nothing when its size is declared;
        # skipping needs a pass over the decoded base to know what survives.
        count = _dataset_size(source if on_error == "raise" else base)
    if on_error == "raise":
        return _TrainingSource(count, has_labels, base=base)
    num_skipped = declared - count if declared >= 0 else None
    if num_skipped:
        logger.warning(
            "Skipped %d unreadable element(s) of the dataset source%s.", num_skipped, _naming(what)
        )
    return _TrainingSource(count, has_labels, base=base, num_skipped=num_skipped)


def _shuffled_epochs(prepared, prep, epoch_numbers, seed, per_epoch, shuffle_buffer):
    """Unbatched examples of the given epochs, each tagged with its epoch and position."""
    if prepared.base is not None:
        buffer_size = min(shuffle_buffer, prepared.num_examples)
        return epoch_numbers.flat_map(_buffered_epoch(prepared.base, seed, per_epoch, buffer_size))
    dataset = epoch_numbers.flat_map(_permuted_epoch(prepared.num_examples, seed, per_epoch))
    return dataset.map(
        _record_loader(prepared.paths, prepared.labels, prep),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _epoch_keys(seed, epoch):
    """Three independent stateless keys for (permutation, buffer, flips)."""
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_split(key, 3)


def _tag(epoch, dataset):
    """Adds the epoch number and the position in the epoch to each element."""
    return dataset.enumerate().map(
        lambda position, element: {**element, "epoch": epoch, "position": position}
    )


def _permuted_epoch(count, seed, per_epoch):
    """Epoch function for file records: a stateless permutation of indices.

    Only indices flow through the epoch boundary; decoding happens after
    `flat_map`, in one parallel map that runs on across epochs.
    """

    def epoch_fn(epoch):
        keys = _epoch_keys(seed, epoch)
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), keys[0])
        return _tag(epoch, tf.data.Dataset.from_tensor_slices({"index": order[:per_epoch]}))

    return epoch_fn


def _record_loader(paths, labels, prep):
    """Decodes the record at `element["index"]`, keeping the epoch tags."""

    def load(element):
        index = element["index"]
        image, _ = _load_file(tf.gather(paths, index), prep)
        out = {"image": image, "epoch": element["epoch"], "position": element["position"]}
        if labels is not None:
            out["label"] = tf.gather(labels, index)
        return out

    return load


def _buffered_epoch(base, seed, per_epoch, buffer_size):
    """Epoch function for datasets and caches: a seeded shuffle buffer."""

    def epoch_fn(epoch):
        # Inside this traced function `set_seed` sets only this function's
        # graph-level seed, which `shuffle` combines with its own seed.
        # Fixing it here makes the order independent of the caller's global
        # seed, so it depends on (seed, epoch) alone.
        tf.random.set_seed(_FIXED_GRAPH_SEED)
        keys = _epoch_keys(seed, epoch)
        shuffle_seed = tf.random.stateless_uniform(
            [], keys[1], minval=0, maxval=2**31 - 1, dtype=tf.int64
        )
        shuffled = base.shuffle(buffer_size, seed=shuffle_seed, reshuffle_each_iteration=False)
        return _tag(epoch, shuffled.take(per_epoch))

    return epoch_fn


def _flip_fn(seed):
    def flip(element):
        keys = _epoch_keys(seed, element["epoch"])
        key = tf.random.experimental.stateless_fold_in(keys[2], element["position"])
        horizontal, vertical = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        image = tf.image.stateless_random_flip_left_right(element["image"], horizontal)
        image = tf.image.stateless_random_flip_up_down(image, vertical)
        return {**element, "image": image}

    return flip


def _finalize_fn(scale, has_labels):
    low, step = scale

    def finalize(batch):
        images = tf.cast(batch["image"], tf.float32) * step + low
        return (images, batch["label"]) if has_labels else images

    return finalize
