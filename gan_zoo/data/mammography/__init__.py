"""Mammography data: CBIS-DDSM, INbreast and mini-MIAS as `MammogramRecord`s.

Readers return `MammogramRecord`s (one whole mammogram each, with patient,
image label, side, view, masks/lesions); `records` splits them by patient;
`pixels.load_grayscale` reads any of their files as float32 in [0, 1],
keeping the file's bit depth; `arrays.prepare_mammograms` makes whole
images and ROI patches; `streams.diagram_streams` streams both for
DiaGRAM.

- `scan_cbis_ddsm(root)`: the PNG layout (`labels.csv`) or the TCIA
  release (case-description CSVs + DICOM), detected;
- `scan_inbreast(root)`: DICOM + XML ROIs + BI-RADS (3 excluded);
- `scan_mias(root, task=...)`: mini-MIAS, PGM or PNG;
- `scan_mammograms(root, format="auto")`: whichever of the three it is.
"""

import pathlib

from gan_zoo.data.mammography.cbis_ddsm import (  # noqa: F401
    detect_layout,
    official_split_of,
    scan_cbis_ddsm,
    scan_cbis_ddsm_png,
)
from gan_zoo.data.mammography.inbreast import birads_label, scan_inbreast  # noqa: F401
from gan_zoo.data.mammography.mias import scan_mias  # noqa: F401
from gan_zoo.data.mammography.pixels import bit_depth_of, load_grayscale, read_dicom  # noqa: F401
from gan_zoo.data.mammography.records import (  # noqa: F401
    BENIGN,
    MALIGNANT,
    Lesion,
    MammogramRecord,
    image_records,
    kfold_by_patient,
    label_counts,
    official_split,
    patients,
    split_by_patient,
)

FORMATS = ("auto", "cbis_ddsm", "inbreast", "mias")


def detect_format(root) -> str:
    """"cbis_ddsm", "inbreast" or "mias" from a folder's files.

    mini-MIAS: Info.txt, or a labels.csv with a `severity` column; CBIS-DDSM:
    a labels.csv with `patient_id`, or case-description CSVs; INbreast: an
    INbreast.csv / .xls.

    Raises:
        ValueError: naming the folder when it is none of them.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"Dataset folder not found: {root}")
    labels = root / "labels.csv"
    header = labels.read_text(errors="replace").splitlines()[0] if labels.is_file() else ""
    if (root / "Info.txt").is_file() or "severity" in header:
        return "mias"
    if "patient_id" in header or any(root.glob("*case_description*.csv")):
        return "cbis_ddsm"
    if any(p for p in root.rglob("INbreast.*") if p.suffix.lower() in (".csv", ".xls")):
        return "inbreast"
    raise ValueError(
        f"Cannot tell the format of {root}: expected CBIS-DDSM (labels.csv with patient_id, or "
        "*_case_description_*.csv), INbreast (INbreast.csv/.xls) or mini-MIAS (Info.txt, or "
        "labels.csv with severity)."
    )


def scan_mammograms(root, format="auto", *, mias_task="malignant"):
    """The records of a CBIS-DDSM, INbreast or mini-MIAS folder.

    Args:
        root: the folder.
        format: one of `FORMATS`; "auto" uses `detect_format`.
        mias_task: the label task of mini-MIAS (see `scan_mias`).

    Returns:
        `(format, records)`.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if format == "auto":
        format = detect_format(root)
    if format == "cbis_ddsm":
        return format, scan_cbis_ddsm(root)
    if format == "inbreast":
        return format, scan_inbreast(root)
    return format, scan_mias(root, task=mias_task)
