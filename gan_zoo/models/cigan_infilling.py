"""ciGAN's infilling (Wu, Wu, Cox & Lotter 2018): what a trained model does with patches.

`InfillingTranslator` is the image-translator role (`gan_zoo.models.roles`)
of `gan_zoo.models.cigan.CIGAN`: `infill(images, masks, target_class)`
paints a lesion of a class into the masked region of grayscale patches
(pixels outside the mask are the input's), its exported signature `infill`,
and the rows of the paper's Fig. 1 (original, input, opposite class) for
sample grids. Class 0 is non-malignant, class 1 malignant.
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.models.cigan_networks import binarize, corrupt
from gan_zoo.models.roles import ImageTranslator, translate_endpoint

NON_MALIGNANT, MALIGNANT = 0, 1
CLASS_NAMES = ("non-malignant", "malignant")


class InfillingTranslator(ImageTranslator):
    """Role: infills a class into masked regions of grayscale patches.

    The model provides `patch_size` and a `generator` mapping (context,
    mask, class) to the patch, the context being the patch with the masked
    pixels replaced by uniform noise (`corrupt`).
    """

    def infill(self, images, masks, target_class, seed=0, batch_size=64):
        """Paints a lesion of `target_class` into the masked region of each patch.

        Target class 1 (malignant) paints a malignant lesion; 0 paints
        non-malignant tissue (removing a lesion). Pixels outside the mask
        are returned unchanged.

        Args:
            images: grayscale patches in [0, 1]: [N, S, S, 1], [N, S, S] or
                one [S, S] patch.
            masks: the regions to infill, same layout; float pixels > 0.5
                (uint8 masks: nonzero pixels, so 0/1 and 0/255 masks both
                work) are infilled. None may be empty.
            target_class: an int for every patch, or one per patch.
            seed: seed of the noise that fills the region before infilling.
            batch_size: patches per forward pass.

        Returns:
            float32 [N, S, S, 1] in [0, 1].
        """
        images = _as_patch_array(images, "images")
        masks = _float_masks(_as_patch_array(masks, "masks"))
        return self.translate(images, batch_size=batch_size, masks=masks,
                              target_class=target_class, seed=seed)

    def translation_image_shape(self):
        return (self.patch_size, self.patch_size, 1)

    def translation_inputs(self):
        size = self.patch_size
        return {
            "masks": tf.TensorSpec((None, size, size, 1), tf.float32, name="masks"),
            "target_class": tf.TensorSpec((None,), tf.int32, name="target_class"),
        }

    def check_conditions(self, images, masks=None, target_class=None, seed=0):
        size = self.patch_size
        if images.shape[1:] != (size, size, 1):
            raise ValueError(
                f"infill: images are {images.shape[1]}x{images.shape[2]}x{images.shape[3]} but this "
                f"ciGAN infills {size}x{size} grayscale patches."
            )
        if masks is None or target_class is None:
            raise ValueError("infill needs masks= and target_class=.")
        masks = np.asarray(masks, np.float32)
        if masks.ndim == 3:
            masks = masks[..., None]
        if masks.shape != images.shape:
            raise ValueError(
                f"infill: images and masks differ in size: images {list(images.shape)}, "
                f"masks {list(masks.shape)}."
            )
        empty = np.flatnonzero(masks.reshape(len(masks), -1).max(axis=1) <= 0.5)
        if empty.size:
            raise ValueError(
                f"infill: mask {int(empty[0])} is empty (no pixel > 0.5); every patch needs a "
                f"region to infill ({empty.size} empty mask(s))."
            )
        classes = np.asarray(target_class).reshape(-1)
        if classes.size == 1:
            classes = np.repeat(classes, len(images))
        if classes.size != len(images) or not np.isin(classes, (NON_MALIGNANT, MALIGNANT)).all():
            raise ValueError(
                f"infill: target_class must be 0 (non-malignant) or 1 (malignant), one for all "
                f"patches or one per patch; got {np.asarray(target_class).tolist()!r}."
            )
        return {"masks": masks, "target_class": classes.astype(np.int32), "seed": int(seed)}

    def _translate(self, images, masks, target_class, seed=None):
        masks = binarize(masks)
        tf.debugging.assert_positive(
            tf.reduce_max(masks, axis=[1, 2, 3]),
            message="infill: every mask needs at least one pixel > 0.5",
        )
        noise_seed = tf.constant([0 if seed is None else int(seed), 0], tf.int64)
        context = corrupt(images, masks, tf.random.stateless_uniform(tf.shape(images), noise_seed))
        return self.generator([context, masks, tf.cast(target_class, tf.int32)], training=False)

    def serving_endpoints(self):
        """`infill(images, masks, target_class) -> {"images"}`, [0, 1] in and out."""
        endpoints = super().serving_endpoints()
        del endpoints["translate"]
        endpoints["infill"] = translate_endpoint(self, None, name="infill")
        return endpoints

    def figure_rows(self, images, masks, labels, seed=0):
        """The paper's Fig. 1 layout: per patch, original, input, opposite class.

        Returns:
            (images [3N, S, S, 1], rows N) for `save_image_grid`.
        """
        images = _as_patch_array(images, "images").astype(np.float32)
        masks = _float_masks(_as_patch_array(masks, "masks"))
        labels = np.asarray(labels).reshape(-1)
        synthetic = self.infill(images, masks, 1 - labels, seed=seed)
        noise = tf.random.stateless_uniform(images.shape, tf.constant([int(seed), 0], tf.int64))
        shown = keras.ops.convert_to_numpy(corrupt(images, binarize(masks), noise))
        rows = np.stack([images, shown, synthetic], axis=1)
        return rows.reshape(-1, *images.shape[1:]), len(images)

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        """Fig. 1 rows of fixed `inputs` = (images, masks, labels)."""
        if inputs is None:
            raise ValueError("CIGAN.preview needs inputs=(images, masks, labels) of fixed patches.")
        images, masks, labels = (inputs[k] for k in ("images", "masks", "labels")) \
            if isinstance(inputs, dict) else inputs
        return self.figure_rows(images[:per_row], masks[:per_row], labels[:per_row], seed=seed)


def _as_patch_array(array, what):
    """[N, S, S, 1] from [N, S, S, 1], [N, S, S] or [S, S]."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None, ..., None]
    elif array.ndim == 3:
        array = array[None] if array.shape[-1] == 1 else array[..., None]
    if array.ndim != 4 or array.shape[-1] != 1 or len(array) == 0:
        raise ValueError(
            f"infill: {what} must be grayscale patches [N, S, S(, 1)], got shape {array.shape}."
        )
    return array


def _float_masks(masks):
    # Integer masks mark lesions with any nonzero value (0/1 or 0/255 files).
    return (masks > 0).astype(np.float32) if masks.dtype.kind in "uib" else masks.astype(np.float32)
