"""Mammogram patches for ciGAN: lesion patches and lesion-free tissue patches.

Wu et al. (2018) train ciGAN and its ResNet-50 on 256x256 patches cut from
mammograms resized to about 1375x750, "only accept[ing] patches that consist
of more than 75% breast tissue". Here, from `MammogramRecord`s with a lesion
mask (the union of an image's lesion masks, e.g. CBIS-DDSM):

- a lesion patch per lesion (8-connected component of the mask with at
  least `min_lesion_pixels` pixels): a square of `patch_size` placed
  uniformly at random among the positions that hold the whole lesion
  (centred on it when the lesion is larger than the patch, counted as
  `clipped_lesions`); its label is the image's (1 malignant, 0 benign:
  CBIS-DDSM labels images, not lesions);
- `normal_per_image` lesion-free patches per image: uniform among the
  positions whose patch holds no lesion pixel and more than `min_tissue` of
  breast tissue (the paper's rejection sampling, done exactly with
  summed-area tables); label 0.

Breast tissue (`tissue_mask`): pixels brighter than `tissue_threshold`
(default 0.1 of full scale: digitised film background and the demo images'
background lie below 0.05, breast tissue above), then the largest
8-connected component (which drops film labels, markers and scanner
artefacts), with its holes filled (dark fat inside the breast is tissue).

Masks travel with the patches (`PatchSet.masks`, binary uint8). Patches
are 8-bit grayscale (uint8), the format of the training pipeline. For
the 256x256 images of `../shared/data/cbis_ddsm_mass` use `patch_size` 64
or 128; for full-resolution images, `target_height=1375` and 256 as in the
paper.

`augmentation_masks` pairs each patch with the mask and the target class
ciGAN's augmentation uses: a non-malignant patch gets the mask of another
(random) malignant lesion and target 1; a malignant patch keeps its own
mask and gets target 0 (its lesion removed).

    >>> records = scan_cbis_ddsm("../shared/data/cbis_ddsm_mass")
    >>> patches = sample_patches(records, patch_size=64, seed=0)
    >>> masks, targets = augmentation_masks(patches, seed=0)
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from PIL import Image
from scipy import ndimage

from gan_zoo.data.mammography.arrays import lesion_mask
from gan_zoo.data.mammography.pixels import load_grayscale

_EIGHT_CONNECTED = np.ones((3, 3), bool)


@dataclasses.dataclass(frozen=True)
class PatchSet:
    """Patches with their masks and what is known about them.

    Args:
        images: uint8 [N, S, S] grayscale patches.
        masks: uint8 [N, S, S], 1 on lesion pixels (all 0 for lesion-free
            patches).
        labels: int32 [N]: 1 for a malignant lesion patch, else 0.
        has_lesion: bool [N]: lesion patch (True) or lesion-free (False).
        patients: [N] patient ids (splits are by these).
        sources: [N] paths of the images the patches come from.
        corners: int32 [N, 2], (top, left) of each patch in its (resized)
            image.
        stats: counts from sampling (see `sample_patches`).
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    has_lesion: np.ndarray
    patients: np.ndarray
    sources: np.ndarray
    corners: np.ndarray
    stats: dict = dataclasses.field(default_factory=dict, compare=False)

    def __len__(self):
        return len(self.labels)

    @property
    def patch_size(self):
        return int(self.images.shape[1])

    def subset(self, indices):
        """The patches at `indices` (an int array or a boolean mask)."""
        indices = np.asarray(indices)
        return dataclasses.replace(
            self, **{f: getattr(self, f)[indices] for f in _ARRAY_FIELDS}, stats={}
        )

    def of_patients(self, patients):
        """The patches of the given patients."""
        return self.subset(np.isin(self.patients, list(patients)))

    def unit_images(self):
        """Patches as float32 [N, S, S, 1] in [0, 1]."""
        return self.images[..., None].astype(np.float32) / 255.0

    def unit_masks(self):
        """Masks as float32 [N, S, S, 1] in {0, 1}."""
        return self.masks[..., None].astype(np.float32)

    def summary(self):
        lesion = int(self.has_lesion.sum())
        return (
            f"{len(self)} patches of {self.patch_size} px from {len(set(self.sources.tolist()))} images "
            f"of {len(set(self.patients.tolist()))} patients: {lesion} lesion "
            f"({int(self.labels[self.has_lesion].sum())} malignant), {len(self) - lesion} lesion-free"
        )


_ARRAY_FIELDS = ("images", "masks", "labels", "has_lesion", "patients", "sources", "corners")


