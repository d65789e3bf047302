"""Streaming feature extraction for the generative metrics.

Images are read in batches from one of five sources, passed through a
feature extractor (`gan_zoo.metrics.extractors`), and only the features are
kept: memory holds one batch of images at a time, the running mean and
covariance (float64, `scores.RunningMoments`, all FID needs), and, unless
`keep_features=False`, the float32 features that KID and the k-NN metrics
need (2048 floats = 8 KiB per image for Inception).

Sources (every image reaches the extractor as float32 in [0, 1]):
- a `tf.data.Dataset` of images, `(images, labels)` or dicts with "image",
  batched (rank 4) or not (rank 3 `H x W x C`, or rank 2 gray `H x W`);
  uint8 images are divided by 255, float images must already be in [0, 1];
- an image folder (a path, an `ImageFolder` or a sequence of `ImageRecord`,
  e.g. the records of the validation patients), decoded by
  `gan_zoo.data.pipeline.evaluation_dataset`; a folder of loose images (no
  class sub-folders) is read too;
- an HDF5 file in PathologyGAN's layout (datasets `train_img` / `test_img`,
  uint8 `N x H x W x 3`), read `batch_size` rows at a time;
- a zoo generator (anything with `generate(n, labels, seed, batch_size)`):
  `n` samples, seeded;
- an in-memory numpy array `[N, H, W, C]`.

Example:

    extractor = KerasLayerExtractor(classifier, "gap")
    real = reference_statistics(val_records, extractor, cache="ref/val.npz",
                                split="validation")
    fake = extract_features(gan, extractor, n=2000, seed=0)
    print(compute_scores(real, fake))
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np

from gan_zoo.metrics.scores import (
    FeatureStats,
    RunningMoments,
    load_reference_stats,
    save_reference_stats,
)

__all__ = ["extract_features", "image_batches", "reference_statistics"]

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
# Images in [0, 1] may carry rounding noise from a generator's rescaling.
_RANGE_TOLERANCE = 1e-3


def extract_features(
    source,
    extractor,
    *,
    n=None,
    batch_size=64,
    seed=0,
    labels=None,
    split=None,
    hdf5_key=None,
    image_size=None,
    size_policy=None,
    channels=3,
    name=None,
    keep_features=True,
    progress=True,
):
    """Extracts features of every image of `source`, in batches.

    Args:
        source: a `tf.data.Dataset`, an image folder path, an `ImageFolder`
            or sequence of `ImageRecord`, an HDF5 file path, a generator with
            `generate(...)`, or a numpy array of images (see module doc).
        extractor: a `FeatureExtractor` (anything with `__call__`, `id` and
            `provenance()`).
        n: read at most `n` images (the first ones, in order); required for
            a generator.
        batch_size: images per batch (memory: one batch of images).
        seed: seed of a generator source (ignored by the others).
        labels: class labels for a conditional generator: an int, a
            sequence of `n`, or None (classes cycle 0, 1, ... over the `n`).
        split: HDF5 split: reads `{split}_img`; recorded in provenance for
            every source (e.g. "validation").
        hdf5_key: explicit HDF5 dataset name (overrides `split`).
        image_size: folder sources: `(height, width)` to bring images to;
            default the first image's size.
        size_policy: folder sources: how off-size images are handled
            ("resize", "pad", "crop", "pad_end", "error"); default "error"
            without `image_size`, "resize" with one.
        channels: folder sources: decode to 1 or 3 channels.
        name: text naming the source in provenance (default: its path or
            kind).
        keep_features: keep the `[n, D]` features (KID, precision/recall,
            density/coverage need them); False keeps only mean/covariance.
        progress: show a `keras.utils.Progbar`.

    Returns:
        A `FeatureStats` with the extractor's id and provenance and a
        description of the source.
    """
    batches, description, total = image_batches(
        source,
        n=n,
        batch_size=batch_size,
        seed=seed,
        labels=labels,
        split=split,
        hdf5_key=hdf5_key,
        image_size=image_size,
        size_policy=size_policy,
        channels=channels,
        name=name,
    )
    moments = RunningMoments()
    kept = []
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(total, unit_name="image")
    for images in batches:
        description.setdefault("channels", int(images.shape[-1]))  # as given, before any replication
        features = extractor(images)
        moments.update(features)
        if keep_features:
            kept.append(features)
        if bar is not None:
            bar.update(moments.n)
    if moments.n < 2:
        raise ValueError(
            f"source ({description['kind']}) gave {moments.n} image(s); at least 2 are needed."
        )
    description["n"] = moments.n
    return FeatureStats(
        mean=moments.mean,
        cov=moments.covariance(),
        n=moments.n,
        extractor_id=extractor.id,
        features=np.concatenate(kept) if keep_features else None,
        extractor=extractor.provenance(),
        source=description,
    )


def reference_statistics(source, extractor, *, cache=None, **kwargs):
    """Features of a reference set, cached to (and reused from) an `.npz` file.

    A cache is reused only when it was made by an extractor with the same
    id (else `scores.ExtractorMismatchError`) from the same source (kind,
    path or name, split, HDF5 key, `n`, seed; else ValueError): delete the
    file, or pass another path, to recompute.

    Args:
        source: as for `extract_features`.
        extractor: as for `extract_features`.
        cache: `.npz` path, or None not to cache.
        **kwargs: passed to `extract_features`.

    Returns:
        A `FeatureStats`.
    """
    if cache is not None and pathlib.Path(cache).is_file():
        stats = load_reference_stats(cache, extractor_id=extractor.id)
        wanted = _describe_source(source, kwargs)
        cached = {key: stats.source.get(key) for key in wanted}
        if cached != wanted:
            raise ValueError(
                f"Reference statistics in {cache} were made from {cached}, not {wanted}; "
                "delete the file or use another cache path."
            )
        if kwargs.get("keep_features", True) and stats.features is None:
            raise ValueError(
                f"Reference statistics in {cache} hold no per-image features; delete the "
                "file to recompute them, or pass keep_features=False (FID only)."
            )
        return stats
    stats = extract_features(source, extractor, **kwargs)
    if cache is not None:
        save_reference_stats(stats, cache)
    return stats


def image_batches(
    source,
    *,
    n=None,
    batch_size=64,
    seed=0,
    labels=None,
    split=None,
    hdf5_key=None,
    image_size=None,
    size_policy=None,
    channels=3,
    name=None,
):
    """Float32 [0, 1] image batches of `source`; arguments as `extract_features`.

    Returns:
        `(batches, description, total)`: an iterator of numpy batches, a
        JSON-serialisable dict describing the source, and the number of
        images when known (for the progress bar), else None.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if n is not None and (int(n) != n or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}.")
    options = {"n": n, "seed": seed, "split": split, "hdf5_key": hdf5_key, "name": name}
    description = _describe_source(source, options)
    kind = description["kind"]
    if kind == "generator":
        if n is None:
            raise ValueError("n is required for a generator source.")
        batches, total = _generator_batches(source, n, seed, labels, batch_size), n
    elif kind == "dataset":
        batches, total = _dataset_batches(source, batch_size), None
    elif kind == "hdf5":
        batches, total = _hdf5_batches(source, description["key"], batch_size)
    elif kind == "folder":
        batches, total = _folder_batches(source, batch_size, image_size, size_policy, channels)
        description["channels"] = _file_channels(_folder_records(source)[0].path)
    else:
        batches, total = _array_batches(source, batch_size)
    if n is not None:
        batches = _first(batches, n)
        total = n if total is None else min(total, n)
    return batches, description, total


