"""Whole images and ROI patches of mammogram records, as float32 arrays.

`prepare_mammograms` reads every image once (`load_grayscale`, keeping its
bit depth), fits it to `image_size x image_size` (aspect kept, padded:
`fit_whole_image`) and cuts the ROI patches of its lesions
(`roi_boxes` / `circle_box` / polygons, `augmented_crops`):

- a whole-image mask (`record.mask_path`, the PNG layout's union of lesion
  masks) gives one patch per connected component, labelled with the
  image's label (the union does not say which component is which lesion);
- `record.lesions` with masks (TCIA CBIS-DDSM), polygons (INbreast) or
  circles (mini-MIAS) give one patch each, labelled with the lesion's own
  label when known, else the image's.

Arrays stay float32 in [0, 1] with the patient of every row, so they can be
split by patient (`select`) and streamed (`gan_zoo.data.mammography.
streams`). Memory: N x image_size^2 x 4 bytes (1,231 images at 128 px:
81 MB).
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np

from gan_zoo.data.mammography.patches import (
    augmented_crops,
    circle_box,
    fit_whole_image,
    polygon_mask,
    roi_boxes,
    square_around,
)
from gan_zoo.data.mammography.pixels import bit_depth_of, load_grayscale

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MammogramArrays:
    """Images (whole or patches) with labels and patients, row-aligned.

    Args:
        images: float32 (N, H, W, 1) in [0, 1].
        labels: int32 (N,).
        patients: patient id of each row.
        paths: the source image of each row.
        bit_depth: the largest bit depth of the source files (8 for 8-bit
            PNGs; 16-bit data is streamed without quantisation).
        skipped_rois: one line per ROI left out because it lies wholly
            outside its image (file, ROI, image size).
    """

    images: np.ndarray
    labels: np.ndarray
    patients: tuple[str, ...]
    paths: tuple[str, ...]
    bit_depth: int = 8
    skipped_rois: tuple[str, ...] = ()

    def __len__(self):
        return len(self.labels)

    def select(self, patients) -> "MammogramArrays":
        """The rows of the given patients, order kept."""
        wanted = {str(p) for p in patients}
        rows = np.array([p in wanted for p in self.patients], bool)
        return MammogramArrays(
            self.images[rows], self.labels[rows],
            tuple(p for p, keep in zip(self.patients, rows) if keep),
            tuple(p for p, keep in zip(self.paths, rows) if keep),
            self.bit_depth, self.skipped_rois,
        )


def _mask_file(mask_path, shape, window):
    """A mask image as bool pixels of `shape` (resized nearest when it differs)."""
    mask = load_grayscale(mask_path, window=window) > 0.5
    if mask.shape != tuple(shape[:2]):
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask


def _mask_boxes(mask_path, shape, minimum_side, window):
    return roi_boxes(_mask_file(mask_path, shape, window), minimum_side=minimum_side)


def lesion_mask(record, shape, *, window="bits"):
    """The union of a record's lesions as a boolean pixel mask of `shape`.

    Mask files (CBIS-DDSM) are resized to `shape` (nearest); INbreast
    polygons are filled (`polygon_mask`, one point: one pixel); mini-MIAS
    circles are drawn filled. Coordinates are pixels of an image of `shape`.

    Returns:
        bool [H, W]; all False for a record without lesions.
    """
    shape = tuple(shape[:2])
    mask = np.zeros(shape, bool)
    if record.mask_path:
        mask |= _mask_file(record.mask_path, shape, window)
    for lesion in record.lesions:
        if lesion.mask_path:
            mask |= _mask_file(lesion.mask_path, shape, window)
        elif lesion.polygon:
            mask |= polygon_mask(lesion.polygon, shape).astype(bool)
        elif lesion.centre is not None and lesion.radius is not None:
            circle = np.zeros(shape, np.uint8)
            centre = tuple(int(round(v)) for v in lesion.centre)
            cv2.circle(circle, centre, max(int(round(lesion.radius)), 0), 1, thickness=-1)
            mask |= circle.astype(bool)
    return mask


def _outside(xs, ys, shape):
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    return bool(np.all((xs < 0) | (xs > shape[1] - 1) | (ys < 0) | (ys > shape[0] - 1)))


def lesion_boxes(record, shape, *, minimum_side=8, window="bits", skipped=None):
    """[(Box, label)] of a record's ROIs (see the module docstring).

    A polygon or circle ROI whose every point lies outside the image (a
    corrupt annotation) would crop an empty patch with the lesion's label:
    it is left out, and a line naming the file is appended to `skipped`.
    """
    boxes = []
    if record.mask_path:
        boxes += [(box, record.label) for box in
                  _mask_boxes(record.mask_path, shape, minimum_side, window)]
    for lesion in record.lesions:
        label = record.label if lesion.label is None else lesion.label
        if lesion.mask_path:
            boxes += [(box, label) for box in
                      _mask_boxes(lesion.mask_path, shape, minimum_side, window)]
        elif lesion.polygon:
            points = np.asarray(lesion.polygon, np.float64)
            if _outside(points[:, 0], points[:, 1], shape):
                _skip(skipped, record, f"polygon ROI of {len(points)} points", shape)
                continue
            boxes.append((square_around(np.round(points[:, 1]), np.round(points[:, 0]),
                                        minimum_side), label))
        elif lesion.centre is not None and lesion.radius is not None:
            (x, y), r = lesion.centre, lesion.radius
            if _outside([x - r, x + r], [y - r, y + r], shape) and _outside([x], [y], shape):
                _skip(skipped, record, f"circle ROI at ({x:g}, {y:g})", shape)
                continue
            boxes.append((circle_box(*lesion.centre, lesion.radius, minimum_side), label))
    return boxes


def _skip(skipped, record, what, shape):
    line = f"{record.path}: {what} lies wholly outside the {shape[1]}x{shape[0]} image; skipped"
    logger.warning(line)
    if skipped is not None:
        skipped.append(line)


def prepare_mammograms(records, *, image_size=256, patch_size=32, patch_copies=8, seed=0,
                       with_patches=True, roi_min_side=8, window="bits", pad="centre"):
    """Whole images and ROI patches of `records`, each file read once.

    Args:
        records: `MammogramRecord`s with a label (records whose label is
            None are refused).
        image_size: side of the whole images.
        patch_size: side of the ROI patches.
        patch_copies: patches per ROI: the plain crop plus random rotations
            (any angle) and mirrorings (the paper's augmentation).
        seed: seed of the rotations and mirrorings.
        with_patches: False to skip the ROIs (e.g. a target set used for
            fine-tuning only).
        roi_min_side: least side (pixels of the source image) of a ROI square.
        window: DICOM scaling (`load_grayscale`).
        pad: where whole images are padded ("centre" or "end").

    Returns:
        `(whole, patches)`: two `MammogramArrays` (patches None without
        `with_patches`; empty when no record has a ROI).
    """
    unlabelled = [r.path for r in records if r.label is None]
    if unlabelled:
        raise ValueError(f"{len(unlabelled)} records have no label (e.g. {unlabelled[0]}).")
    if not records:
        raise ValueError("No records to prepare.")
    rng = np.random.default_rng(seed)
    whole = np.zeros((len(records), image_size, image_size, 1), np.float32)
    patch_list, patch_labels, patch_patients, patch_paths, skipped = [], [], [], [], []
    depth = 8
    for index, record in enumerate(records):
        image = load_grayscale(record.path, window=window)
        depth = max(depth, bit_depth_of(record.path))
        whole[index, ..., 0] = fit_whole_image(image, image_size, pad=pad)
        if not with_patches:
            continue
        for box, label in lesion_boxes(record, image.shape, minimum_side=roi_min_side,
                                       window=window, skipped=skipped):
            crops = augmented_crops(image, box, patch_size, patch_copies, rng)
            patch_list.append(np.clip(crops, 0.0, 1.0))
            patch_labels += [label] * len(crops)
            patch_patients += [record.patient_id] * len(crops)
            patch_paths += [record.path] * len(crops)
    whole_arrays = MammogramArrays(
        whole, np.array([r.label for r in records], np.int32),
        tuple(r.patient_id for r in records), tuple(r.path for r in records), depth)
    if not with_patches:
        return whole_arrays, None
    images = (np.concatenate(patch_list)[..., None] if patch_list
              else np.zeros((0, patch_size, patch_size, 1), np.float32))
    patches = MammogramArrays(images, np.array(patch_labels, np.int32), tuple(patch_patients),
                              tuple(patch_paths), depth, tuple(skipped))
    logger.info("Prepared %d whole images and %d ROI patches.", len(whole_arrays), len(patches))
    return whole_arrays, patches
