"""mini-MIAS (Suckling et al. 1994): 1024 x 1024 mammograms, circles as ROIs.

Two layouts are read:

- the original release: `Info.txt` (lines `mdb001 G CIRC B 535 425 197`:
  reference, tissue, abnormality, severity, x, y, radius) beside
  `mdbNNN.pgm` files (in the folder or in `images/`);
- the PNG copy with `labels.csv` (columns image, patient, tissue,
  abnormality, severity, x, y, radius, image_label), as in
  `../shared/data/mini_mias`.

Coordinates: MIAS gives x, y with the ORIGIN AT THE BOTTOM-LEFT corner;
lesions here hold `centre = (x, height - 1 - y)` in the usual top-left
pixel frame (height = the image's, 1024 for mini-MIAS). An image may have
several abnormalities (one row each); a few have none given ("*NOTE 3*":
the ROI covers the whole breast), and they get no lesion.

Patients: images come in left/right pairs (mdb001 and mdb002 are patient
1), so the patient of mdbN is (N + 1) // 2 when the index has no column.

Label tasks (`task`), all image-level:
- "malignant" (default): 1 when any abnormality is malignant, else 0
  (normal and benign together, as INbreast's BI-RADS 1-2 "negative");
- "abnormal": 1 for any abnormality, 0 for normal;
- "benign_malignant": abnormal images only, 1 malignant, 0 benign.

Licence: research use only (see Licence.txt); cite Suckling et al. (1994),
"The Mammographic Image Analysis Society Digital Mammogram Database",
Excerpta Medica International Congress Series 1069, pp. 375-378.
"""

from __future__ import annotations

import collections
import csv
import pathlib
import re

from gan_zoo.data.mammography.records import Lesion, MammogramRecord

TASKS = ("malignant", "abnormal", "benign_malignant")
MIAS_SIZE = 1024
_REFERENCE = re.compile(r"^mdb(\d{3})$")
_SEVERITY = {"M": 1, "B": 0}


def mias_patient(reference) -> str:
    """The patient of an image reference ("mdb001" and "mdb002" -> "1")."""
    match = _REFERENCE.match(str(reference))
    if match is None:
        raise ValueError(f"Not a MIAS image reference: {reference!r} (expected mdbNNN).")
    return str((int(match.group(1)) + 1) // 2)


def flip_y(y, height=MIAS_SIZE) -> float:
    """MIAS's bottom-left y as a top-left row."""
    return float(height - 1 - float(y))


def _label(rows, task):
    severities = [r["severity"] for r in rows if r["abnormality"] != "NORM"]
    if task == "malignant":
        return int("M" in severities)
    if task == "abnormal":
        return int(bool(severities))
    if not severities:
        return None  # benign_malignant: normal images are left out
    return int("M" in severities)


def scan_mias(root, *, task="malignant", height=MIAS_SIZE) -> list[MammogramRecord]:
    """All images of a mini-MIAS folder (see the module docstring).

    Args:
        root: the folder (`labels.csv`, or `Info.txt` and PGM files).
        task: the image label, one of `TASKS`.
        height: image height the y coordinates refer to (1024).

    Returns:
        Records sorted by reference, one per image file present.

    Raises:
        ValueError: naming the folder, file or line that is wrong.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    root = pathlib.Path(root)
    if (root / "labels.csv").is_file():
        rows = _csv_rows(root / "labels.csv", root)
    elif (root / "Info.txt").is_file():
        rows = _info_rows(root / "Info.txt", root)
    else:
        raise ValueError(f"{root} is not a mini-MIAS folder: it has neither labels.csv nor Info.txt.")
    by_image = collections.defaultdict(list)
    for row in rows:
        by_image[row["path"]].append(row)
    records = []
    for path, image_rows in sorted(by_image.items()):
        label = _label(image_rows, task)
        if label is None:
            continue
        lesions = tuple(
            Lesion(label=_SEVERITY.get(r["severity"]), centre=(float(r["x"]), flip_y(r["y"], height)),
                   radius=float(r["radius"]), kind=r["abnormality"])
            for r in image_rows
            if r["abnormality"] != "NORM" and r["x"] not in ("", None) and r["radius"] not in ("", None)
        )
        first = image_rows[0]
        records.append(MammogramRecord(
            path=path, patient_id=first["patient"], label=label, lesions=lesions,
            side=None, view="MLO", dataset="mias",
            extra={"tissue": first["tissue"],
                   "abnormalities": ";".join(r["abnormality"] for r in image_rows),
                   "severities": ";".join(r["severity"] or "-" for r in image_rows)},
        ))
    if not records:
        raise ValueError(f"No mini-MIAS images found in {root}.")
    return records


def _csv_rows(index, root):
    with open(index, newline="") as handle:
        reader = csv.DictReader(handle)
        needed = ("image", "abnormality", "severity", "x", "y", "radius")
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{index} lacks the column(s) {missing}.")
        rows = []
        for line, row in enumerate(reader, start=2):
            path = root / row["image"].strip()
            if not path.is_file():
                raise ValueError(f"{index} line {line}: image {path} not found.")
            reference = path.stem
            rows.append({
                "path": str(path),
                "patient": (row.get("patient") or "").strip() or mias_patient(reference),
                "tissue": (row.get("tissue") or "").strip(),
                "abnormality": row["abnormality"].strip().upper(),
                "severity": row["severity"].strip().upper(),
                "x": row["x"].strip(), "y": row["y"].strip(), "radius": row["radius"].strip(),
            })
    return rows


def _info_rows(index, root):
    """Rows of the original Info.txt; only references whose file exists."""
    rows = []
    for line_number, line in enumerate(index.read_text(errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts or not _REFERENCE.match(parts[0]):
            continue
        if len(parts) < 3:
            raise ValueError(f"{index} line {line_number}: expected reference, tissue, class: {line!r}")
        path = next((p for p in (root / f"{parts[0]}.pgm", root / "images" / f"{parts[0]}.pgm",
                                 root / f"{parts[0]}.png", root / "images" / f"{parts[0]}.png")
                     if p.is_file()), None)
        if path is None:
            continue
        numbers = [p for p in parts[4:7] if re.fullmatch(r"-?\d+(\.\d+)?", p)]
        x, y, radius = (numbers + ["", "", ""])[:3] if len(numbers) == 3 else ("", "", "")
        rows.append({
            "path": str(path), "patient": mias_patient(parts[0]), "tissue": parts[1],
            "abnormality": parts[2].upper(),
            "severity": parts[3].upper() if len(parts) > 3 and parts[3].upper() in _SEVERITY else "",
            "x": x, "y": y, "radius": radius,
        })
    if not rows:
        raise ValueError(f"{index} lists no image whose file (mdbNNN.pgm/.png) is in {root}.")
    return rows