# ---------------------------------------------------------------- sources


def _kind(source):
    import tensorflow as tf

    if isinstance(source, tf.data.Dataset):
        return "dataset"
    if callable(getattr(source, "generate", None)):
        return "generator"
    if isinstance(source, np.ndarray):
        return "array"
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if path.is_dir():
            return "folder"
        if path.suffix.lower() in _HDF5_SUFFIXES:
            return "hdf5"
        raise ValueError(
            f"source {path} is neither an image folder nor an HDF5 file "
            f"({', '.join(_HDF5_SUFFIXES)})."
        )
    from gan_zoo.data.image_folder import ImageFolder, ImageRecord

    if isinstance(source, ImageFolder) or (
        isinstance(source, (list, tuple)) and source and isinstance(source[0], ImageRecord)
    ):
        return "folder"
    raise TypeError(
        "source must be a tf.data.Dataset, an image folder, an HDF5 path, a generator "
        f"with generate(), or a numpy array; got {type(source).__name__}."
    )


def _describe_source(source, options):
    """What identifies the images a source gives (provenance and cache check)."""
    kind = _kind(source)
    out = {"kind": kind, "split": options.get("split"), "limit": options.get("n")}
    if kind in ("hdf5", "folder") and isinstance(source, (str, os.PathLike)):
        out["path"] = str(pathlib.Path(source).expanduser().resolve())
    elif kind == "folder":
        records = getattr(source, "records", source)
        paths = [record.path for record in records]
        root = getattr(source, "root", None) or os.path.commonpath(paths)
        out["name"] = f"{len(paths)} image records under {root}"
        # Which images, not only how many: another patient list is another set.
        out["records_sha256"] = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    if options.get("name"):
        out["name"] = str(options["name"])
    if kind == "hdf5":
        out["key"] = options.get("hdf5_key") or _hdf5_key(source, options.get("split"))
    if kind == "generator":
        out["seed"] = int(options.get("seed") or 0)
        out.setdefault(
            "name",
            type(source).__name__ + (f" {source.name!r}" if hasattr(source, "name") else ""),
        )
    return out


