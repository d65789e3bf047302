"""Per-image cell counts of H&E tiles, and the Frechet distance between their distributions.

PathologyGAN (Quiros, Murray-Smith & Yuan, "Pathology GAN: Learning deep
representations of cancer tissue", MIDL 2020) reports, beside its Inception
FID, a "cancer-cell-feature FID": the Frechet distance between real and
generated tiles of per-image vectors (cancer cells, other cells, cancer-cell
density) that a cell classifier gives. Their classifier is not public; this
module builds the same three numbers from a documented classical nuclei
detector, with numpy, scipy and OpenCV only:

1. Colour deconvolution (A. C. Ruifrok, D. A. Johnston (2001),
   "Quantification of histochemical staining by color deconvolution",
   Analytical and Quantitative Cytology and Histology 23(4): 291-299): the
   optical density `OD = -log10(I)` of each pixel (I in (0, 1]) is the sum of
   the stains' unit OD vectors times their amounts; inverting the 3x3 stain
   matrix (the paper's hematoxylin, eosin and DAB vectors) gives the
   hematoxylin amount per pixel, which stains nuclei.
2. A threshold on the (Gaussian-smoothed) hematoxylin channel: Otsu's
   (N. Otsu (1979), IEEE Trans. SMC 9(1)) over the tissue pixels, never below
   `min_hematoxylin` (a tile without nuclei then segments none), then a
   morphological opening and hole filling.
3. Touching nuclei are split by a watershed (by immersion, L. Vincent,
   P. Soille (1991), IEEE TPAMI 13(6)) of the inverted distance transform,
   seeded at the distance transform's local maxima that lie at
   least `min_seed_distance` pixels inside the mask.
4. Nuclei of `min_area` to `max_area` pixels are kept and each classified
   by `classify`: an "other" cell (lymphocyte-like) when small
   (`area < cancer_min_area`) or compact (mean hematoxylin at least
   `dark_hematoxylin` and axis ratio at least `round_axis_ratio`), else a
   cancer cell (large, pale or irregular: the pleomorphic tumour nucleus).

Per image: (cancer cells, other cells, cancer cells per `density_area`
pixels of tissue), tissue being the pixels that are not background (all RGB
above 215, the tiling rule of `gan_zoo.data.he`).

All sizes are in pixels at the REFERENCE scale, the scale of the source
images the tiles were cut from (for the BreCaHAD tiles in
`../shared/data/he_tiles/brecahad`, 1360x1024 at 40x, nuclei of about 30
pixels across). An image at another scale (a generator trained on tiles
downsampled from 224 to 56 has scale 0.25) is resized to the reference scale
first (`scale` argument).

What is and is not validated: nucleus detection is measured against the
BreCaHAD nucleus annotations (`benchmarks/cell_detector_accuracy.py`,
`docs/results/runs/cell_detector_brecahad.json`); the cancer / other split
has NO labels in the project's data, so it is an unvalidated morphological
rule, and so is the resulting FID's cancer-vs-other part.

Example:

    counts = cell_count_vectors(real_images)           # [N, 3]
    fake = cell_count_vectors(generated_images, scale=0.25)
    distance = cell_fid(counts, fake)
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from scipy import ndimage

from gan_zoo.metrics import generative

__all__ = [
    "COUNT_NAMES",
    "RUIFROK_JOHNSTON_STAINS",
    "CellDetectorConfig",
    "Nuclei",
    "cell_count_vectors",
    "cell_fid",
    "classify",
    "count_vector",
    "detect_nuclei",
    "detection_scores",
    "detection_summary",
    "hematoxylin",
]

COUNT_NAMES = ("cancer_cells", "other_cells", "cancer_cell_density")
"""The three per-image numbers, in the order of the count vectors."""

RUIFROK_JOHNSTON_STAINS = np.array([
    [0.650, 0.704, 0.286],  # hematoxylin
    [0.072, 0.990, 0.105],  # eosin
    [0.268, 0.570, 0.776],  # DAB (absent in H&E; completes the basis)
])
"""Optical-density vectors (R, G, B) of Ruifrok & Johnston (2001), Table 1."""

_LOWEST_INTENSITY = 1.0 / 255.0  # black pixels: OD of a uint8 value of 1


@dataclasses.dataclass(frozen=True)
class CellDetectorConfig:
    """The nuclei detector's parameters; sizes in pixels at the reference scale.

    Args:
        smoothing_sigma: Gaussian sigma applied to the hematoxylin channel
            before thresholding.
        threshold: "otsu" (over tissue pixels) or a fixed hematoxylin amount.
        min_hematoxylin: floor of the threshold (optical-density units), so
            that a tile without nuclei does not segment its darkest pixels.
        opening_radius: radius of the disc of the morphological opening that
            removes specks and thin bridges (0: none).
        min_seed_distance: a watershed seed is a local maximum of the
            distance transform at least this far inside the mask.
        seed_footprint: side of the window in which a seed must be the
            maximum (below a nucleus diameter: smaller splits more).
        min_area: smallest nucleus kept (pixels).
        max_area: largest nucleus kept (pixels; larger blobs are clumps or
            dark stroma, not one nucleus).
        cancer_min_area: nuclei at least this large are cancer cells unless
            dark and round.
        dark_hematoxylin: mean hematoxylin amount from which a nucleus is
            "dark" (dense chromatin, as lymphocytes).
        round_axis_ratio: minor / major axis ratio (from the second moments)
            from which a nucleus is "round".
        background_level: a pixel with all RGB values above this (0-255) is
            background, not tissue.
        density_area: tissue area (pixels) per unit of the cancer-cell
            density (10,000: cells per 100 x 100 pixels of tissue).
    """

    smoothing_sigma: float = 2.0
    threshold: str | float = "otsu"
    min_hematoxylin: float = 0.25
    opening_radius: int = 2
    min_seed_distance: float = 3.0
    seed_footprint: int = 21
    min_area: int = 150
    max_area: int = 3000
    cancer_min_area: int = 350
    dark_hematoxylin: float = 0.6
    round_axis_ratio: float = 0.8
    background_level: int = 215
    density_area: float = 10_000.0

    def __post_init__(self):
        if self.threshold != "otsu" and not isinstance(self.threshold, (int, float)):
            raise ValueError(f"threshold must be 'otsu' or a number, got {self.threshold!r}.")
        if not 0 < self.min_area <= self.cancer_min_area <= self.max_area:
            raise ValueError("need 0 < min_area <= cancer_min_area <= max_area, got "
                             f"{self.min_area}, {self.cancer_min_area}, {self.max_area}.")
        if self.seed_footprint < 1 or self.opening_radius < 0 or self.density_area <= 0:
            raise ValueError("seed_footprint >= 1, opening_radius >= 0 and density_area > 0 are required.")

    def to_dict(self):
        """The parameters as a JSON-serialisable dict (recorded with every score)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A config from `to_dict`'s output; unknown keys raise ValueError."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown cell detector option(s): {sorted(unknown)}.")
        return cls(**values)


