"""Image grids and image files: float images in [0, 1] written as PNG/JPEG.

Used by models (latent walks), data tools (cluster montages), the training
callbacks (sample grids), the recipes and the command line.
"""

import math
import pathlib

import numpy as np


def tile_images(images, rows):
    """[N, H, W, C] images in [0, 1] -> one [rows*H, cols*W, C] grid (1px gaps)."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    cols = math.ceil(n / rows)
    grid = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = image
    return grid


def save_image(path, image):
    """Writes one float image in [0, 1] ([H, W, 1] or [H, W, 3]) as PNG/JPEG."""
    from PIL import Image

    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def save_image_grid(path, images, rows):
    """Writes images in [0, 1] as one grid image (see `tile_images`)."""
    return save_image(path, tile_images(images, rows))