def _first(batches, n):
    """Truncates a stream of batches after `n` images."""
    seen = 0
    for images in batches:
        if seen >= n:
            return
        images = images[: n - seen]
        seen += images.shape[0]
        yield images


def _unit_range(images, what):
    """Numpy float32 [N, H, W, C] in [0, 1] from uint8 or float images."""
    images = np.asarray(images)
    if images.ndim == 3:  # a batch of grayscale H x W images
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"{what} must be images [N, H, W, C], got shape {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if images.dtype.kind != "f":
        raise ValueError(
            f"{what} must be uint8 or float in [0, 1], got dtype {images.dtype}; "
            "rescale other integer images to [0, 1] floats first."
        )
    images = images.astype(np.float32, copy=False)
    low, high = float(images.min()), float(images.max())
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise ValueError(
            f"{what} must be in [0, 1], got values in [{low:.3g}, {high:.3g}] "
            "(map [-1, 1] images with (x + 1) / 2)."
        )
    return np.clip(images, 0.0, 1.0)


def _array_batches(images, batch_size):
    if images.ndim not in (3, 4):
        raise ValueError(f"an array source must be [N, H, W(, C)], got shape {images.shape}.")

    def batches():
        for start in range(0, images.shape[0], batch_size):
            yield _unit_range(images[start : start + batch_size], "the array source")

    return batches(), images.shape[0]


def _dataset_batches(dataset, batch_size):
    import tensorflow as tf

    spec = dataset.element_spec
    if isinstance(spec, dict):
        if "image" not in spec:
            raise ValueError(f'dataset elements are dicts without an "image" key: {list(spec)}.')
        dataset = dataset.map(lambda element: element["image"])
    elif isinstance(spec, (tuple, list)):
        dataset = dataset.map(lambda *element: element[0])
    rank = dataset.element_spec.shape.rank
    if rank in (2, 3):  # single images (H x W or H x W x C): batch them
        dataset = dataset.batch(batch_size)
    elif rank != 4:
        raise ValueError(
            f"dataset images must be [H, W(, C)] or batches [N, H, W, C], got shape "
            f"{dataset.element_spec.shape}."
        )

    def batches():
        for images in dataset.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            yield _unit_range(images, "dataset images")

    return batches()