@dataclasses.dataclass
class Nuclei:
    """The nuclei found in one image (reference-scale pixels).

    Attributes:
        centroids: float `[n, 2]` (row, column) of each nucleus, in the
            coordinates of the image as given (scaled back from the
            reference scale).
        areas: int `[n]` pixels at the reference scale.
        axis_ratios: float `[n]` minor / major axis (1 for a disc).
        hematoxylin: float `[n]` mean hematoxylin amount.
        cancer: bool `[n]` the classification rule's call.
        tissue_area: tissue pixels of the image at the reference scale.
    """

    centroids: np.ndarray
    areas: np.ndarray
    axis_ratios: np.ndarray
    hematoxylin: np.ndarray
    cancer: np.ndarray
    tissue_area: int

    def __len__(self):
        return int(self.areas.shape[0])


def _float_rgb(image):
    """`image` as float64 `[H, W, 3]` in [0, 1] (uint8 divided by 255)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"an RGB image [H, W, 3] is needed, got shape {image.shape}.")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype.kind != "f":
        raise ValueError(f"images must be uint8 or floats in [0, 1], got dtype {image.dtype}.")
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def hematoxylin(image, stains=RUIFROK_JOHNSTON_STAINS):
    """Hematoxylin amount per pixel by colour deconvolution (Ruifrok & Johnston 2001).

    Args:
        image: RGB `[H, W, 3]`, uint8 or floats in [0, 1].
        stains: `[3, 3]` OD vectors of the stains, one per row (normalised
            here); the first row is hematoxylin.

    Returns:
        float64 `[H, W]` (computed in float32): the first stain's amount (optical-density units;
        0 on white, about 0.5 to 2 in nuclei).
    """
    rgb = _float_rgb(image).astype(np.float32)
    density = -np.log10(np.maximum(rgb, np.float32(_LOWEST_INTENSITY)))
    matrix = np.asarray(stains, np.float64)
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    # OD = amounts @ matrix for each pixel, so amounts = OD @ inv(matrix); only the first column is needed.
    return (density @ np.linalg.inv(matrix)[:, 0].astype(np.float32)).astype(np.float64)


def _otsu(values, bins=256):
    """Otsu's threshold of a 1-D sample: maximises the between-class variance."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return high
    histogram, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(histogram * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass_low / weight_low
        mean_high = (mass_low[-1] - mass_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    return float(edges[1:][int(np.argmax(between))])


def _disc(radius):
    grid = np.arange(-radius, radius + 1)
    return grid[:, None] ** 2 + grid[None, :] ** 2 <= radius * radius


def _to_reference_scale(rgb, scale):
    import cv2

    if scale == 1.0:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    interpolation = cv2.INTER_LINEAR if scale < 1.0 else cv2.INTER_AREA
    return np.clip(cv2.resize(rgb.astype(np.float32), size, interpolation=interpolation), 0.0, 1.0)


def _segment(amount, tissue, config):
    """Labelled nuclei `[H, W]` (0: none) of a hematoxylin map."""
    import cv2

    smooth = ndimage.gaussian_filter(amount, config.smoothing_sigma) if config.smoothing_sigma else amount
    if config.threshold == "otsu":
        level = _otsu(smooth[tissue]) if tissue.sum() > 1 else math.inf
    else:
        level = float(config.threshold)
    mask = smooth > max(level, config.min_hematoxylin)
    if config.opening_radius:
        mask = ndimage.binary_opening(mask, structure=_disc(config.opening_radius))
    mask = ndimage.binary_fill_holes(mask)
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    peaks = (distance >= config.min_seed_distance) & (
        distance >= ndimage.maximum_filter(distance, size=config.seed_footprint))
    seeds, count = ndimage.label(peaks, structure=np.ones((3, 3)))  # a plateau is one seed
    # Only mask components holding two or more seeds need a watershed; one seed labels its whole
    # component, and a component without a seed keeps a label of its own.
    components, n_components = ndimage.label(mask)
    seed_component = np.asarray(ndimage.maximum(components, seeds, index=np.arange(1, count + 1)), np.int64)
    seeds_per_component = np.bincount(seed_component, minlength=n_components + 1)
    mapping = np.zeros(n_components + 1, np.int64)
    single = seeds_per_component[seed_component] == 1
    mapping[seed_component[single]] = np.arange(1, count + 1)[single]
    unseeded = np.flatnonzero(seeds_per_component[1:] == 0) + 1
    mapping[unseeded] = count + np.arange(1, unseeded.size + 1)
    labels = mapping[components]
    boxes = ndimage.find_objects(components)
    for component in np.flatnonzero(seeds_per_component[1:] > 1) + 1:
        box = boxes[component - 1]
        inside = components[box] == component
        flooded = _flood(distance[box], inside, np.where(inside, seeds[box], 0))
        labels[box][inside] = flooded[inside]
    return labels.astype(np.int32)


def _flood(distance, mask, seeds, step=1.0):
    """Watershed of the inverted distance transform by immersion (Vincent & Soille 1991).

    The mask is flooded from its deepest level (largest distance) down in
    `step`-pixel levels; at each level the labelled basins grow, one pixel
    ring at a time (4-neighbourhood), into the unlabelled mask pixels of that
    level, so touching nuclei meet at the neck between their centres.
    Pixels no seed reaches stay 0.
    """
    labels = seeds.copy()
    cross = ndimage.generate_binary_structure(2, 1)
    for level in np.arange(float(distance.max()), 0.0, -step):
        region = mask & (distance >= level) & (labels == 0)
        while region.any():
            grown = ndimage.grey_dilation(labels, footprint=cross)
            new = region & (grown > 0)
            if not new.any():
                break
            labels[new] = grown[new]
            region &= ~new
    return labels


def classify(areas, axis_ratios, amounts, config):
    """The cancer / other rule: True for a cancer cell.

    A nucleus is an "other" cell (lymphocyte, stromal or other small cell)
    when it is small (`area < cancer_min_area`) or dark and round (mean
    hematoxylin >= `dark_hematoxylin` and axis ratio >= `round_axis_ratio`);
    every other nucleus (large, pale or irregular) is a cancer cell. No
    labels validate this rule (see the module docstring).
    """
    small = np.asarray(areas) < config.cancer_min_area
    compact = (np.asarray(amounts) >= config.dark_hematoxylin) & (np.asarray(axis_ratios) >= config.round_axis_ratio)
    return ~(small | compact)


def detect_nuclei(image, config=None, *, scale=1.0):
    """Nuclei of one H&E image, each classified as a cancer or an other cell.

    Args:
        image: RGB `[H, W, 3]`, uint8 or floats in [0, 1].
        config: a `CellDetectorConfig` (default: the defaults).
        scale: the image's pixels per reference-scale pixel (0.25 for a
            224-pixel tile shown at 56); the image is resized to the
            reference scale before detection.

    Returns:
        `Nuclei`.
    """
    config = config or CellDetectorConfig()
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}.")
    rgb = _to_reference_scale(_float_rgb(image), float(scale))
    tissue = ~np.all(rgb > config.background_level / 255.0, axis=-1)
    amount = hematoxylin(rgb)
    labels = _segment(amount, tissue, config)
    n = int(labels.max())
    index = labels.ravel()
    areas = np.bincount(index, minlength=n + 1)[1:]
    rows, cols = np.indices(labels.shape)
    sums = {name: np.bincount(index, weights=values.ravel(), minlength=n + 1)[1:]
            for name, values in (("r", rows), ("c", cols), ("rr", rows * rows), ("cc", cols * cols),
                                 ("rc", rows * cols), ("h", amount))}
    keep = (areas >= config.min_area) & (areas <= config.max_area)
    area = np.maximum(areas, 1).astype(np.float64)
    mean_r, mean_c = sums["r"] / area, sums["c"] / area
    var_r = sums["rr"] / area - mean_r**2
    var_c = sums["cc"] / area - mean_c**2
    cov = sums["rc"] / area - mean_r * mean_c
    spread = np.sqrt(np.maximum(((var_r - var_c) / 2) ** 2 + cov**2, 0.0))
    major = (var_r + var_c) / 2 + spread
    minor = np.maximum((var_r + var_c) / 2 - spread, 0.0)
    ratios = np.sqrt(minor / np.maximum(major, 1e-12))
    amounts = sums["h"] / area
    areas, ratios, amounts = areas[keep], ratios[keep], amounts[keep]
    centroids = np.stack([mean_r[keep], mean_c[keep]], axis=1) * float(scale)
    return Nuclei(centroids=centroids, areas=areas.astype(np.int64), axis_ratios=ratios, hematoxylin=amounts,
                  cancer=classify(areas, ratios, amounts, config), tissue_area=int(tissue.sum()))


def count_vector(nuclei, config=None):
    """(cancer cells, other cells, cancer cells per `density_area` tissue pixels) of one image."""
    config = config or CellDetectorConfig()
    cancer = int(nuclei.cancer.sum())
    density = cancer * config.density_area / nuclei.tissue_area if nuclei.tissue_area else 0.0
    return np.array([cancer, len(nuclei) - cancer, density], np.float64)


def cell_count_vectors(images, config=None, *, scale=1.0):
    """`[N, 3]` count vectors (`COUNT_NAMES`) of a batch or an iterable of batches.

    Args:
        images: `[N, H, W, 3]` (uint8 or [0, 1] floats), or an iterable of
            such batches (e.g. `gan_zoo.metrics.features.image_batches`).
        config: a `CellDetectorConfig`.
        scale: the images' pixels per reference-scale pixel.
    """
    config = config or CellDetectorConfig()
    batches = [images] if isinstance(images, np.ndarray) else images
    rows = [count_vector(detect_nuclei(image, config, scale=scale), config)
            for batch in batches for image in np.asarray(batch)]
    return np.array(rows, np.float64).reshape(-1, len(COUNT_NAMES))


def cell_fid(real_counts, fake_counts):
    """Frechet distance of two sets of count vectors (PathologyGAN's cancer-cell-feature FID).

    The Frechet distance of Gaussians fitted to the `[N, 3]` vectors,
    `gan_zoo.metrics.generative.fid`: NaN (with a warning) for 3 or fewer
    images on a side. Constant columns (e.g. no cells found at all) are
    handled by its regularised fallback, whose warning is silenced here:
    the distance is then that of the means plus the other columns' part.

    Args:
        real_counts: `[N, 3]` of real images.
        fake_counts: `[M, 3]` of generated images.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Frechet distance: sqrtm", category=generative.GenerativeMetricWarning)
        return generative.fid(real_counts, fake_counts)


def detection_scores(centroids, annotation_mask):
    """Detection precision / recall / F1 against a binary nucleus mask.

    Each connected component (8-connected) of `annotation_mask` is one
    annotated nucleus.
    A detected centroid is a true positive when it falls inside a component
    that no earlier centroid matched; otherwise it is a false positive.
    Components left unmatched are false negatives.

    Args:
        centroids: `[n, 2]` (row, column) of detections.
        annotation_mask: bool `[H, W]`.

    Returns:
        dict of `true_positives`, `false_positives`, `false_negatives`,
        `annotated`, `detected`, `precision`, `recall`, `f1` (NaN when
        undefined).
    """
    components, annotated = ndimage.label(np.asarray(annotation_mask, bool), structure=np.ones((3, 3)))
    matched = np.zeros(annotated + 1, bool)
    true_positives = 0
    height, width = components.shape
    for row, col in np.asarray(centroids, np.float64).reshape(-1, 2):
        r, c = int(round(row)), int(round(col))
        label = components[r, c] if 0 <= r < height and 0 <= c < width else 0
        if label and not matched[label]:
            matched[label] = True
            true_positives += 1
    detected = int(np.asarray(centroids).reshape(-1, 2).shape[0])
    return detection_summary(true_positives, detected, annotated)


def detection_summary(true_positives, detected, annotated):
    """`detection_scores`' dict from the three counts (e.g. pooled over images)."""
    precision = true_positives / detected if detected else math.nan
    recall = true_positives / annotated if annotated else math.nan
    f1 = 2 * true_positives / (detected + annotated) if detected + annotated else math.nan
    return {"true_positives": int(true_positives), "false_positives": int(detected - true_positives),
            "false_negatives": int(annotated - true_positives), "annotated": int(annotated),
            "detected": int(detected), "precision": precision, "recall": recall, "f1": f1}
