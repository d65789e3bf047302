"""Whole-slide images (.svs, pyramidal .tif) read at a chosen magnification.

Read through tiffslide (Poehlmann et al.): a pure-Python, OpenSlide-
compatible reader (same `TiffSlide(path).read_region(...)` API and property
names) built on tifffile, so it installs from PyPI with no system library
and reads Aperio .svs, generic pyramidal TIFF and OME-TIFF, which covers
the breast H&E slides of TCGA and CAMELYON. OpenSlide itself needs a C
library that pip cannot install on every platform (and it reads a few
formats, e.g. MIRAX .mrxs, tiffslide does not).

A slide's base magnification comes from its metadata
(`tiffslide.objective-power`, Aperio's AppMag), else from its pixel size
(10 / microns-per-pixel: 0.25 um/px is 40x), else it must be given. To
read at a lower magnification the reader picks the pyramid level closest
to (and not coarser than) the wanted one and resizes each region by the
rest of the factor, region by region: a slide is never read whole.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from gan_zoo.data.he.tiles import SLIDE_SUFFIXES, TileCounts, is_background, tile_grid


def _tiffslide():
    import tiffslide

    return tiffslide


def is_slide(path):
    """True for whole-slide formats and for TIFF files with a pyramid (several levels)."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix in SLIDE_SUFFIXES:
        return True
    if suffix not in (".tif", ".tiff"):
        return False
    try:
        with _tiffslide().TiffSlide(path) as slide:
            return slide.level_count > 1
    except Exception:  # noqa: BLE001 - not a slide tiffslide can read: an ordinary image
        return False


def slide_magnification(slide, path="slide"):
    """The magnification of level 0, from the objective power or the pixel size."""
    properties = slide.properties
    power = properties.get("tiffslide.objective-power")
    if power:
        return float(power)
    mpp = properties.get("tiffslide.mpp-x")
    if mpp:
        return 10.0 / float(mpp)
    raise ValueError(
        f"{path} records neither its objective power nor its pixel size; pass "
        "base_magnification= (e.g. 40 for a 0.25 um/pixel scan)."
    )


class SlideReader:
    """Regions of a whole-slide image at a chosen magnification.

    Args:
        path: the slide (.svs, pyramidal .tif, ...).
        magnification: the magnification to read at (e.g. 20); None reads
            at the base magnification.
        base_magnification: level 0's magnification when the file does not
            record it.

    Example:

    >>> with SlideReader("TCGA-A1-A0SB.svs", magnification=20) as slide:
    ...     slide.size                          # (height, width) at 20x
    ...     region = slide.read(0, 0, 224)      # uint8 [224, 224, 3]
    """

    def __init__(self, path, magnification=None, base_magnification=None):
        self.path = pathlib.Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"slide not found: {self.path}")
        try:
            self._slide = _tiffslide().TiffSlide(self.path)
        except Exception as error:  # noqa: BLE001 - name the file and the reason
            raise ValueError(f"Cannot open the slide {self.path}: {error}") from None
        if base_magnification is None:
            base = None if magnification is None else slide_magnification(self._slide, self.path)
        else:
            base = float(base_magnification)
        self.base_magnification = base
        if magnification is None or base is None:
            self.magnification, self.factor = base, 1.0
        else:
            if not 0 < float(magnification) <= base:
                raise ValueError(
                    f"magnification must be in (0, {base:g}] for {self.path.name} "
                    f"(scanned at {base:g}x), got {magnification!r}."
                )
            self.magnification = float(magnification)
            self.factor = base / self.magnification  # level-0 pixels per output pixel
        self.level = self._slide.get_best_level_for_downsample(self.factor + 1e-6)
        self.level_downsample = float(self._slide.level_downsamples[self.level])
        width, height = self._slide.dimensions
        self.size = (int(height / self.factor), int(width / self.factor))

    def read(self, y, x, size):
        """The `size x size` region at output coordinates (y, x): uint8 `[size, size, 3]`."""
        from PIL import Image

        # The region in level-0 coordinates, read at the chosen level, then
        # resized by what the level's downsample leaves of the factor.
        level0 = (int(round(x * self.factor)), int(round(y * self.factor)))
        extent = int(math.ceil(size * self.factor / self.level_downsample))
        region = self._slide.read_region(level0, self.level, (extent, extent))
        region = region.convert("RGB")
        if extent != size:
            region = region.resize((size, size), Image.BILINEAR, reducing_gap=None)
        return np.asarray(region)

    def close(self):
        self._slide.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def slide_tiles(
    path, *, magnification=None, base_magnification=None, tile_size=224, overlap=0.5,
    threshold=215, max_background=0.3, rows_per_part=1,
):
    """Yields `(tiles, TileCounts)` per row of tiles of a slide, background dropped.

    Args:
        path: the slide.
        magnification: read at this magnification (None: the base one).
        base_magnification: level 0's magnification if the file lacks it.
        tile_size, overlap, threshold, max_background: as `tile_image`.
        rows_per_part: tile rows per yielded part (memory: one part).
    """
    with SlideReader(path, magnification, base_magnification) as slide:
        height, width = slide.size
        corners = tile_grid(height, width, tile_size, overlap)
        rows = sorted({y for y, _ in corners})
        for start in range(0, len(rows), int(rows_per_part)):
            chosen = set(rows[start : start + int(rows_per_part)])
            tiles, counts = [], TileCounts()
            for y, x in corners:
                if y not in chosen:
                    continue
                tile = slide.read(y, x, tile_size)
                if is_background(tile, threshold, max_background):
                    counts.background += 1
                else:
                    tiles.append(tile)
                    counts.kept += 1
            shape = (0, tile_size, tile_size, 3)
            yield (np.stack(tiles) if tiles else np.zeros(shape, np.uint8)), counts