def _folder_records(source):
    """Image records of a folder: class sub-folders, or loose images."""
    from gan_zoo.data.image_folder import DEFAULT_EXTENSIONS, ImageRecord, scan_image_folder

    if not isinstance(source, (str, os.PathLike)):
        return list(getattr(source, "records", source))
    root = pathlib.Path(source)
    has_folders = any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())
    if has_folders:
        return list(scan_image_folder(root).records)
    # Generated samples are often saved without class folders.
    paths = sorted(
        p
        for p in root.iterdir()
        if p.suffix.lower() in DEFAULT_EXTENSIONS and not p.name.startswith(".")
    )
    if not paths:
        raise ValueError(f"No images found in {root}.")
    return [ImageRecord(path=str(p)) for p in paths]


def _file_channels(path):
    """Colour channels an image file stores (alpha left out): 1 or 3."""
    from PIL import Image

    with Image.open(path) as image:  # reads the header only
        return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def _folder_batches(source, batch_size, image_size, size_policy, channels):
    from PIL import Image

    from gan_zoo.data.pipeline import evaluation_dataset

    records = _folder_records(source)
    if image_size is None:
        with Image.open(records[0].path) as first:  # reads the header only
            image_size = (first.height, first.width)
        size_policy = size_policy or "error"
    dataset = evaluation_dataset(
        records,
        batch_size=batch_size,
        image_size=image_size,
        channels=channels,
        value_range=(0.0, 1.0),
        size_policy=size_policy or "resize",
    )
    return _dataset_batches(dataset, batch_size), len(records)


def _hdf5_key(path, split):
    """`{split}_img`, or the only `*_img` dataset when no split is given."""
    import h5py

    if split is not None:
        return f"{split}_img"
    with h5py.File(path, "r") as handle:
        keys = sorted(k for k in handle if k.endswith("_img"))
    if len(keys) != 1:
        raise ValueError(
            f"{path} holds image datasets {keys}; pass split= (e.g. 'train' for "
            "train_img) or hdf5_key=."
        )
    return keys[0]


def _read_rows(dataset, start, stop):
    """Reads rows [start, stop) of an HDF5 dataset (one hyperslab read)."""
    return dataset[start:stop]


def _hdf5_batches(path, key, batch_size):
    import h5py

    with h5py.File(path, "r") as handle:
        if key not in handle:
            raise ValueError(f"{path} has no dataset {key!r}; it holds {sorted(handle)}.")
        count = handle[key].shape[0]

    def batches():
        # Opened again inside the generator so the file is closed when the
        # stream ends or is abandoned.
        with h5py.File(path, "r") as handle:
            dataset = handle[key]
            for start in range(0, count, batch_size):
                rows = _read_rows(dataset, start, min(start + batch_size, count))
                yield _unit_range(rows, f"{path}:{key}")

    return batches(), count


def _generator_batches(model, n, seed, labels, batch_size):
    """`n` generated images, `batch_size` at a time.

    Chunk i uses the seed `SeedSequence([seed, i])`, so the images are a pure
    function of (seed, n, batch_size) and chunks are independent draws.
    Conditional generators get labels cycling over the global index, so the
    classes stay balanced whatever the batch size.
    """
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    if labels is not None and not np.isscalar(labels):
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"labels has {labels.shape[0]} entries for n={n} images.")
    seed = int(seed or 0)

    def batches():
        for index, start in enumerate(range(0, n, batch_size)):
            stop = min(start + batch_size, n)
            chunk_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)
            if labels is None:
                chunk_labels = np.arange(start, stop) % num_classes if num_classes else None
            elif np.isscalar(labels):
                chunk_labels = labels
            else:
                chunk_labels = labels[start:stop]
            images = model.generate(
                n=stop - start, labels=chunk_labels, seed=chunk_seed, batch_size=batch_size
            )
            yield _unit_range(images, "generated images")

    return batches()
