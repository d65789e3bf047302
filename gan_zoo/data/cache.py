"""Caches of decoded, preprocessed uint8 images that epochs read by index.

A cache holds a source's examples in the source's order as one uint8 array
`[N, height, width, channels]` (and its int32 labels), so an epoch can read
them in any order: the pipelines gather by the same global permutation that
the same seed gives without a cache, so a cache changes the speed of a run,
never its batches.

- `"memory"`: a numpy array in this process.
- a file path prefix: `<prefix>-<key>.npy` (images) and
  `<prefix>-<key>.labels.npy`, opened as a memory map, so a process holds
  only the pages it reads and the operating system shares them between
  processes (the 277,524 IDC patches take 2.1 GB). A cache is written once,
  under a temporary name renamed when complete, so a file with the final
  name is always complete; two processes filling the same cache both write
  complete files and the last rename wins. The key hashes what the images
  depend on (`cache_key`), so a changed source never reads a stale cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import struct
import uuid

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

# Part of every key: caches written in an older format are never read.
_FORMAT = "uint8-npy-1"
# The .npy header is written after the images, when their number is known;
# this much room is kept for it (shapes of up to 15-digit counts fit).
_HEADER_BYTES = 128
# Examples per read from the array: one numpy call per chunk, not per image.
_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class ArrayCache:
    """A source's preprocessed examples, in its order, read by index.

    Args:
        images: uint8 `[N, height, width, channels]`; a read-only memory map
            for a file cache.
        labels: int32 `[N]`, or None for unlabelled sources.
    """

    images: np.ndarray
    labels: np.ndarray | None

    def __len__(self):
        return len(self.images)

    def gather(self, indexed: tf.data.Dataset) -> tf.data.Dataset:
        """Adds `"image"` (and `"label"`) to elements that carry an `"index"`.

        Args:
            indexed: a dataset of dicts with an int64 `"index"` into the cache;
                other keys pass through.

        Returns:
            The same elements, in the same order, with the example added.
        """
        images = self.images
        labels = None if self.labels is None else tf.constant(self.labels, tf.int32)

        def take(indices):
            # Fancy indexing copies, from a memory map too; no lock needed.
            return images[np.asarray(indices)]

        def load(chunk):
            image = tf.numpy_function(take, [chunk["index"]], tf.uint8, stateful=False)
            image.set_shape([None, *images.shape[1:]])
            out = {**chunk, "image": image}
            if labels is not None:
                out["label"] = tf.gather(labels, chunk["index"])
            return out

        chunks = indexed.batch(_CHUNK).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return chunks.unbatch()


def cache_key(prep, cache, records=None, source=None, key=None):
    """A short hash of what the cached images depend on; None for "memory".

    Args:
        prep: the `Preprocessing` the images went through.
        cache: `"memory"` or a file path prefix.
        records: the `ImageRecord`s of a file source: each file's path,
            label, size and modification time count, so files rewritten in
            place are read afresh.
        source: a `tf.data.Dataset` source (when `records` is None): its
            element spec and cardinality count, beside `key`.
        key: a string naming a dataset source's data (its contents cannot
            be hashed without reading them).

    Raises:
        ValueError: a dataset source with a file cache and no `key`.
    """
    if cache == "memory":
        return None
    content = {"format": _FORMAT, "preprocessing": dataclasses.asdict(prep)}
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


def build_cache(examples, cache, key, *, image_shape, has_labels, count=None) -> ArrayCache:
    """Fills a cache from `examples`, or opens the complete file cache there.

    Args:
        examples: a dataset of dicts with `"image"` (uint8 `image_shape`) and,
            when `has_labels`, `"label"` (int32), in the source's order.
        cache: `"memory"` or a file path prefix.
        key: `cache_key(...)` (None for memory).
        image_shape: `(height, width, channels)`.
        has_labels: whether to keep labels.
        count: the number of examples when known (memory is then allocated
            once instead of concatenated).

    Returns:
        An `ArrayCache`.
    """
    chunks = examples.batch(_CHUNK).prefetch(2).as_numpy_iterator()
    if cache == "memory":
        return _collect(chunks, image_shape, has_labels, count)
    path = _cache_path(cache, key)
    cached = _open(path, image_shape, has_labels)
    if cached is not None:
        logger.info("Reading cached images from %s.npy.", path)
        return cached
    logger.info("Caching decoded images in %s.npy (once).", path)
    written = _write(path, chunks, image_shape, has_labels)
    return written if written is not None else _open(path, image_shape, has_labels)


def _size_and_mtime(path):
    try:
        stat = os.stat(path)
    except OSError:  # A missing file fails later, with a message naming it.
        return None, None
    return stat.st_size, stat.st_mtime_ns


def _cache_path(cache, key):
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    return f"{cache}-{key}"


def _collect(chunks, image_shape, has_labels, count):
    if count is not None:
        images = np.empty((count, *image_shape), np.uint8)
        labels = np.empty((count,), np.int32) if has_labels else None
        filled = 0
        for chunk in chunks:
            end = filled + len(chunk["image"])
            images[filled:end] = chunk["image"]
            if has_labels:
                labels[filled:end] = chunk["label"]
            filled = end
        if filled != count:
            raise RuntimeError(f"Expected {count} examples for the cache, got {filled}.")
        return ArrayCache(images, labels)
    parts = list(chunks)
    images = np.concatenate([p["image"] for p in parts]) if parts else None
    if images is None:
        images = np.empty((0, *image_shape), np.uint8)
    labels = None
    if has_labels:
        labels = np.concatenate([p["label"] for p in parts]) if parts else np.empty(0, np.int32)
    return ArrayCache(images, None if labels is None else labels.astype(np.int32))


def _npy_header(shape):
    """A version 1.0 .npy header for uint8 `shape`, exactly `_HEADER_BYTES` long."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    room = _HEADER_BYTES - 10 - 1  # magic, version and length; newline
    if len(text) > room:
        raise ValueError(f"Shape {shape} does not fit the cache header.")
    text = text.ljust(room) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _write(path, chunks, image_shape, has_labels):
    """Writes the cache files atomically; returns an empty cache for no examples."""
    token = f"tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    images_tmp, labels_tmp = f"{path}.npy.{token}", f"{path}.labels.npy.{token}"
    count, labels = 0, []
    try:
        # Images are streamed to disk as they are decoded (bounded memory);
        # their count, and so the header, is known only at the end.
        with open(images_tmp, "wb") as handle:
            handle.write(b"\0" * _HEADER_BYTES)
            for chunk in chunks:
                handle.write(np.ascontiguousarray(chunk["image"], np.uint8).tobytes())
                count += len(chunk["image"])
                if has_labels:
                    labels.append(np.asarray(chunk["label"], np.int32))
            handle.seek(0)
            handle.write(_npy_header((count, *image_shape)))
        if count == 0:
            # A memory map cannot be empty; nothing worth keeping either.
            os.remove(images_tmp)
            empty = np.empty((0, *image_shape), np.uint8)
            return ArrayCache(empty, np.empty(0, np.int32) if has_labels else None)
        if has_labels:
            with open(labels_tmp, "wb") as handle:
                np.save(handle, np.concatenate(labels))
            os.replace(labels_tmp, f"{path}.labels.npy")
        # Renamed last: a complete images file says the cache is complete.
        os.replace(images_tmp, f"{path}.npy")
    finally:
        for leftover in (images_tmp, labels_tmp):
            if os.path.exists(leftover):
                os.remove(leftover)
    return None


def _open(path, image_shape, has_labels):
    """The complete cache at `path`, or None when absent or unusable."""
    if not os.path.exists(f"{path}.npy"):
        return None
    try:
        images = np.load(f"{path}.npy", mmap_mode="r")
        labels = np.load(f"{path}.labels.npy") if has_labels else None
    except (OSError, ValueError) as error:
        logger.warning("Rebuilding the unreadable cache %s.npy: %s", path, error)
        return None
    if (
        images.dtype != np.uint8
        or images.shape[1:] != tuple(image_shape)
        or (labels is not None and labels.shape != images.shape[:1])
    ):
        logger.warning("Rebuilding the cache %s.npy: its shapes do not match.", path)
        return None
    return ArrayCache(images, labels)
