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
`gan_zoo.data.he.slides`, never whole. Ordinary TIFF files are read a band
of rows at a time through tifffile (and zarr, for compressed strips and
tiles), so `write_tiles` holds one band and one batch of tiles however large
the image; PNG, JPEG and BMP cannot be read in part and are decoded whole,
but their tiles are still streamed to the writer rather than stacked.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
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
    tiles, corners, counts = [], [], TileCounts()
    for row_tiles, row_corners, row_counts in _tile_rows(
        _ArrayRows(image[..., :3]), tile_size, overlap, threshold, max_background,
    ):
        tiles.extend(row_tiles)
        corners.extend(row_corners)
        counts.add(row_counts)
    shape = (0, tile_size, tile_size, 3)
    return (np.stack(tiles) if tiles else np.zeros(shape, np.uint8),
            np.asarray(corners, np.int64).reshape(-1, 2), counts)


def _tile_rows(rows, tile_size, overlap, threshold, max_background):
    """Yields `(tiles, corners, TileCounts)` per row of the tile grid, background dropped.

    Tiles come in `tile_grid` order, as views of a band of image rows. Rows
    are read in whole strips or tiles of the file (`rows.chunk_rows`), so
    each is decoded once, and rows above the current tile row are let go:
    the band is about `tile_size + rows.chunk_rows` image rows.

    Args:
        rows: an `_ArrayRows` or `_TiffRows`.
        tile_size, overlap, threshold, max_background: as `tile_image`.
    """
    corners = tile_grid(rows.height, rows.width, tile_size, overlap)
    band, first = np.zeros((0, rows.width, 3), np.uint8), 0  # band: image rows [first, first + len)
    for y, row in itertools.groupby(corners, key=operator.itemgetter(0)):
        end = first + len(band)
        if y + tile_size > end:
            start = max(end, y)
            chunk = rows.chunk_rows
            stop = min(rows.height, -(-(y + tile_size) // chunk) * chunk)
            fresh = rows.read(start, stop)
            if y < end:  # the rows this tile row shares with the last one are kept, not read again
                band, first = np.concatenate([band[y - first :], fresh]), y
            else:
                band, first = fresh, start
        tiles, kept, counts = [], [], TileCounts()
        for _, x in row:
            tile = band[y - first : y - first + tile_size, x : x + tile_size]
            if is_background(tile, threshold, max_background):
                counts.background += 1
                continue
            tiles.append(tile)
            kept.append((y, x))
            counts.kept += 1
        yield tiles, kept, counts


class _ArrayRows:
    """Rows of an image already in memory, for `_tile_rows`.

    Args:
        image: uint8 `[H, W, 3]`.
    """

    def __init__(self, image):
        self.image = image
        self.height, self.width = int(image.shape[0]), int(image.shape[1])
        self.chunk_rows = max(1, self.height)  # one read, a view: never copied

    def read(self, start, stop):
        return self.image[start:stop]

    def close(self):
        self.image = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Codecs that decode to the same bytes in any library; a TIFF compressed
# otherwise (JPEG, JPEG 2000, WebP) goes through Pillow, whose decoder
# defines the pixels `load_rgb` gives.
_LOSSLESS_TIFF_CODECS = (1, 5, 8, 32773, 32946, 34925, 50000)  # none, LZW, deflate x2, PackBits, LZMA, Zstd


class _TiffRows:
    """Rows of the first page of a TIFF file, read from disk a band at a time.

    Only opened (`_open_tiff_rows`) for pages whose RGB pixels are exactly
    what `load_rgb` gives: 8-bit RGB (alpha dropped) or grey, losslessly
    compressed, top-left orientation.

    Args:
        tif: the file, open (`tifffile.TiffFile`); closed with this reader.
        path: its path, for error messages.
    """

    def __init__(self, tif, path):
        self.path = path
        self._tif = tif
        self._page = page = tif.pages[0]
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self.samples = int(page.samplesperpixel)
        self._separate = page.planarconfig == 2 and self.samples > 1
        # Uncompressed rows stored in order are read straight from the file,
        # any rows at a time; zarr would decode a whole strip, and writers
        # often store an uncompressed image as one strip.
        self._contiguous = page.is_contiguous and page.is_final and not self._separate
        self._zarr, self.chunk_rows, self._columns = None, 1, self.width
        if not self._contiguous:
            import zarr

            self._zarr = zarr.open_array(page.aszarr(), mode="r")
            self.chunk_rows = int(page.tilelength if page.is_tiled else page.rowsperstrip)
            if page.is_tiled:
                # zarr holds every compressed and decoded tile of a read at
                # once: reading about 1024 columns (whole tiles) at a time
                # keeps that small. A strip spans the width, so strips are
                # read whole, once.
                tile_width = int(page.tilewidth)
                self._columns = tile_width * max(1, 1024 // tile_width)
        self.chunk_rows = max(1, min(self.chunk_rows, self.height))

    def read(self, start, stop):
        """Image rows `[start, stop)` as uint8 `[stop - start, W, 3]`."""
        try:
            if self._contiguous:
                row_bytes = self.width * self.samples
                handle = self._tif.filehandle
                handle.seek(self._page.dataoffsets[0] + start * row_bytes)
                data = handle.read((stop - start) * row_bytes)
                if len(data) != (stop - start) * row_bytes:
                    raise ValueError("the file is truncated")
                pixels = np.frombuffer(data, np.uint8).reshape(stop - start, self.width, self.samples)
            elif self._separate:
                pixels = np.moveaxis(self._zarr[:, start:stop], 0, -1)
            else:
                pixels = np.empty((stop - start, self.width, self.samples), np.uint8)
                for left in range(0, self.width, self._columns):
                    right = min(left + self._columns, self.width)
                    pixels[:, left:right] = np.asarray(self._zarr[start:stop, left:right]).reshape(
                        stop - start, right - left, self.samples)
        except Exception as error:  # noqa: BLE001 - name the file, as load_rgb does
            raise ValueError(f"Cannot read the image {self.path}: {error}") from None
        if self.samples == 1:
            return np.repeat(pixels, 3, axis=-1)
        return pixels[..., :3]

    def close(self):
        self._tif.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_tiff_rows(path):
    """A `_TiffRows` for `path`, or None when it is no TIFF tifffile can read as `load_rgb` would."""
    if pathlib.Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - Pillow may still read it (or says why not)
        return None
    try:
        page = tif.pages[0]
        samples = int(page.samplesperpixel)
        extra = tuple(int(e) for e in page.extrasamples)
        # Pillow's convert("RGB"): RGB, RGB plus an unassociated or
        # unspecified fourth sample (dropped), or grey (repeated).
        # Associated alpha is un-premultiplied by Pillow, so it is left to it.
        rgb = page.photometric == 2 and (samples == 3 or (samples == 4 and extra in ((0,), (2,))))
        grey = page.photometric == 1 and samples == 1
        if (
            (rgb or grey)
            and page.dtype == np.uint8 and page.bitspersample == 8 and page.sampleformat == 1
            and page.compression in _LOSSLESS_TIFF_CODECS and page.fillorder == 1
            and page.imagedepth == 1 and page.tags.valueof(274, 1) == 1  # Orientation: top-left
        ):
            return _TiffRows(tif, path)
    except Exception:  # noqa: BLE001 - an odd file: Pillow reads it whole, or says why not
        pass
    tif.close()
    return None


def _open_rows(path):
    """Rows of an image file: read by band from a TIFF file where possible, else decoded whole."""
    rows = _open_tiff_rows(path)
    return rows if rows is not None else _ArrayRows(load_rgb(path))


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
            # convert() copies even an RGB image: one decoded copy fewer at the peak.
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
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
        batch: tiles written per HDF5 append. Memory: one batch, plus one
            row of tiles of a slide, a band of rows of a TIFF file
            (`tile_size` rows and a strip or tile of the file), or the
            decoded image for files that cannot be read in part (PNG, JPEG,
            BMP, JPEG-compressed TIFF).

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
        # Tiles are copied into one preallocated batch per split as they come:
        # a list of views would keep alive every band of image rows they
        # were cut from until the batch is written.
        batch = max(1, int(batch))
        pending, too_small = {}, []  # split: [uint8 batch buffer, tiles in it]

        def put(split, tile):
            if split not in pending:
                pending[split] = [np.empty((batch, tile_size, tile_size, 3), np.uint8), 0]
            buffer, filled = pending[split]
            buffer[filled] = tile
            pending[split][1] = filled = filled + 1
            if filled == batch:
                writer.add(split, buffer)
                pending[split][1] = 0

        def add(split, parts):
            for tiles, part_counts in parts:
                counts.add(part_counts)
                for tile in tiles:
                    for version in dihedral(tile) if split in augment else [tile]:
                        put(split, version)

        for source in sources:
            split = splits.get(source.group, "train")
            groups.setdefault(split, set()).add(source.group)
            if is_slide(source.path):
                add(split, slide_tiles(
                    source.path, magnification=magnification, tile_size=tile_size,
                    overlap=overlap, threshold=threshold, max_background=max_background,
                ))
                continue
            with _open_rows(source.path) as rows:
                if min(rows.height, rows.width) < tile_size:
                    too_small.append(f"{source.path} ({rows.width}x{rows.height})")
                parts = _tile_rows(rows, tile_size, overlap, threshold, max_background)
                add(split, ((tiles, part_counts) for tiles, _, part_counts in parts))
        for split, (buffer, filled) in pending.items():
            if filled:
                writer.add(split, buffer[:filled])
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
