"""CBIS-DDSM readers: the preprocessed PNG layout and the official TCIA release.

Two on-disk layouts are read into `MammogramRecord`s:

- **PNG layout** (`layout="png"`; e.g. `../shared/data/cbis_ddsm_mass` and
  the demo mammograms): `labels.csv` with at least the columns `image`,
  `patient_id` and `label` (MALIGNANT / BENIGN / BENIGN_WITHOUT_CALLBACK),
  optionally `mask`, `side`, `view` and any others (kept in
  `record.extra`), paths relative to the folder. One mask per image (the
  union of its lesion masks).
- **TCIA layout** (`layout="tcia"`): the official release as downloaded
  from The Cancer Imaging Archive: the case-description CSVs
  (`mass_case_description_train_set.csv`, `..._test_set.csv`,
  `calc_case_description_*.csv`) beside the DICOM tree the CSVs' file
  columns point into. One CSV row per lesion; rows of one image are merged
  into one record with one `Lesion` per row (mask and crop DICOMs).

Image label (both layouts): 1 (malignant) if any lesion of the image is
malignant, else 0; BENIGN_WITHOUT_CALLBACK counts as benign.
The official split comes from the image name: `Mass-Training_*` /
`Calc-Training_*` are "train", `Mass-Test_*` / `Calc-Test_*` are "test"
(`gan_zoo.data.mammography.records.official_split`).

    >>> records = scan_cbis_ddsm("../shared/data/cbis_ddsm_mass")
    >>> records[0].patient_id, records[0].label, records[0].view
    ('P_00001', 1, 'CC')

Licence of the data: CBIS-DDSM is CC BY 3.0 (TCIA); cite Lee et al. 2017,
"A curated mammography data set for use in computer-aided detection and
diagnosis research", Scientific Data 4:170177.
"""

from __future__ import annotations

import csv
import os
import pathlib
import re

from gan_zoo.data.mammography.records import BENIGN, MALIGNANT, MammogramRecord

LAYOUTS = ("auto", "png", "tcia")
LABELS_FILE = "labels.csv"
PATHOLOGY_LABELS = {"MALIGNANT": MALIGNANT, "BENIGN": BENIGN,
                    "BENIGN_WITHOUT_CALLBACK": BENIGN}
_PNG_REQUIRED = ("image", "patient_id", "label")
_PNG_KNOWN = ("image", "mask", "patient_id", "side", "view", "label")
_SPLIT_PATTERN = re.compile(r"(?:^|[/\\])(?:Mass|Calc)-(Training|Test)_", re.IGNORECASE)


def official_split_of(name) -> str | None:
    """"train" / "test" from a CBIS-DDSM image name or path, else None."""
    match = _SPLIT_PATTERN.search(str(name))
    if match is None:
        return None
    return "train" if match.group(1).lower() == "training" else "test"


def pathology_label(text, *, where="") -> int:
    """1 for MALIGNANT, 0 for BENIGN(_WITHOUT_CALLBACK); ValueError otherwise."""
    key = str(text).strip().upper()
    if key not in PATHOLOGY_LABELS:
        raise ValueError(
            f"{where}unknown pathology {text!r}; expected one of {sorted(PATHOLOGY_LABELS)}."
        )
    return PATHOLOGY_LABELS[key]


def detect_layout(root) -> str:
    """"png" when `root/labels.csv` exists, "tcia" for case-description CSVs.

    Raises:
        ValueError: naming the folder when it is neither.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"CBIS-DDSM folder not found: {root}")
    if (root / LABELS_FILE).is_file():
        return "png"
    if _case_description_files(root):
        return "tcia"
    raise ValueError(
        f"{root} is not a CBIS-DDSM folder: it has neither {LABELS_FILE} (PNG layout) nor "
        "*_case_description_*.csv files (TCIA layout)."
    )


def scan_cbis_ddsm(root, *, layout="auto", check_files=True, **tcia_options) -> list[MammogramRecord]:
    """All images of a CBIS-DDSM folder as `MammogramRecord`s.

    Args:
        root: the folder.
        layout: "png", "tcia" or "auto" (`detect_layout`).
        check_files: fail (one line, naming the first missing file and the
            count) when an image or mask the index names is absent.
        **tcia_options: passed to `scan_cbis_ddsm_tcia` (e.g. `image_root`,
            `abnormality`).

    Returns:
        Records sorted by image path.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "png":
        if tcia_options:
            raise ValueError(f"Options {sorted(tcia_options)} apply only to layout='tcia'.")
        return scan_cbis_ddsm_png(root, check_files=check_files)
    from gan_zoo.data.mammography.cbis_ddsm_tcia import scan_cbis_ddsm_tcia

    return scan_cbis_ddsm_tcia(root, check_files=check_files, **tcia_options)


def scan_cbis_ddsm_png(root, *, check_files=True) -> list[MammogramRecord]:
    """The preprocessed PNG layout (see the module docstring).

    Raises:
        ValueError: labels.csv is missing or lacks a required column, a row
            has an unknown label or an empty patient, or (with
            `check_files`) files are missing; each names the file and row.
    """
    root = pathlib.Path(root)
    index = root / LABELS_FILE
    if not index.is_file():
        raise ValueError(f"{index} not found: the PNG layout needs a {LABELS_FILE}.")
    with open(index, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in _PNG_REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"{index} lacks the column(s) {missing}; it has {columns}.")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{index} lists no images.")
    records = []
    for line, row in enumerate(rows, start=2):
        where = f"{index} line {line}: "
        patient = (row.get("patient_id") or "").strip()
        if not patient:
            raise ValueError(f"{where}empty patient_id.")
        image = (row.get("image") or "").strip()
        if not image:
            raise ValueError(f"{where}empty image path.")
        mask = (row.get("mask") or "").strip() or None
        records.append(
            MammogramRecord(
                path=str(root / image),
                patient_id=patient,
                label=pathology_label(row["label"], where=where),
                side=(row.get("side") or "").strip().upper() or None,
                view=(row.get("view") or "").strip().upper() or None,
                mask_path=str(root / mask) if mask else None,
                official_split=official_split_of(image),
                dataset="cbis_ddsm",
                extra={k: v for k, v in row.items() if k not in _PNG_KNOWN and k is not None},
            )
        )
    if check_files:
        check_record_files(records, where=str(index))
    return sorted(records, key=lambda r: r.path)


def check_record_files(records, *, where):
    """Raises one ValueError naming the first missing image/mask and the count."""
    wanted = [r.path for r in records] + [r.mask_path for r in records if r.mask_path]
    for record in records:
        for lesion in record.lesions:
            wanted.extend(p for p in (lesion.mask_path, lesion.crop_path) if p)
    absent = [p for p in wanted if not os.path.isfile(p)]
    if absent:
        raise ValueError(f"{len(absent)} files listed in {where} are missing, e.g. {absent[0]}.")


def _case_description_files(root):
    return sorted(pathlib.Path(root).glob("*case_description*.csv"))
