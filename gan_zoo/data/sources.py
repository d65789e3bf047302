"""Sources of examples: file records or datasets, made ready to be read.

A *source* is either a sequence of `ImageRecord` (an `ImageFolder` works
too), decoded from files, or a `tf.data.Dataset` of dicts with `"image"`
(uint8, HxWxC or HxW) and optionally `"label"`, e.g. parsed TFRecords or a
TFDS split. `prepare_source` turns one into a `PreparedSource` of one of
three kinds, which says how an epoch can read it:

- `"files"`: file records without a cache, decoded by index;
- `"array"`: any source with a cache (`gan_zoo.data.cache`), read by index;
- `"buffer"`: a dataset source without a cache, which can only be read in
  its own order (epochs shuffle it with a buffer).
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow as tf

from gan_zoo.data.cache import ArrayCache, build_cache
from gan_zoo.data.cache import cache_key as make_cache_key
from gan_zoo.data.decode import find_unreadable_files
from gan_zoo.data.image_folder import ImageFolder, ImageRecord, problem_listing
from gan_zoo.data.preprocess import Preprocessing, load_file, naming, preprocess

logger = logging.getLogger(__name__)

# Keys naming the source file in dataset elements (TFDS ImageFolder uses
# "image/filename"); used only to name the file in error messages. Without
# one, an element is named by whichever of _PLACE_KEYS it has (IDC: patient
# and patch coordinates).
_NAME_KEYS = ("path", "filename", "image/filename", "file_name")
_PLACE_KEYS = ("patient", "x", "y")


@dataclasses.dataclass(frozen=True)
class PreparedSource:
    """A source made ready for epochs (see the module docstring).

    Args:
        kind: `"files"`, `"array"` or `"buffer"`.
        num_examples: examples in one pass (after skipping unreadable ones).
        has_labels: whether examples carry an int32 `"label"`.
        prep: the `Preprocessing` every image goes through.
        paths, labels: string and int32 tensors of a `"files"` source.
        cache: the `ArrayCache` of an `"array"` source.
        base: preprocessed example dicts of a `"buffer"` source, in order.
        skipped: `(path, reason)` of files left out with `on_error="skip"`.
        num_skipped: files or elements left out; None when a dataset
            source's cardinality is unknown.
    """

    kind: str
    num_examples: int
    has_labels: bool
    prep: Preprocessing
    paths: tf.Tensor | None = None
    labels: tf.Tensor | None = None
    cache: ArrayCache | None = None
    base: tf.data.Dataset | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    num_skipped: int | None = 0

    def load(self, indexed: tf.data.Dataset) -> tf.data.Dataset:
        """Adds `"image"` (and `"label"`) to elements carrying an `"index"`.

        Only for the `"files"` and `"array"` kinds; order is kept.
        """
        if self.kind == "array":
            return self.cache.gather(indexed)
        paths, labels, prep = self.paths, self.labels, self.prep

        def load(element):
            index = element["index"]
            image, _ = load_file(tf.gather(paths, index), prep)
            out = {**element, "image": image}
            if labels is not None:
                out["label"] = tf.gather(labels, index)
            return out

        return indexed.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def prepare_source(source, prep, *, cache, cache_key=None, on_error="raise", what=None):
    """Checks a source, skips what is unreadable, fills its cache.

    Args:
        source: a sequence of `ImageRecord`, an `ImageFolder`, or a finite
            `tf.data.Dataset` of dicts (see the module docstring).
        prep: a `Preprocessing`.
        cache: None, `"memory"` or a file path prefix.
        cache_key: names a dataset source's data, for a file cache.
        on_error: `"raise"` or `"skip"`. For file records, `"skip"` checks
            every file up front (`check_images`), so the count is exact.
        what: a few words naming the source in errors.

    Returns:
        A `PreparedSource`.
    """
    if isinstance(source, tf.data.Dataset):
        return _prepare_dataset(source, prep, cache, cache_key, on_error, what)
    records = as_records(source, what)
    skipped = ()
    if on_error == "skip":
        # Finding bad files up front keeps num_examples, and so the epoch
        # boundaries, exact; dropping them mid-stream would shift batches.
        skipped = tuple(find_unreadable_files([r.path for r in records]))
        if skipped:
            logger.warning(
                "Skipped %d unreadable image file(s):\n%s", len(skipped), problem_listing(skipped)
            )
            bad = {path for path, _ in skipped}
            records = [r for r in records if r.path not in bad]
            if not records:
                raise ValueError(f"Every file of the source{naming(what)} is unreadable.")
    paths, labels = record_tensors(records)
    common = dict(has_labels=labels is not None, prep=prep, skipped=skipped,
                  num_skipped=len(skipped))
    if cache is None:
        return PreparedSource("files", len(records), paths=paths, labels=labels, **common)
    array = build_cache(
        records_base(paths, labels, prep),
        cache,
        make_cache_key(prep, cache, records=records),
        image_shape=prep.image_shape,
        has_labels=labels is not None,
        count=len(records),
    )
    return PreparedSource("array", len(array), cache=array, **common)


def _prepare_dataset(source, prep, cache, key, on_error, what):
    declared = int(source.cardinality())
    if declared == 0:
        raise ValueError(f"The dataset source{naming(what)} is empty.")
    base, has_labels = dataset_base(source, prep, on_error)
    if cache is not None:
        array = build_cache(
            base,
            cache,
            make_cache_key(prep, cache, source=source, key=key),
            image_shape=prep.image_shape,
            has_labels=has_labels,
            count=declared if declared >= 0 and on_error == "raise" else None,
        )
        count = len(array)
    else:
        array = None
        # Counting the raw source decodes nothing when its size is declared;
        # skipping needs a pass over the decoded base to know what survives.
        count = dataset_size(source if on_error == "raise" else base)
    num_skipped = 0
    if on_error == "skip":
        num_skipped = declared - count if declared >= 0 else None
        if num_skipped:
            logger.warning(
                "Skipped %d unreadable element(s) of the dataset source%s.", num_skipped,
                naming(what),
            )
    if array is not None:
        return PreparedSource("array", count, has_labels, prep, cache=array,
                              num_skipped=num_skipped)
    return PreparedSource("buffer", count, has_labels, prep, base=base, num_skipped=num_skipped)


def as_records(source, what=None):
    """The `ImageRecord`s of a sequence or `ImageFolder`, checked."""
    records = list(source.records if isinstance(source, ImageFolder) else source)
    if not records:
        raise ValueError(f"The source{naming(what)} holds no image records.")
    for record in records:
        if not isinstance(record, ImageRecord):
            raise TypeError(
                "A source must be a tf.data.Dataset or a sequence of ImageRecord; "
                f"found {type(record).__name__}: {record!r}."
            )
    return records


def record_tensors(records):
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


def records_base(paths, labels, prep, skip=False):
    """Decoded records in file order, as dicts (`"image"`, `"label"`).

    With `skip`, unreadable files are dropped with a printed warning.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        {"path": paths} if labels is None else {"path": paths, "label": labels}
    )

    def load(element):
        image, ok = load_file(element["path"], prep, skip)
        out = {"image": image, "ok": ok}
        if labels is not None:
            out["label"] = element["label"]
        return out

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if skip:
        dataset = dataset.filter(lambda element: element["ok"])
    return dataset.map(lambda element: {k: v for k, v in element.items() if k != "ok"})


def dataset_base(source, prep, on_error):
    """Preprocessed dicts (`"image"`, `"label"`) from a dataset source.

    With `on_error="skip"`, elements that fail (e.g. a corrupt PNG decoded
    inside the source) are dropped.

    Returns:
        `(dataset, has_labels)`.
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

    def preprocess_element(element):
        out = {"image": preprocess(element["image"], prep, _element_name(element, spec))}
        if has_labels:
            out["label"] = tf.cast(element["label"], tf.int32)
        return out

    base = source.map(preprocess_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return base, has_labels


def dataset_size(dataset):
    """Examples in a finite dataset: its cardinality, or one counting pass."""
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset source is infinite (remove .repeat()): training_stream "
            "makes the epochs itself."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        logger.info("Counting the examples of the dataset source (one pass).")
        return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, *_: count + 1))
    return cardinality


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