def concatenate(parts):
    """One `PatchSet` of several (stats summed)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("No patches to concatenate.")
    stats = {}
    for part in parts:
        for key, value in part.stats.items():
            stats[key] = stats.get(key, 0) + value
    return PatchSet(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in _ARRAY_FIELDS},
                    stats=stats)


def tissue_mask(image, threshold=0.1):
    """Breast tissue of a grayscale image in [0, 1] (see the module docstring).

    Args:
        image: float array (H, W) in [0, 1].
        threshold: tissue is brighter than this.

    Returns:
        bool (H, W): the largest bright 8-connected component, holes filled.
    """
    bright = np.asarray(image) > float(threshold)
    labels, count = ndimage.label(bright, structure=_EIGHT_CONNECTED)
    if count == 0:
        return bright
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(largest)


def _window_sums(values, size):
    """Sum of `values` in every size x size window; [H - size + 1, W - size + 1]."""
    table = np.pad(np.cumsum(np.cumsum(values, axis=0, dtype=np.int64), axis=1), ((1, 0), (1, 0)))
    return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]


def lesion_free_corners(tissue, lesions, size, min_tissue=0.75):
    """(top, left) of every size x size patch with no lesion pixel and > min_tissue tissue."""
    tissue_fraction = _window_sums(tissue.astype(np.int64), size) / float(size * size)
    lesion_pixels = _window_sums(lesions.astype(np.int64), size)
    return np.argwhere((lesion_pixels == 0) & (tissue_fraction > min_tissue))


def lesion_corner(rows, cols, shape, size, rng):
    """A patch corner holding the whole lesion (rows, cols), uniform among such.

    Returns:
        ((top, left), clipped): clipped is True when the lesion is larger
        than the patch (the patch is then centred on it).
    """
    corner, clipped = [], False
    for coords, extent in ((rows, shape[0]), (cols, shape[1])):
        low, high = int(coords.min()), int(coords.max())
        first = max(0, high - size + 1)  # the patch must reach the lesion's last pixel
        last = min(low, extent - size)  # and start at or before its first
        if first <= last:
            corner.append(int(rng.integers(first, last + 1)))
        else:
            clipped = clipped or high - low + 1 > size
            centre = (low + high + 1) // 2
            corner.append(int(np.clip(centre - size // 2, 0, extent - size)))
    return tuple(corner), clipped


def _load(record, target_height):
    image = load_grayscale(record.path)
    if record.mask_path is None:
        if not record.lesions:
            raise ValueError(f"{record.path} has no lesion mask or outline; ciGAN patches need one.")
        # INbreast polygons, mini-MIAS circles, TCIA per-lesion masks.
        mask = lesion_mask(record, image.shape)
    else:
        mask = load_grayscale(record.mask_path) > 0.5
    if mask.shape != image.shape:
        raise ValueError(
            f"{record.mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {record.path} "
            f"is {image.shape[1]}x{image.shape[0]}."
        )
    if target_height and image.shape[0] != target_height:
        width = max(1, round(image.shape[1] * target_height / image.shape[0]))
        image = np.asarray(Image.fromarray(image).resize((width, target_height), Image.BILINEAR))
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((width, target_height),
                                                                         Image.NEAREST)) > 0
    return np.clip(image, 0.0, 1.0), mask


def _record_rng(seed, path):
    # Per image, so an image's patches do not depend on the other images.
    return np.random.default_rng([int(seed), zlib.crc32(str(path).encode())])


def sample_patches(records, *, patch_size=64, normal_per_image=1, min_tissue=0.75,
                   tissue_threshold=0.1, min_lesion_pixels=4, target_height=None, seed=0):
    """Lesion and lesion-free patches of `records` (see the module docstring).

    Args:
        records: `MammogramRecord`s with `mask_path` (e.g. from
            `gan_zoo.data.mammography.scan_cbis_ddsm`).
        patch_size: side of the square patches (256 in the paper at full
            resolution; 64 or 128 for 256x256 images).
        normal_per_image: lesion-free patches per image (drawn without
            replacement; fewer when fewer positions qualify).
        min_tissue: a lesion-free patch must hold MORE than this fraction of
            breast tissue (0.75 in the paper).
        tissue_threshold: intensity threshold of `tissue_mask`.
        min_lesion_pixels: mask components smaller than this are ignored.
        target_height: resize each image (bilinear; masks nearest) to this
            height, keeping its aspect ratio (1375 in the paper); None keeps
            the size.
        seed: patches are a function of (seed, image path).

    Returns:
        A `PatchSet` (images in record order, lesion patches first per
        image); `stats` counts `clipped_lesions` and
        `images_without_lesion_free_patch`.

    Raises:
        ValueError: an option out of range, or an image smaller than a patch
            (naming the file).
    """
    if int(patch_size) < 8:
        raise ValueError(f"patch_size must be at least 8, got {patch_size}.")
    if int(normal_per_image) < 0:
        raise ValueError(f"normal_per_image must be >= 0, got {normal_per_image}.")
    if not 0.0 <= float(min_tissue) < 1.0:
        raise ValueError(f"min_tissue must lie in [0, 1), got {min_tissue}.")
    if not 0.0 <= float(tissue_threshold) < 1.0:
        raise ValueError(f"tissue_threshold must lie in [0, 1), got {tissue_threshold}.")
    records = list(records)
    if not records:
        raise ValueError("sample_patches got no records.")
    size = int(patch_size)
    out = {f: [] for f in _ARRAY_FIELDS}
    stats = {"clipped_lesions": 0, "images_without_lesion_free_patch": 0}

    def add(image, mask, corner, label, lesion, record):
        top, left = corner
        out["images"].append(np.round(image[top : top + size, left : left + size] * 255).astype(np.uint8))
        out["masks"].append(mask[top : top + size, left : left + size].astype(np.uint8))
        out["labels"].append(label)
        out["has_lesion"].append(lesion)
        out["patients"].append(record.patient_id)
        out["sources"].append(record.path)
        out["corners"].append(corner)

    for record in records:
        image, mask = _load(record, target_height)
        if min(image.shape) < size:
            raise ValueError(f"{record.path} is {image.shape[1]}x{image.shape[0]}, smaller than a "
                             f"{size}-px patch.")
        rng = _record_rng(seed, record.path)
        components, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        for index in range(1, count + 1):
            rows, cols = np.nonzero(components == index)
            if rows.size < min_lesion_pixels:
                continue
            corner, clipped = lesion_corner(rows, cols, image.shape, size, rng)
            stats["clipped_lesions"] += int(clipped)
            add(image, mask, corner, int(record.label or 0), True, record)
        if normal_per_image:
            free = lesion_free_corners(tissue_mask(image, tissue_threshold), mask, size, min_tissue)
            if len(free) == 0:
                stats["images_without_lesion_free_patch"] += 1
                continue
            chosen = rng.choice(len(free), size=min(int(normal_per_image), len(free)), replace=False)
            for index in chosen:
                add(image, mask, tuple(int(v) for v in free[index]), 0, False, record)
    if not out["labels"]:
        raise ValueError("No patch could be sampled from these records (no lesions, no tissue).")
    return PatchSet(
        images=np.stack(out["images"]),
        masks=np.stack(out["masks"]),
        labels=np.asarray(out["labels"], np.int32),
        has_lesion=np.asarray(out["has_lesion"], bool),
        patients=np.asarray(out["patients"]),
        sources=np.asarray(out["sources"]),
        corners=np.asarray(out["corners"], np.int32).reshape(-1, 2),
        stats=stats,
    )


def borrowed_masks(patches, seed=0):
    """Masks for ciGAN's training: lesion patches keep theirs, lesion-free
    patches get the mask of a random lesion patch of the set."""
    donors = np.flatnonzero(patches.has_lesion)
    if donors.size == 0:
        raise ValueError("No lesion patch to lend a mask to the lesion-free patches.")
    rng = np.random.default_rng([int(seed), 1])
    masks = patches.masks.copy()
    free = np.flatnonzero(~patches.has_lesion)
    masks[free] = patches.masks[rng.choice(donors, size=free.size)]
    return masks


def augmentation_masks(patches, seed=0):
    """ciGAN's augmentation: for each patch, the mask to infill and the target class.

    A non-malignant patch (benign lesion or lesion-free) gets the mask of
    another, randomly chosen malignant lesion patch and target 1 (paint a
    malignant lesion); a malignant patch keeps its mask and gets target 0
    (remove its lesion).

    Returns:
        (masks uint8 [N, S, S], target classes int32 [N]).
    """
    malignant = np.flatnonzero(patches.labels == 1)
    others = np.flatnonzero(patches.labels == 0)
    if malignant.size == 0 and others.size:
        raise ValueError("ciGAN's augmentation needs malignant lesion patches to lend their masks.")
    rng = np.random.default_rng([int(seed), 2])
    masks = patches.masks.copy()
    if others.size:
        masks[others] = patches.masks[rng.choice(malignant, size=others.size)]
    targets = np.where(patches.labels == 1, 0, 1).astype(np.int32)
    return masks, targets
