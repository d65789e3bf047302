"""PathologyGAN's HDF5 layout: read lazily, write incrementally.

The released PathologyGAN datasets are HDF5 files with, per split
(`train`, `test`, sometimes `valid`):

- `{split}_img`: uint8 `[N, 224, 224, 3]` H&E tiles;
- `{split}_labels`: float32 `[N, L]` per-tile labels (e.g. cell counts), may
  be absent.

They hold hundreds of thousands of tiles (tens of GiB), so
`PathologyHDF5` never loads a split: it reads the rows it is asked for,
and h5py's chunk cache, bounded by `cache_bytes`, is the only cache.
`PathologyHDF5Writer` appends tiles to resizable, row-chunked datasets, so
a tiler never holds more than one batch either.
"""

from __future__ import annotations

import pathlib

import numpy as np

SPLITS = ("train", "test", "valid")
DEFAULT_CACHE_BYTES = 32 * 2**20


def _h5py():
    import h5py

    return h5py


def image_key(split):
    return f"{split}_img"


def label_key(split):
    return f"{split}_labels"


def hdf5_splits(path):
    """The splits of a PathologyGAN HDF5 file that hold images, e.g. ["train", "test"]."""
    path = pathlib.Path(path)
    try:
        with _h5py().File(path, "r") as file:
            return [s for s in SPLITS if image_key(s) in file]
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file ({error}).") from None


class PathologyHDF5:
    """One split of a PathologyGAN HDF5 file, read lazily.

    Args:
        path: the `.h5` / `.hdf5` file.
        split: reads `{split}_img` (and `{split}_labels` when present).
        cache_bytes: size of h5py's chunk cache: the memory the reader may
            hold besides the rows it returns.

    Example:

    >>> with PathologyHDF5("he_224.h5", "train") as tiles:
    ...     for images in tiles.chunks(256):      # uint8 [<=256, 224, 224, 3]
    ...         ...
    ...     batch = tiles.read([5, 2, 9])         # any order
    """

    def __init__(self, path, split="train", cache_bytes=DEFAULT_CACHE_BYTES):
        self.path = pathlib.Path(path)
        self.split = split
        if not self.path.is_file():
            raise FileNotFoundError(f"HDF5 file not found: {self.path}")
        if int(cache_bytes) < 0:
            raise ValueError(f"cache_bytes must be non-negative, got {cache_bytes!r}.")
        self.cache_bytes = int(cache_bytes)
        try:
            self._file = _h5py().File(self.path, "r", rdcc_nbytes=self.cache_bytes)
        except OSError as error:
            raise ValueError(f"{self.path} is not a readable HDF5 file ({error}).") from None
        key = image_key(split)
        if key not in self._file:
            found = [k for k in self._file.keys()]
            self._file.close()
            raise ValueError(f"{self.path} has no dataset {key!r} (it has {found}).")
        self._images = self._file[key]
        shape, dtype = self._images.shape, self._images.dtype
        if len(shape) != 4 or shape[-1] not in (1, 3) or dtype != np.uint8:
            self._file.close()
            raise ValueError(
                f"{self.path}:{key} must be uint8 [N, H, W, 3], got {dtype} {list(shape)}."
            )
        labels = self._file.get(label_key(split))
        self._labels = labels if labels is not None and len(labels) == shape[0] else None

    def __len__(self):
        return int(self._images.shape[0])

    @property
    def image_shape(self):
        return tuple(int(s) for s in self._images.shape[1:])

    @property
    def has_labels(self):
        return self._labels is not None

    def read(self, indices):
        """Images (and labels) of rows `indices`, in that order: uint8 `[k, H, W, C]`.

        Returns `(images, labels)` when the split has labels, else images.
        """
        indices = np.asarray(indices, np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(
                f"row indices must be in [0, {len(self)}), got {indices.min()}..{indices.max()}."
            )
        # Each distinct row once, runs of consecutive rows as one slice,
        # then the caller's order (h5py's own list indexing is ~100x slower).
        unique, inverse = np.unique(indices, return_inverse=True)
        images = _read_rows(self._images, unique)[inverse]
        if self._labels is None:
            return images
        return images, _read_rows(self._labels, unique).astype(np.float32)[inverse]

    def chunks(self, rows=256, start=0, stop=None):
        """Consecutive row blocks `[start, stop)`, `rows` at a time (images only)."""
        if int(rows) < 1:
            raise ValueError(f"rows must be positive, got {rows!r}.")
        stop = len(self) if stop is None else min(int(stop), len(self))
        for begin in range(int(start), stop, int(rows)):
            yield self._images[begin : min(begin + int(rows), stop)]

    def close(self):
        if self._file:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"PathologyHDF5({str(self.path)!r}, split={self.split!r}, n={len(self)})"


class PathologyHDF5Writer:
    """Appends tiles to a PathologyGAN HDF5 file, one batch at a time.

    Datasets are created on the first `add` to a split: `{split}_img` uint8
    `[N, H, W, 3]` chunked one tile per chunk (fast random reads), and
    `{split}_labels` float32 `[N, L]` when labels are given.

    Args:
        path: the file to create (an existing file is replaced).
        tile_shape: `(H, W, C)` of every tile.
        compression: h5py compression of the images (None: fastest reads).

    Example:

    >>> with PathologyHDF5Writer("tiles.h5", (224, 224, 3)) as writer:
    ...     writer.add("train", tiles_uint8, labels=None)
    """

    def __init__(self, path, tile_shape=(224, 224, 3), compression=None):
        self.path = pathlib.Path(path)
        self.tile_shape = tuple(int(s) for s in tile_shape)
        if len(self.tile_shape) != 3:
            raise ValueError(f"tile_shape must be (H, W, C), got {tile_shape!r}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _h5py().File(self.path, "w")
        self.compression = compression
        self.counts = {}

    def add(self, split, images, labels=None):
        """Appends uint8 tiles `[k, H, W, C]` (and float labels `[k, L]`) to `split`."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8 or images.shape[1:] != self.tile_shape:
            raise ValueError(
                f"tiles must be uint8 [k, {', '.join(map(str, self.tile_shape))}], "
                f"got {images.dtype} {list(images.shape)}."
            )
        key = image_key(split)
        if key not in self._file:
            self._file.create_dataset(
                key, shape=(0, *self.tile_shape), maxshape=(None, *self.tile_shape),
                dtype="uint8", chunks=(1, *self.tile_shape), compression=self.compression,
            )
        _append(self._file[key], images)
        if labels is not None:
            labels = np.asarray(labels, np.float32).reshape(len(images), -1)
            lkey = label_key(split)
            if lkey not in self._file:
                if self.counts.get(split):
                    raise ValueError(f"split {split!r} got labels after tiles without labels.")
                self._file.create_dataset(
                    lkey, shape=(0, labels.shape[1]), maxshape=(None, labels.shape[1]), dtype="float32",
                    chunks=(1024, labels.shape[1]),
                )
            _append(self._file[lkey], labels)
        elif label_key(split) in self._file:
            raise ValueError(f"split {split!r} has labels; give labels for every tile.")
        self.counts[split] = self.counts.get(split, 0) + len(images)

    def close(self):
        if self._file:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_rows(dataset, rows):
    """Rows `rows` (sorted, unique) of an h5py dataset, read run by run."""
    out = np.empty((len(rows), *dataset.shape[1:]), dataset.dtype)
    if not len(rows):
        return out
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
        first = int(rows[start])
        out[start:stop] = dataset[first : first + (stop - start)]
    return out


def _append(dataset, rows):
    start = dataset.shape[0]
    dataset.resize(start + len(rows), axis=0)
    dataset[start:] = rows
