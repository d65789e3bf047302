"""Procedural demo datasets: small, deterministic, generated in seconds.

They let the README's commands and the tests run without downloading
anything. They imitate the real datasets' on-disk layouts, not their biology:
a model that does well here has learned nothing about cancer.

- `make_demo_histology`: H&E-like RGB patches in the Kaggle IDC layout.
- `make_demo_mammograms`: grayscale mammogram-like images with lesion masks,
  in a CBIS-DDSM-like folder with `labels.csv`.
- `demo_dir(kind)`: generates one of them on first use, in a cache folder.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np
from PIL import Image

DEMO_VERSION = 1
_MARKER = ".gan_zoo_demo.json"
_DEFAULT_BASE = "~/.cache/gan_zoo/demo"

# RGB colours (0-255) of the stains and tissue, before the per-patient tint.
_EOSIN_STROMA = np.array([232.0, 152.0, 196.0])
_HAEMATOXYLIN = np.array([78.0, 42.0, 128.0])
_FAT = np.array([246.0, 240.0, 246.0])


# ---------------------------------------------------------------- histology


def make_demo_histology(root, *, patients=12, patches_per_patient=40, size=50, seed=0):
    """Writes H&E-like patches in the Kaggle IDC layout.

    Files are `<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png`
    with numeric patient ids from "90001" (no clash with real IDC ids) and
    X, Y multiples of `size` (50 by default, as in the real data).

    Class 1 (IDC-like) patches have many large, dark haematoxylin nuclei and
    little pink stroma; class 0 patches have sparse small nuclei on pink
    stroma with white fat. The classes overlap (a per-patch "tumour
    fraction", lymphocyte clusters in some class-0 patches), and each patient
    gets its own stain tint and brightness, so patient-level splits matter.
    About 30% of patches are positive, varying by patient; positives cluster
    around a tumour centre. A few patches per patient are edge crops narrower
    or shorter than `size`, as in the real data.

    Args:
        root: output folder (created).
        patients: number of patients.
        patches_per_patient: patches per patient.
        size: side of a full patch in pixels.
        seed: everything written is a function of the arguments.

    Returns:
        `root` as a `pathlib.Path`.
    """
    root = pathlib.Path(root)
    for index in range(patients):
        # One random stream per patient, so a patient's patches do not
        # depend on how many patients come before it.
        rng = np.random.default_rng([seed, index])
        patient = str(90001 + index)
        stain = _patient_stain(rng)
        for (x, y), label, crop in _patient_layout(rng, patches_per_patient, size):
            tile = _histology_tile(rng, label, stain, size)
            tile = tile[: crop[0], : crop[1]]
            folder = root / patient / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{patient}_idx5_x{x}_y{y}_class{label}.png"
            Image.fromarray(tile).save(folder / name, compress_level=1)
    return root


def _patient_stain(rng):
    """Per-patient stain: RGB gains and a brightness offset."""
    return rng.normal(1.0, 0.06, size=3), rng.normal(0.0, 10.0)


def _patient_layout(rng, count, size):
    """Grid positions, labels and crop shapes of one patient's patches."""
    # Beta(1.5, 3.5) has mean 0.3: about 30% positives, varying by patient.
    positives = int(round(rng.beta(1.5, 3.5) * count))
    edge_count = max(1, count // 20) if count >= 4 else 0
    side = int(np.ceil(np.sqrt(count * 3))) + 2
    interior = rng.choice((side - 1) ** 2, size=count - edge_count, replace=False)
    cells = [(int(c % (side - 1)), int(c // (side - 1))) for c in interior]
    # Edge crops sit in the last column or row, where the slide ends.
    edge_rows = rng.choice(side - 1, size=edge_count, replace=False)
    for i, row in enumerate(edge_rows):
        cells.append((side - 1, int(row)) if i % 2 == 0 else (int(row), side - 1))
    centre = rng.uniform(0, side, size=2)
    distances = [np.hypot(cx - centre[0], cy - centre[1]) for cx, cy in cells]
    positive_cells = set(np.argsort(distances)[:positives].tolist())
    layout = []
    for i, (cx, cy) in enumerate(cells):
        crop = [size, size]
        if cx == side - 1:
            crop[1] = int(rng.integers(size // 3, size))
        if cy == side - 1:
            crop[0] = int(rng.integers(size // 3, size))
        label = 1 if i in positive_cells else 0
        layout.append(((cx * size, cy * size), label, tuple(crop)))
    return layout


def _histology_tile(rng, label, stain, size):
    """One RGB uint8 patch; `label` sets the odds of the tissue drawn."""
    gains, offset = stain
    # "Tumour fraction": overlapping distributions make the task non-trivial.
    tumour = rng.beta(5.0, 2.0) if label == 1 else rng.beta(1.5, 6.0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    fibres = _smooth_noise(rng, (size, size), cells=5) * 28.0
    stroma = _EOSIN_STROMA + fibres[..., None] * np.array([0.6, 1.0, 0.7])
    fat_alpha = np.zeros((size, size), np.float32)
    for _ in range(rng.poisson(2.5 * (1.0 - tumour) ** 2)):
        cy, cx, radius = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, 14)
        fat_alpha = np.maximum(fat_alpha, _soft_disc(yy, xx, cy, cx, radius, radius, 0.0, 1.5))
    image = stroma * (1 - fat_alpha[..., None]) + _FAT * fat_alpha[..., None]

    count, radius = rng.poisson(3 + 30 * tumour), 1.5 + 2.6 * tumour
    nuclei = _nuclei(rng, yy, xx, count=count, mean_radius=radius)
    if label == 0 and rng.random() < 0.12:
        # A lymphocyte cluster: many small dark nuclei, a common look-alike.
        cluster = _nuclei(rng, yy, xx, count=rng.integers(10, 25), mean_radius=1.4, spread=8.0)
        nuclei = np.maximum(nuclei, cluster)
    darkness = 1.0 - 0.35 * tumour + rng.normal(0, 0.05)
    chromatin = 1.0 + 0.15 * _smooth_noise(rng, (size, size), cells=12)[..., None]
    nuclei = nuclei[..., None]
    image = image * (1 - nuclei) + _HAEMATOXYLIN * darkness * chromatin * nuclei

    image = _blur(image) * gains + offset + rng.normal(0, 5.0, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _nuclei(rng, yy, xx, *, count, mean_radius, spread=None):
    """Opacity in [0, 1] of `count` elliptical nuclei."""
    size = yy.shape[0]
    if count == 0:
        return np.zeros_like(yy)
    if spread is None:
        cy, cx = rng.uniform(0, size, count), rng.uniform(0, size, count)
    else:
        centre = rng.uniform(0, size, 2)
        cy, cx = (centre[:, None] + rng.normal(0, spread, (2, count)))
    radius = np.clip(rng.normal(mean_radius, 0.5, count), 0.8, 6.5)
    ratio = rng.uniform(0.6, 1.0, count)
    angle = rng.uniform(0, np.pi, count)
    # float32 halves the time of this, the generator's hot spot.
    cy, cx, radius, ratio, angle = (a.astype(np.float32) for a in (cy, cx, radius, ratio, angle))
    discs = _soft_disc(
        yy[None], xx[None], cy[:, None, None], cx[:, None, None],
        radius[:, None, None], (radius * ratio)[:, None, None], angle[:, None, None], 0.8,
    )
    return discs.max(axis=0)


def _soft_disc(yy, xx, cy, cx, radius_a, radius_b, angle, softness):
    """A rotated ellipse with a soft edge, as opacity in [0, 1]."""
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    distance = np.sqrt((u / radius_a) ** 2 + (v / radius_b) ** 2)
    return np.clip((1.0 - distance) * radius_a / softness + 0.5, 0.0, 1.0)


def _smooth_noise(rng, shape, cells):
    """Smooth random field in about [-1, 1]: a coarse grid upsampled bicubically."""
    coarse = rng.uniform(-1, 1, size=(cells + 1, cells + 1)).astype(np.float32)
    field = Image.fromarray(coarse, mode="F").resize((shape[1], shape[0]), Image.BICUBIC)
    return np.asarray(field)


def _blur(image):
    """3x3 binomial blur (edges replicated): softens the drawn shapes."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 16.0


# ---------------------------------------------------------------- mammography


def make_demo_mammograms(root, *, patients=16, size=256, seed=0):
    """Writes mammogram-like images with lesion masks, CBIS-DDSM style.

    Each patient has one breast (LEFT or RIGHT) in two views (CC and MLO)
    showing the same mass. Files: `images/<name>.png` (8-bit grayscale),
    `masks/<name>_mask.png` (0 or 255) and `labels.csv` with columns image,
    mask, patient_id, side, view, label (paths relative to `root`; label
    MALIGNANT or BENIGN). Malignant masses are irregular and spiculated,
    benign ones round or oval with smooth edges; about half are malignant.

    Args:
        root: output folder (created).
        patients: number of patients (two images each).
        size: side of the square images.
        seed: everything written is a function of the arguments.

    Returns:
        `root` as a `pathlib.Path`.
    """
    root = pathlib.Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(patients):
        rng = np.random.default_rng([seed, index])
        patient = f"P_{90001 + index}"
        side = "LEFT" if rng.random() < 0.5 else "RIGHT"
        malignant = bool(rng.random() < 0.5)
        lesion = _lesion_shape(rng, malignant)
        for view in ("CC", "MLO"):
            name = f"Demo_{patient}_{side}_{view}"
            image, mask = _mammogram(rng, side, view, lesion, size)
            Image.fromarray(image).save(root / "images" / f"{name}.png")
            Image.fromarray(mask).save(root / "masks" / f"{name}_mask.png")
            rows.append(
                {
                    "image": f"images/{name}.png",
                    "mask": f"masks/{name}_mask.png",
                    "patient_id": patient,
                    "side": side,
                    "view": view,
                    "label": "MALIGNANT" if malignant else "BENIGN",
                }
            )
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _lesion_shape(rng, malignant):
    """Shape parameters of one mass, shared by both views of the breast."""
    shape = {
        "radius": rng.uniform(0.035, 0.07),
        "ratio": rng.uniform(0.9, 1.0) if malignant else rng.uniform(0.65, 1.0),
        "angle": rng.uniform(0, np.pi),
        "depth": rng.uniform(0.35, 0.7),  # along the breast, from the chest wall
        "height": rng.uniform(-0.5, 0.5),  # across the breast
        "harmonics": [],
        "spicules": [],
    }
    if malignant:
        shape["harmonics"] = [
            (k, rng.uniform(0.08, 0.2), rng.uniform(0, 2 * np.pi)) for k in range(3, 8)
        ]
        shape["spicules"] = [
            (rng.uniform(0, 2 * np.pi), rng.uniform(1.6, 2.8)) for _ in range(rng.integers(6, 14))
        ]
    return shape


def _mammogram(rng, side, view, lesion, size):
    """One 8-bit grayscale image and its 8-bit mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # Draw a LEFT breast (chest wall at x = 0), then mirror for RIGHT.
    extent = rng.uniform(0.6, 0.82)
    half_height = rng.uniform(0.36, 0.46) * (1.1 if view == "MLO" else 1.0)
    centre_y = 0.5 + (0.06 if view == "MLO" else 0.0) + rng.normal(0, 0.02)
    radial = np.sqrt((xx / extent) ** 2 + ((yy - centre_y) / half_height) ** 2)
    breast = np.clip((1.0 - radial) / 0.04, 0.0, 1.0)

    texture = (
        0.6 * _smooth_noise(rng, (size, size), cells=6)
        + 0.3 * _smooth_noise(rng, (size, size), cells=18)
        + 0.15 * _smooth_noise(rng, (size, size), cells=48)
    )
    density = rng.uniform(0.15, 0.35)
    tissue = 0.32 + 0.22 * (1.0 - radial) + density * np.clip(texture, -1, 1) * (1.0 - radial)
    image = tissue * breast
    if view == "MLO":
        # The pectoral muscle: a bright triangle in the upper chest-wall corner.
        width, length = rng.uniform(0.2, 0.3), rng.uniform(0.45, 0.6)
        muscle = np.clip((width * (1 - yy / length) - xx) / 0.01, 0, 1)
        image = np.maximum(image, (0.78 + 0.05 * texture) * muscle * breast)

    body, spicules = _lesion_masks(yy, xx, lesion, extent, centre_y, half_height)
    image = image + breast * (0.28 * _blur2d(body) + 0.18 * spicules)
    image = image + rng.normal(0, 0.012, image.shape) + 0.02
    if side == "RIGHT":
        image, body = image[:, ::-1], body[:, ::-1]
    pixels = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    mask = np.where(body > 0.5, 255, 0).astype(np.uint8)
    return pixels, mask


def _lesion_masks(yy, xx, lesion, extent, centre_y, half_height):
    """Opacity of the mass body and of its spicules (both in [0, 1])."""
    cx = lesion["depth"] * extent * 0.8
    cy = centre_y + lesion["height"] * half_height * 0.7
    dy, dx = yy - cy, xx - cx
    theta = np.arctan2(dy, dx) - lesion["angle"]
    u = dx * np.cos(lesion["angle"]) + dy * np.sin(lesion["angle"])
    v = -dx * np.sin(lesion["angle"]) + dy * np.cos(lesion["angle"])
    distance = np.sqrt(u**2 + (v / lesion["ratio"]) ** 2)
    boundary = lesion["radius"] * (
        1.0 + sum(a * np.cos(k * theta + phase) for k, a, phase in lesion["harmonics"])
    )
    body = np.clip((boundary - distance) / 0.004 + 0.5, 0.0, 1.0)
    spicules = np.zeros_like(yy)
    for direction, length in lesion["spicules"]:
        # Distance to a thin ray leaving the mass in `direction`.
        along = dx * np.cos(direction) + dy * np.sin(direction)
        across = np.abs(-dx * np.sin(direction) + dy * np.cos(direction))
        inside = (along > 0) & (along < length * lesion["radius"])
        spicules = np.maximum(spicules, np.where(inside, np.clip(1.0 - across / 0.004, 0, 1), 0))
    return body, spicules


def _blur2d(image):
    return _blur(image[..., None])[..., 0]


# ---------------------------------------------------------------- cache folder

_GENERATORS = {"histology": make_demo_histology, "mammography": make_demo_mammograms}


def demo_dir(kind, root=None) -> pathlib.Path:
    """Returns the folder of a demo dataset, generating it on first use.

    The folder is `<base>/<kind>-v1`, where `<base>` is `root`, else
    `$GAN_ZOO_DEMO_DIR`, else `~/.cache/gan_zoo/demo`. Generation (default
    arguments, seed 0) writes into a temporary sibling folder that is renamed
    into place only once complete, so an interrupted run never leaves a
    half-written dataset that a later call would use, and two processes
    racing both end up with one complete copy.

    Args:
        kind: `"histology"` (IDC layout) or `"mammography"` (CBIS-DDSM-like).
        root: base folder; see above.

    Returns:
        The dataset folder.

    Raises:
        FileExistsError: the folder exists but was not written by this
            function (it is never deleted).
    """
    if kind not in _GENERATORS:
        raise ValueError(f"kind must be one of {sorted(_GENERATORS)}, got {kind!r}.")
    base = pathlib.Path(root or os.environ.get("GAN_ZOO_DEMO_DIR") or _DEFAULT_BASE).expanduser()
    target = base / f"{kind}-v{DEMO_VERSION}"
    if (target / _MARKER).is_file():
        return target
    if target.exists():
        raise FileExistsError(
            f"{target} exists but is not a complete gan_zoo demo dataset (no {_MARKER}); "
            "move or delete it to regenerate."
        )
    base.mkdir(parents=True, exist_ok=True)
    partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=base))
    try:
        _GENERATORS[kind](partial)
        marker = {"kind": kind, "version": DEMO_VERSION, "seed": 0}
        (partial / _MARKER).write_text(json.dumps(marker))
        try:
            os.rename(partial, target)
        except OSError:
            # Another process renamed its copy into place first: use that.
            if not (target / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
