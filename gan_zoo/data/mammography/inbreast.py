"""INbreast (Moreira et al. 2012): full-field digital mammograms as DICOM.

The release holds `AllDICOMs/<file name>_<patient>_MG_<L|R>_<CC|ML>_ANON.dcm`,
`AllXML/<file name>.xml` (the ROIs, Apple property lists: `Images` ->
`ROIs` -> `Point_px` strings "(x, y)", `Name` "Mass", "Calcification",
...) and `INbreast.csv` / `INbreast.xls` (`;`-separated: Patient ID,
Patient age, Laterality, View, Acquisition date, File Name, ACR, Bi-Rads).
Folders are searched recursively, so any unpacking works.

Labels follow DiaGRAM (Shams et al. 2018): BI-RADS 4 (a/b/c), 5 and 6 are
cancer (1), 1 and 2 are negative (0), and BI-RADS 3 images are EXCLUDED
(their status is unclear; the paper drops 23 of them).

Patients: the CSV's Patient ID column is anonymised ("removed"), so the
patient is the second part of the DICOM file name (a hash shared by all
images of one woman); splits use it. Images are 14-bit DICOM: read them
with `gan_zoo.data.mammography.pixels.load_grayscale`, which keeps the
dynamic range.

Cite: Moreira et al., "INbreast: toward a full-field digital mammographic
database", Academic Radiology 19(2), 2012. Access is by request to the
authors; the data are not redistributable.
"""

from __future__ import annotations

import csv
import pathlib
import plistlib
import re

from gan_zoo.data.mammography.records import Lesion, MammogramRecord

NEGATIVE, CANCER = 0, 1
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)")


def birads_label(value, *, where="") -> int | None:
    """1 for BI-RADS 4-6, 0 for 1-2, None for 3 (excluded)."""
    text = str(value).strip().lower()
    match = re.match(r"^(\d)", text)
    if match is None or int(match.group(1)) not in range(1, 7):
        raise ValueError(f"{where}unknown BI-RADS value {value!r} (expected 1-6, e.g. 4a).")
    category = int(match.group(1))
    if category == 3:
        return None
    return CANCER if category >= 4 else NEGATIVE


def read_roi_plist(path) -> list[Lesion]:
    """The ROIs of one INbreast XML file as polygon `Lesion`s (pixel x, y)."""
    try:
        with open(path, "rb") as handle:
            data = plistlib.load(handle)
    except Exception as error:  # noqa: BLE001 - any parse failure, one line
        raise ValueError(f"Cannot read the ROI file {path}: {type(error).__name__}: {error}") from None
    lesions = []
    for image in data.get("Images", []) if isinstance(data, dict) else []:
        for roi in image.get("ROIs", []):
            points = []
            for text in roi.get("Point_px", []):
                match = _POINT.match(str(text))
                if match is None:
                    raise ValueError(f"{path}: ROI point {text!r} is not '(x, y)'.")
                points.append((float(match.group(1)), float(match.group(2))))
            if points:
                lesions.append(Lesion(polygon=tuple(points), kind=str(roi.get("Name", "")) or None))
    return lesions


def _table_rows(root):
    """Rows of INbreast.csv (or .xls through xlrd when installed)."""
    tables = sorted(p for p in root.rglob("*.csv") if "inbreast" in p.name.lower())
    if tables:
        text = tables[0].read_text(errors="replace")
        delimiter = ";" if text.count(";") > text.count(",") else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
        return tables[0], [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                           for row in reader]
    sheets = sorted(root.rglob("*.xls"))
    if not sheets:
        raise ValueError(f"{root} holds no INbreast.csv or INbreast.xls with the BI-RADS labels.")
    try:
        import xlrd
    except ImportError:
        raise ValueError(
            f"{sheets[0]} is an Excel file and xlrd is not installed: save it as INbreast.csv "
            "(';'-separated) beside it, or pip install xlrd."
        ) from None
    sheet = xlrd.open_workbook(str(sheets[0])).sheet_by_index(0)
    header = [str(v).strip().lower() for v in sheet.row_values(0)]
    rows = []
    for r in range(1, sheet.nrows):
        values = sheet.row_values(r)
        rows.append({h: (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)).strip()
                     for h, v in zip(header, values)})
    return sheets[0], rows


def scan_inbreast(root, *, keep_birads3=False) -> list[MammogramRecord]:
    """Every labelled INbreast image with its ROIs (see the module docstring).

    Args:
        root: the release folder.
        keep_birads3: keep BI-RADS 3 images with label None (for inspection;
            DiaGRAM excludes them).

    Returns:
        Records sorted by path; `extra` holds birads, acr, file_name.

    Raises:
        ValueError: no labels table, a row with an unknown BI-RADS value,
            or a listed image without its DICOM file.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"INbreast folder not found: {root}")
    table, rows = _table_rows(root)
    dicoms = {p.name.split("_")[0]: p for p in root.rglob("*.dcm")}
    xmls = {p.stem: p for p in root.rglob("*.xml")}
    records = []
    for line, row in enumerate(rows, start=2):
        where = f"{table} row {line}: "
        name = row.get("file name", "").split(".")[0]
        if not name or "bi-rads" not in row:
            raise ValueError(f"{where}needs 'File Name' and 'Bi-Rads' columns; it has {sorted(row)}.")
        label = birads_label(row["bi-rads"], where=where)
        if label is None and not keep_birads3:
            continue
        if name not in dicoms:
            raise ValueError(f"{where}no DICOM file named {name}_*.dcm under {root}.")
        dicom = dicoms[name]
        parts = dicom.stem.split("_")
        patient = parts[1] if len(parts) > 2 else row.get("patient id", "")
        if not patient or patient.lower() == "removed":
            raise ValueError(f"{where}cannot tell the patient of {dicom.name}.")
        lesions = tuple(read_roi_plist(xmls[name])) if name in xmls else ()
        view = row.get("view", "").upper() or (parts[4].upper() if len(parts) > 4 else None)
        side = {"L": "LEFT", "R": "RIGHT"}.get(row.get("laterality", "").upper()[:1])
        records.append(MammogramRecord(
            path=str(dicom), patient_id=patient, label=label, side=side, view=view or None,
            lesions=lesions, dataset="inbreast",
            extra={"birads": row["bi-rads"], "acr": row.get("acr", ""), "file_name": name},
        ))
    if not records:
        raise ValueError(f"{table} lists no usable INbreast image.")
    return sorted(records, key=lambda r: r.path)
