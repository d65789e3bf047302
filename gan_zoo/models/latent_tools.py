"""Latent-space tools of style-based generators (PathologyGAN section 4.3).

PathologyGAN shows that its latent space is structured: walking linearly
between two points gives a smooth change of tissue, and arithmetic on w
(the mapping network's output) moves a tile towards or away from a
feature, with the feature's vector taken as the mean w of images with the
feature minus the mean w of images without it. These functions work on any
model that offers `latent(n, seed)`, `map_latent(z)` and `synthesize(w)`
(`gan_zoo.models.pathology_gan.PathologyGAN` does), and return images in
[0, 1] as `[rows, steps, H, W, C]` arrays that `save_strips` writes as one
PNG, a row per strip.

Example:

>>> z = gan.latent(2, seed=0)
>>> strips = np.stack([interpolate_z(gan, z[0], z[1], 8), interpolate_w(gan, z[0], z[1], 8)])
>>> save_strips("interpolation.png", strips)
>>> vector = attribute_vector(gan, lambda images: cellularity(images) > 0.3, n=512)
>>> save_strips("cells.png", vector_strips(gan, gan.map_latent(z), vector["vector"]))
"""

import numpy as np

from gan_zoo.images import save_image_grid


def linear_path(start, end, steps):
    """`steps` points from `start` to `end` inclusive, `[steps, *start.shape]`."""
    steps = int(steps)
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}.")
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    if start.shape != end.shape:
        raise ValueError(f"start and end differ in shape: {start.shape} vs {end.shape}.")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape((steps,) + (1,) * start.ndim)
    return (1.0 - t) * start + t * end


def interpolate_z(model, z_start, z_end, steps=8, seed=0):
    """Images along the straight line from `z_start` to `z_end` (each z mapped to w)."""
    return model.synthesize(model.map_latent(linear_path(z_start, z_end, steps)), seed=seed)


def interpolate_w(model, z_start, z_end, steps=8, seed=0):
    """Images along the straight line between the w of `z_start` and of `z_end`."""
    w = model.map_latent(np.stack([z_start, z_end]))
    return model.synthesize(linear_path(w[0], w[1], steps), seed=seed)


def attribute_vector(model, has_property, n=512, seed=0, batch_size=64):
    """Mean w of generated images with a property minus the mean w of those without.

    Args:
        model: a style-based generator (see the module docstring).
        has_property: callable images `[n, H, W, C]` in [0, 1] -> booleans
            `[n]` (e.g. a classifier's P(malignant) > 0.5, or a cell count
            above a threshold).
        n: generated images to split by the property.
        seed: seed of their latent draw.
        batch_size: images per forward pass.

    Returns:
        {"vector": [latent_dim], "with": count, "without": count}.
    """
    w = model.map_latent(model.latent(int(n), seed=seed))
    flags = []
    for start in range(0, len(w), batch_size):
        images = model.synthesize(w[start : start + batch_size], seed=seed)
        flags.append(np.asarray(has_property(images), bool).reshape(-1))
    flags = np.concatenate(flags)
    if flags.shape[0] != len(w):
        raise ValueError(f"has_property returned {flags.shape[0]} flags for {len(w)} images.")
    with_count, without_count = int(flags.sum()), int((~flags).sum())
    if not with_count or not without_count:
        raise ValueError(
            f"Of {len(w)} generated images {with_count} have the property and {without_count} "
            "do not: both groups are needed; change the threshold or n."
        )
    vector = w[flags].mean(axis=0) - w[~flags].mean(axis=0)
    return {"vector": vector.astype(np.float32), "with": with_count, "without": without_count}


def vector_strips(model, w, vector, scales=(-2.0, -1.0, 0.0, 1.0, 2.0), seed=0):
    """One strip per w: images of `w + s * vector` for each scale s.

    Returns:
        `[len(w), len(scales), H, W, C]` images in [0, 1].
    """
    w = np.asarray(w, np.float32).reshape(-1, np.asarray(vector).shape[-1])
    scales = np.asarray(scales, np.float32)
    moved = w[:, None, :] + scales[None, :, None] * np.asarray(vector, np.float32)[None, None, :]
    images = model.synthesize(moved.reshape(-1, w.shape[-1]), seed=seed)
    return images.reshape((len(w), len(scales)) + images.shape[1:])


def save_strips(path, strips, upscale=1):
    """Writes strips `[rows, steps, H, W, C]` (or one `[steps, H, W, C]`) as one PNG.

    Args:
        path: the PNG to write.
        strips: images in [0, 1].
        upscale: nearest-neighbour magnification (small tiles are hard to see).
    """
    strips = np.asarray(strips, np.float32)
    if strips.ndim == 4:
        strips = strips[None]
    if strips.ndim != 5:
        raise ValueError(f"strips must be [rows, steps, H, W, C], got shape {strips.shape}.")
    if int(upscale) > 1:
        strips = np.repeat(np.repeat(strips, int(upscale), axis=2), int(upscale), axis=3)
    rows = strips.shape[0]
    return save_image_grid(path, strips.reshape((-1,) + strips.shape[2:]), rows)
