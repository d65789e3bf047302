"""Cutting large H&E images into PathologyGAN's 224x224 training tiles.

PathologyGAN's data preparation (section 3 of the paper and its code):
tiles of 224x224 pixels with 50% overlap, a tile dropped when 30% or more
of its pixels are background (all three RGB values above 215: the white of
glass and fat), and each kept tile augmented with the 4 rotations by 90
degrees times 2 mirrorings. `tile_image` does one image; `write_tiles`
writes many into the PathologyGAN HDF5 layout (`gan_zoo.data.he.hdf5`),
with whole source images (slides, patients) assigned to one split, never
tiles of one image to two.

Whole-slide images (.svs, pyramidal .tif) are read region by region with
`gan_zoo.data.he.slides`, never whole.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np

from gan_zoo.data.he.hdf5 import PathologyHDF5Writer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".mrxs", ".bif")
# Pyramidal .tif files are slides too: `is_slide` opens them to tell.


def background_fraction(tile, threshold=215):
    """Share of pixels whose R, G and B are all above `threshold`."""
    tile = np.asarray(tile)
    return float(np.mean(np.all(tile[..., :3] > threshold, axis=-1)))


def is_background(tile, threshold=215, max_fraction=0.3):
    """True when `max_fraction` or more of the tile is background (PathologyGAN's rule)."""
    return background_fraction(tile, threshold) >= max_fraction


def tile_grid(height, width, tile_size=224, overlap=0.5):
    """Top-left corners `(y, x)` of the full tiles of an image, stride `tile * (1 - overlap)`."""
    tile_size = int(tile_size)
    if tile_size < 1:
        raise ValueError(f"tile_size must be positive, got {tile_size!r}.")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}.")
    stride = max(1, int(round(tile_size * (1.0 - float(overlap)))))
    ys = range(0, int(height) - tile_size + 1, stride)
    xs = range(0, int(width) - tile_size + 1, stride)
    return [(y, x) for y in ys for x in xs]


def dihedral(tile):
    """The 8 symmetries of a square tile: 4 rotations of it and of its mirror image."""
    tile = np.asarray(tile)
    return [np.rot90(t, k) for t in (tile, tile[:, ::-1]) for k in range(4)]


@dataclasses.dataclass
class TileCounts:
    """What tiling kept and dropped."""

    kept: int = 0
    background: int = 0

    def add(self, other):
        self.kept += other.kept
        self.background += other.background


def tile_image(image, tile_size=224, overlap=0.5, threshold=215, max_background=0.3):
    """Tiles of one RGB image that are not background.

    Args:
        image: uint8 `[H, W, 3]` (RGBA: alpha dropped).
        tile_size: tile side.
        overlap: fraction of a tile shared with its neighbour (0.5).
        threshold: a pixel is background when R, G and B exceed it (215).
        max_background: drop a tile whose background share is at least this.

    Returns:
        `(tiles uint8 [k, tile, tile, 3], corners [k, 2] as (y, x), TileCounts)`.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}.")
    image = image[..., :3]
    tiles, corners, counts = [], [], TileCounts()
    for y, x in tile_grid(image.shape[0], image.shape[1], tile_size, overlap):
        tile = image[y : y + tile_size, x : x + tile_size]
        if is_background(tile, threshold, max_background):
            counts.background += 1
            continue
        tiles.append(tile)
        corners.append((y, x))
        counts.kept += 1
    shape = (0, tile_size, tile_size, 3)
    return (np.stack(tiles) if tiles else np.zeros(shape, np.uint8),
            np.asarray(corners, np.int64).reshape(-1, 2), counts)


# ------------------------------------------------------------------- sources
@dataclasses.dataclass(frozen=True)
class HESource:
    """One large image or slide to tile.

    Args:
        path: the file.
        group: what must stay in one split (patient, slide or image).
    """

    path: str
    group: str


def _breakhis_group(stem):
    # SOB_<B|M>_<type>-<year>-<slide>-<mag>-<n> (original) or
    # SOB_<B|M>_<type>_<year>-<slide>_<n> (224 crops): the slide id, letters
    # dropped ("14-14134E" and "14-14134" come from one patient).
    match = re.match(r"SOB_[BM]_[A-Z]+[-_](\d+)-(\d+)", stem)
    return f"{match.group(1)}-{match.group(2)}" if match else None


def scan_he_images(root, split_by="auto"):
    """H&E images and slides under `root` (recursively), each with its group.

    Args:
        root: a folder.
        split_by: "image" (each file its own group), "folder" (the first
            folder under `root`: patients or slides), "breakhis" (the slide
            id in BreaKHis file names), or "auto": BreaKHis names when every
            file has one, else folders when the files are in sub-folders,
            else images.

    Returns:
        Sorted `HESource`s.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder of H&E images.")
    suffixes = IMAGE_SUFFIXES + SLIDE_SUFFIXES
    paths = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not paths:
        raise ValueError(f"No H&E images ({', '.join(suffixes)}) found under {root}.")
    choices = ("auto", "image", "folder", "breakhis")
    if split_by not in choices:
        raise ValueError(f"split_by must be one of {choices}, got {split_by!r}.")
    if split_by == "auto":
        nested = any(len(p.relative_to(root).parts) > 1 for p in paths)
        if all(_breakhis_group(p.stem) for p in paths):
            split_by = "breakhis"
        else:
            split_by = "folder" if nested else "image"
    sources = []
    for p in paths:
        relative = p.relative_to(root)
        if split_by == "breakhis":
            group = _breakhis_group(p.stem)
            if group is None:
                raise ValueError(f"{p} has no BreaKHis slide id in its name.")
        elif split_by == "folder":
            group = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        else:
            group = str(relative.with_suffix(""))
        sources.append(HESource(str(p), group))
    return sources


