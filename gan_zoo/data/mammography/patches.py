"""ROI square patches and whole images of fixed size, in float32.

DiaGRAM (Shams et al., MICCAI 2018) trains on two kinds of input:

- ROI patches: "We crop the smallest possible square that can fully contain
  a ROI and resize it to 32 x 32"; random rotations and mirroring across
  the y-axis augment them (their ~3,500 DDSM images gave ~25,000 crops).
  `roi_boxes` finds the squares (one per connected component of a mask, or
  one per circle/polygon), `crop_square` cuts and resizes one, and
  `augmented_crops` cuts rotated (any angle) and mirrored copies: the
  rotation turns the image about the ROI centre BEFORE cropping, so the
  corners of a rotated crop hold real tissue, not padding.
- whole images: resized so that the longer side is `size` (aspect ratio
  kept) and padded with 0 (black background) to `size x size`
  (`fit_whole_image`).

Everything is float32 in [0, 1] (never uint8), so 16-bit mammograms keep
their dynamic range; resizing uses area averaging when shrinking (no
aliasing of microcalcifications) and bilinear interpolation when enlarging.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
from scipy import ndimage

PAD_POSITIONS = ("centre", "end")


@dataclasses.dataclass(frozen=True)
class Box:
    """A square region: top-left corner (row, column) and side, in pixels.

    The square may reach outside the image (a ROI at the edge); crops pad
    those parts with 0.
    """

    top: int
    left: int
    side: int

    @property
    def centre(self) -> tuple[float, float]:
        """(row, column) of the centre."""
        return self.top + self.side / 2.0, self.left + self.side / 2.0


def square_around(rows, cols, minimum_side=1) -> Box:
    """The smallest square holding the pixel rows/columns given.

    The square is centred on the bounding box (of rows.min()..rows.max() and
    cols.min()..cols.max()), its side the longer bounding-box side.
    """
    top, bottom = int(np.min(rows)), int(np.max(rows)) + 1
    left, right = int(np.min(cols)), int(np.max(cols)) + 1
    side = max(bottom - top, right - left, int(minimum_side))
    # Centre the square on the box; the shorter side gets the extra pixels.
    top -= (side - (bottom - top)) // 2
    left -= (side - (right - left)) // 2
    return Box(top, left, side)


def roi_boxes(mask, *, minimum_pixels=1, minimum_side=1) -> list[Box]:
    """One smallest square per connected ROI of a binary mask (8-connected).

    Args:
        mask: array (H, W); nonzero = inside a ROI.
        minimum_pixels: components smaller than this are ignored (speckle).
        minimum_side: the least side of a square (a one-pixel calcification
            gets at least this much context).

    Returns:
        Boxes ordered by their first pixel in raster order.
    """
    labels, count = ndimage.label(np.asarray(mask) > 0, structure=np.ones((3, 3), bool))
    boxes = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        rows, cols = np.nonzero(labels[region] == index)
        if rows.size < minimum_pixels:
            continue
        boxes.append(square_around(rows + region[0].start, cols + region[1].start, minimum_side))
    return boxes


def circle_box(centre_x, centre_y, radius, minimum_side=1) -> Box:
    """The square holding a circle (centre in pixel x, y, origin top-left)."""
    side = max(int(math.ceil(2 * radius)), int(minimum_side))
    return Box(int(round(centre_y - side / 2.0)), int(round(centre_x - side / 2.0)), side)


def polygon_mask(polygon, shape) -> np.ndarray:
    """A uint8 mask (0/1) of a polygon of (x, y) pixel vertices, filled.

    One vertex gives one pixel, two give a line (INbreast marks single
    calcifications with one point).
    """
    mask = np.zeros(shape[:2], np.uint8)
    points = np.round(np.asarray(polygon, np.float64)).astype(np.int32).reshape(-1, 1, 2)
    if len(points) >= 3:
        cv2.fillPoly(mask, [points], 1)
    elif len(points) == 2:
        cv2.polylines(mask, [points], False, 1)
    else:  # OpenCV draws no line through a single vertex
        x, y = points.reshape(-1)
        if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]:
            mask[y, x] = 1
    return mask


def _resize(image, size):
    height, width = image.shape[:2]
    shrinking = size[0] < height or size[1] < width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image.astype(np.float32), (size[1], size[0]), interpolation=interpolation)


def crop_square(image, box, size) -> np.ndarray:
    """The square `box` of `image`, resized to (size, size), float32.

    Parts of the box outside the image are 0.
    """
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    top, left, side = box.top, box.left, box.side
    out = np.zeros((side, side), np.float32)
    r0, r1 = max(top, 0), min(top + side, height)
    c0, c1 = max(left, 0), min(left + side, width)
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return _resize(out, (size, size))


def rotated_crop(image, box, size, angle_degrees, mirror=False) -> np.ndarray:
    """`crop_square` of the image turned by `angle_degrees` about the box centre.

    The rotation is applied to a neighbourhood large enough that the crop's
    corners come from the image (reflected beyond its edges), then the
    square is cut and resized; `mirror` flips it across the vertical axis.
    """
    image = np.asarray(image, np.float32)
    half = int(math.ceil(box.side * math.sqrt(2) / 2.0)) + 1
    centre_row, centre_col = box.centre
    around = Box(int(round(centre_row)) - half, int(round(centre_col)) - half, 2 * half)
    region = crop_square(image, around, around.side)
    matrix = cv2.getRotationMatrix2D((half, half), float(angle_degrees), 1.0)
    turned = cv2.warpAffine(region, matrix, (2 * half, 2 * half), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    inner = Box(half - box.side // 2, half - box.side // 2, box.side)
    patch = crop_square(turned, inner, size)
    return patch[:, ::-1].copy() if mirror else patch


def augmented_crops(image, box, size, copies, rng) -> np.ndarray:
    """`copies` crops of one ROI: the plain one, then random turns and mirrors.

    Args:
        image: float32 (H, W).
        box: the ROI's `Box`.
        size: patch side.
        copies: number of patches (>= 1); the first is not augmented.
        rng: a `numpy.random.Generator` (angles uniform in [0, 360),
            mirroring with probability 1/2).

    Returns:
        float32 (copies, size, size).
    """
    patches = [crop_square(image, box, size)]
    for _ in range(int(copies) - 1):
        patches.append(rotated_crop(image, box, size, rng.uniform(0.0, 360.0), rng.random() < 0.5))
    return np.stack(patches)


def fit_whole_image(image, size, *, pad="centre") -> np.ndarray:
    """Resizes so the longer side is `size`, keeping the aspect ratio, then pads with 0.

    Args:
        image: float32 (H, W) in [0, 1].
        size: output side.
        pad: "centre" (equal padding on both sides of the shorter axis) or
            "end" (bottom/right, so the top-left corner stays put).

    Returns:
        float32 (size, size).
    """
    if pad not in PAD_POSITIONS:
        raise ValueError(f"pad must be one of {PAD_POSITIONS}, got {pad!r}.")
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new = (max(1, int(round(height * scale))), max(1, int(round(width * scale))))
    resized = image if new == (height, width) else _resize(image, new)
    out = np.zeros((size, size), np.float32)
    top = (size - new[0]) // 2 if pad == "centre" else 0
    left = (size - new[1]) // 2 if pad == "centre" else 0
    out[top:top + new[0], left:left + new[1]] = resized
    return np.clip(out, 0.0, 1.0)
