"""Nucleus-detection accuracy of `gan_zoo.metrics.cell_counts` on the BreCaHAD tiles.

The 24 BreCaHAD H&E tiles of `../shared/data/he_tiles/brecahad` (1360x1024,
Aksac et al. 2019) come with binary nucleus masks (JPEG: thresholded at 127;
each 8-connected component is one annotated nucleus, a disc drawn around its
centre, touching discs merging into one component). A detected centroid
inside an annotated component that no other centroid matched is a true
positive (`cell_counts.detection_scores`); precision, recall and F1 are
pooled over the tiles.

The annotations are SPARSE: they circle a subset of the visible nuclei (about
one in four on the tiles looked at), so unannotated true nuclei count as false
positives and precision is a lower bound; recall is the informative number.
The cancer / other split of the detector has no labels here and is not
measured.

Scales (the detector works at the tiles' scale, `scale` 1):
- `tile`: whole 1360x1024 tiles;
- `crop224`: the non-overlapping 224x224 crops of each tile (the recipe's
  tiles: nuclei cut by the border are detected in part), components counted
  within each crop;
- `down2`, `down4`: the tiles downsampled 2x and 4x (antialiased), as a
  generator trained at 112 or 56 pixels sees 224 tiles, detected with
  `scale=0.5` / `0.25` (upsampled back to the tiles' scale).

    python benchmarks/cell_detector_accuracy.py \\
        --json docs/results/runs/cell_detector_brecahad.json
"""

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time

import cv2

from gan_zoo.metrics import cell_counts

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "he_tiles" / "brecahad"
SCALES = ("tile", "crop224", "down2", "down4")
CROP = 224


def read_pairs(folder):
    """(name, RGB uint8 image, bool mask) of every image with a mask."""
    for path in sorted((folder / "images").glob("*.jpg")):
        mask_path = folder / "masks" / path.name
        if not mask_path.is_file():
            continue
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
        yield path.stem, image, mask


def views(image, mask, scale_name):
    """(image to detect on, its scale, mask in the detections' coordinates) of one scale."""
    if scale_name == "tile":
        yield image, 1.0, mask
    elif scale_name == "crop224":
        for top in range(0, image.shape[0] - CROP + 1, CROP):
            for left in range(0, image.shape[1] - CROP + 1, CROP):
                yield image[top:top + CROP, left:left + CROP], 1.0, mask[top:top + CROP, left:left + CROP]
    else:
        factor = int(scale_name[len("down"):])
        small = cv2.resize(image, (image.shape[1] // factor, image.shape[0] // factor), interpolation=cv2.INTER_AREA)
        yield small, 1.0 / factor, mask[: small.shape[0] * factor, : small.shape[1] * factor]


def measure(pairs, scales, config):
    totals = {s: {"true_positives": 0, "detected": 0, "annotated": 0, "images": 0, "seconds": 0.0} for s in scales}
    per_tile = {s: {} for s in scales}
    for name, image, mask in pairs:
        for scale_name in scales:
            started = time.perf_counter()
            tile = {"true_positives": 0, "detected": 0, "annotated": 0}
            for view, scale, view_mask in views(image, mask, scale_name):
                nuclei = cell_counts.detect_nuclei(view, config, scale=scale)
                # Centroids come back in the view's pixels: bring them to the mask's.
                scores = cell_counts.detection_scores(nuclei.centroids / scale, view_mask)
                for key in tile:
                    tile[key] += scores[key]
                totals[scale_name]["images"] += 1
            totals[scale_name]["seconds"] += time.perf_counter() - started
            for key in tile:
                totals[scale_name][key] += tile[key]
            per_tile[scale_name][name] = cell_counts.detection_summary(**tile)
    results = {}
    for scale_name, total in totals.items():
        pooled = cell_counts.detection_summary(total["true_positives"], total["detected"], total["annotated"])
        results[scale_name] = {**pooled, "images": total["images"],
                               "seconds_per_image": total["seconds"] / max(total["images"], 1),
                               "per_tile": per_tile[scale_name]}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA,
                        help="BreCaHAD folder with images/ and masks/")
    parser.add_argument("--scales", default=",".join(SCALES), help=f"comma-separated subset of {SCALES}")
    parser.add_argument("--limit", type=int, help="first N tiles only")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = parser.parse_args(argv)
    scales = args.scales.split(",")
    if unknown := set(scales) - set(SCALES):
        parser.error(f"--scales: unknown {sorted(unknown)}; choose from {SCALES}.")
    if not (args.data / "images").is_dir():
        parser.error(f"--data {args.data}: no images/ folder.")
    pairs = list(read_pairs(args.data))[: args.limit]
    if not pairs:
        parser.error(f"--data {args.data}: no image with a mask.")
    config = cell_counts.CellDetectorConfig()
    results = measure(pairs, scales, config)
    print(f"{len(pairs)} BreCaHAD tiles, detector {config.to_dict()}")
    print(f"{'scale':8} {'images':>6} {'annotated':>9} {'detected':>8} {'precision':>9} {'recall':>6} {'F1':>6}"
          f" {'s/image':>7}")
    for name, r in results.items():
        print(f"{name:8} {r['images']:6d} {r['annotated']:9d} {r['detected']:8d} {r['precision']:9.3f}"
              f" {r['recall']:6.3f} {r['f1']:6.3f} {r['seconds_per_image']:7.3f}")
    document = {
        "benchmark": "benchmarks/cell_detector_accuracy.py",
        "data": str(args.data), "tiles": [name for name, _, _ in pairs],
        "matching": "a detected centroid inside an annotated mask component (8-connected, mask > 127) that no "
                    "other centroid matched is a true positive; pooled over tiles",
        "caveat": "the masks annotate a subset of the nuclei: unannotated nuclei count as false positives, so "
                  "precision is a lower bound; recall is the informative number. The cancer / other split has "
                  "no labels and is not measured.",
        "detector": config.to_dict(), "results": results,
        "machine": platform.platform(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        print(f"Wrote {args.json}")
    return document


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
