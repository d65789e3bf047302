"""PathologyGAN's latent-space figures (the paper's section 4.3) for a run.

`latent_strips` writes, into a folder:

- `interpolation_z.png` and `interpolation_w.png`: four rows of linear
  walks between pairs of latents, in z and in w (`latent_tools`);
- `w_vector_class1.png` (with a classifier): four tiles moved along the
  classifier's class-1 direction in w, the mean w of samples it calls
  class 1 minus the mean w of the others, at scales -2..2.
"""

import pathlib

import numpy as np

from gan_zoo.models import latent_tools

STRIP_SEED = 2024  # seed of the latents of every strip
VECTOR_SEED = 7  # seed of the samples that define the class-1 direction
VECTOR_SAMPLES = 256


def _class1_vector(gan, classifier):
    """(attribute vector, rule): split at P(class 1) > 0.5, or at its median when one-sided."""

    def probability(images):
        return np.asarray(classifier.predict(images, verbose=0))[:, 1]

    seen = []

    def above_half(images):
        seen.append(probability(images))
        return seen[-1] > 0.5

    try:
        return latent_tools.attribute_vector(gan, above_half, n=VECTOR_SAMPLES, seed=VECTOR_SEED), "P(class 1) > 0.5"
    except ValueError:  # every sample on one side: split the same samples at their median
        threshold = float(np.median(np.concatenate(seen)))
        vector = latent_tools.attribute_vector(gan, lambda images: probability(images) > threshold,
                                               n=VECTOR_SAMPLES, seed=VECTOR_SEED)
        return vector, f"P(class 1) > its median {threshold:.3f}"


def latent_strips(gan, classifier, folder, steps=8):
    """Interpolation strips in z and w, and the classifier's w direction.

    Args:
        gan: a style-based generator (`latent`, `map_latent`, `synthesize`).
        classifier: a Keras classifier of tiles (softmax over 2 classes), or
            None for the interpolations only.
        folder: where the PNGs are written.
        steps: images per interpolation strip.

    Returns:
        `{"interpolation_z", "interpolation_w"[, "w_vector", "w_vector_rule"]}`:
        the PNG paths, and how the class-1 samples were chosen and counted.
    """
    folder = pathlib.Path(folder)
    z = gan.latent(8, seed=STRIP_SEED)
    upscale = max(1, 112 // gan.image_size)  # small tiles are hard to see
    pairs = [(z[i], z[i + 1]) for i in range(0, 8, 2)]
    out = {}
    for space, walk in (("z", latent_tools.interpolate_z), ("w", latent_tools.interpolate_w)):
        strips = [walk(gan, a, b, steps) for a, b in pairs]
        out[f"interpolation_{space}"] = str(latent_tools.save_strips(folder / f"interpolation_{space}.png",
                                                                     strips, upscale))
    if classifier is None:
        return out
    vector, rule = _class1_vector(gan, classifier)
    strips = latent_tools.vector_strips(gan, gan.map_latent(z[:4]), vector["vector"])
    out["w_vector"] = str(latent_tools.save_strips(folder / "w_vector_class1.png", strips, upscale))
    out["w_vector_rule"] = f"{rule}: {vector['with']} with, {vector['without']} without"
    return out
