"""H&E tissue data for PathologyGAN: its HDF5 layout, tiling, whole slides.

- `hdf5`: `PathologyHDF5` (lazy reader of `train_img` / `test_img`,
  uint8 N x 224 x 224 x 3, and their labels) and `PathologyHDF5Writer`.
- `tiles`: 224x224 tiles with 50% overlap, background (30% or more
  pixels with all RGB > 215) dropped, 4 rotations x 2 mirrorings;
  `write_tiles` writes a folder of images or slides into the HDF5 layout,
  whole images (slides, patients) per split.
- `slides`: whole-slide images through tiffslide at a chosen magnification.
- `stream`: resumable training batches read from an HDF5 split.

TensorFlow is imported only by `stream`.
"""

from gan_zoo.data.he.hdf5 import PathologyHDF5, PathologyHDF5Writer, hdf5_splits
from gan_zoo.data.he.slides import SlideReader, is_slide, slide_tiles
from gan_zoo.data.he.tiles import (
    HESource,
    background_fraction,
    dihedral,
    is_background,
    scan_he_images,
    tile_grid,
    tile_image,
    write_tiles,
)

__all__ = [
    "HESource",
    "PathologyHDF5",
    "PathologyHDF5Writer",
    "SlideReader",
    "background_fraction",
    "dihedral",
    "hdf5_splits",
    "is_background",
    "is_slide",
    "scan_he_images",
    "slide_tiles",
    "tile_grid",
    "tile_image",
    "write_tiles",
]