def load_rgb(path):
    """An image file as uint8 `[H, W, 3]` (any mode converted to RGB)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"Cannot read the image {path}: {error.args[0].split(', could be')[0]} (Pillow's guard "
            "against decompression bombs); tile it as a whole-slide image (a pyramidal TIFF or SVS, "
            "read by tiffslide), or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the image {path}: {error}") from None


def write_tiles(
    sources, path, splits=None, *, tile_size=224, overlap=0.5, threshold=215,
    max_background=0.3, augment=True, magnification=None, batch=256,
):
    """Tiles every source into a PathologyGAN HDF5 file.

    Args:
        sources: `HESource`s (e.g. from `scan_he_images`).
        path: the HDF5 file to write.
        splits: {group: "train" | "test" | "valid"}; groups not listed go to
            "train". Whole groups go to one split.
        tile_size, overlap, threshold, max_background: as `tile_image`.
        augment: write each tile's 8 rotations / mirrorings (PathologyGAN):
            True for every split, False for none, or the names of the splits
            to augment (e.g. ("train",), keeping a reference split plain).
        magnification: for whole-slide images, the magnification to read
            them at (e.g. 20); None reads ordinary images as they are and
            slides at their base magnification.
        batch: tiles written per HDF5 append (memory: one batch).

    Returns:
        {"path", "tiles": {split: n}, "background_dropped": n, "images": n,
        "smaller_than_a_tile": [images with a side below `tile_size`, which
        give no tile], "groups": {split: [groups]}}.
    """
    from gan_zoo.data.he.slides import is_slide, slide_tiles

    splits = dict(splits or {})
    bad = sorted(set(splits.values()) - {"train", "test", "valid"})
    if bad:
        raise ValueError(f"splits may only name 'train', 'test' and 'valid', got {bad}.")
    if isinstance(augment, bool):
        augment = ("train", "test", "valid") if augment else ()
    augment = set(augment)
    counts = TileCounts()
    groups = {}
    with PathologyHDF5Writer(path, (tile_size, tile_size, 3)) as writer:
        pending, too_small = {}, []

        def flush(split, force=False):
            tiles = pending.get(split, [])
            if tiles and (force or len(tiles) >= batch):
                writer.add(split, np.stack(tiles))
                pending[split] = []

        for source in sources:
            split = splits.get(source.group, "train")
            groups.setdefault(split, set()).add(source.group)
            if is_slide(source.path):
                parts = slide_tiles(
                    source.path, magnification=magnification, tile_size=tile_size,
                    overlap=overlap, threshold=threshold, max_background=max_background,
                )
            else:
                image = load_rgb(source.path)
                if min(image.shape[:2]) < tile_size:
                    too_small.append(f"{source.path} ({image.shape[1]}x{image.shape[0]})")
                tiles, _, image_counts = tile_image(image, tile_size, overlap, threshold, max_background)
                parts = [(tiles, image_counts)]
            for tiles, part_counts in parts:
                counts.add(part_counts)
                for tile in tiles:
                    pending.setdefault(split, []).extend(dihedral(tile) if split in augment else [tile])
                    flush(split)
        for split in list(pending):
            flush(split, force=True)
        written = dict(writer.counts)
    return {
        "path": str(path),
        "tiles": written,
        "background_dropped": counts.background,
        "kept_before_augmentation": counts.kept,
        "images": len(sources),
        "smaller_than_a_tile": too_small,
        "groups": {k: sorted(v) for k, v in groups.items()},
    }
