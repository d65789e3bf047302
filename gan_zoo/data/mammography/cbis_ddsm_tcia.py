"""CBIS-DDSM as released by TCIA: case-description CSVs + DICOM files.

The CSVs (`mass_case_description_train_set.csv`, `..._test_set.csv`,
`calc_case_description_*`) have one row per lesion, with the columns
`patient_id`, `breast_density` (or `breast density`),
`left_or_right_breast`, `image_view`, `abnormality_id`,
`abnormality_type`, `assessment`, `pathology`, `image_file_path`,
`cropped_image_file_path` and `ROI_mask_file_path`.

The file columns say `<series folder>/<study UID>/<series UID>/00000N.dcm`,
but the tree the NBIA Data Retriever writes often names the inner folders
and files differently (`1-1.dcm`, dated folder names), and the crop and
mask of a lesion are known to be swapped in some rows. So each path is
resolved as written first, then by its series folder (the first path part,
e.g. `Mass-Training_P_00001_LEFT_CC_1`) searched under `image_root` (and
`image_root/CBIS-DDSM`); inside a lesion's folder the mask is told from
the crop by the DICOM header (SeriesDescription "ROI mask images" /
"cropped images"), else by size (the mask has the full image's size).
"""

from __future__ import annotations

import csv
import logging
import pathlib

from gan_zoo.data.mammography.cbis_ddsm import (
    _case_description_files,
    check_record_files,
    official_split_of,
    pathology_label,
)
from gan_zoo.data.mammography.records import Lesion, MammogramRecord

logger = logging.getLogger(__name__)

ABNORMALITIES = (None, "mass", "calcification")
_REQUIRED = ("patient_id", "left_or_right_breast", "image_view", "pathology",
             "image_file_path", "ROI_mask_file_path")


def scan_cbis_ddsm_tcia(root, *, image_root=None, abnormality=None,
                        check_files=True) -> list[MammogramRecord]:
    """Records of the official release (see the module docstring).

    Args:
        root: folder holding the case-description CSVs.
        image_root: root of the DICOM tree (default: `root`).
        abnormality: keep only "mass" or "calcification" CSVs (by file
            name); None keeps every CSV found.
        check_files: resolve every DICOM now and fail (one line) on the
            first that cannot be found; False keeps the CSV paths as written.

    Returns:
        One record per full mammogram, sorted by path, with one `Lesion`
        per CSV row (its mask and crop DICOM, its pathology as label).
    """
    if abnormality not in ABNORMALITIES:
        raise ValueError(f"abnormality must be one of {ABNORMALITIES}, got {abnormality!r}.")
    root = pathlib.Path(root)
    image_root = pathlib.Path(image_root) if image_root is not None else root
    files = _case_description_files(root)
    if abnormality is not None:
        prefix = "mass" if abnormality == "mass" else "calc"
        files = [f for f in files if f.name.lower().startswith(prefix)]
    if not files:
        raise ValueError(f"No {abnormality or ''} case-description CSVs in {root}.")
    resolver = _Resolver(image_root, check_files)
    images = {}
    for csv_path in files:
        for line, row in _rows(csv_path):
            where = f"{csv_path} line {line}: "
            image_key = row["image_file_path"].strip()
            full = resolver.full_image(image_key, where)
            mask, crop = resolver.roi_pair(row["ROI_mask_file_path"].strip(),
                                           (row.get("cropped_image_file_path") or "").strip(),
                                           full, where)
            lesion = Lesion(label=pathology_label(row["pathology"], where=where),
                            mask_path=mask, crop_path=crop,
                            kind=(row.get("abnormality_type") or "").strip() or None)
            entry = images.setdefault(full, {"row": row, "lesions": [], "key": image_key,
                                             "birads": []})
            entry["lesions"].append(lesion)
            entry["birads"].append((row.get("assessment") or "").strip())
    records = []
    for full, entry in images.items():
        row = entry["row"]
        labels = [lesion.label for lesion in entry["lesions"]]
        extra = {
            "density": (row.get("breast_density") or row.get("breast density") or "").strip(),
            "birads": ";".join(entry["birads"]),
            "pathologies": ";".join(str(label) for label in labels),
            "n_masks": str(len(labels)),
        }
        records.append(MammogramRecord(
            path=full,
            patient_id=row["patient_id"].strip(),
            label=max(labels),
            side=row["left_or_right_breast"].strip().upper(),
            view=row["image_view"].strip().upper(),
            lesions=tuple(entry["lesions"]),
            official_split=official_split_of(entry["key"]),
            dataset="cbis_ddsm",
            extra=extra,
        ))
    if check_files:
        check_record_files(records, where=str(root))
    return sorted(records, key=lambda r: r.path)


def _rows(csv_path):
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"{csv_path} lacks the column(s) {missing}; it has {columns}.")
        for line, row in enumerate(reader, start=2):
            yield line, row


class _Resolver:
    """Finds the DICOM files the CSV names in the downloaded tree."""

    def __init__(self, image_root, check):
        self.image_root = image_root
        self.check = check
        self._folders = {}

    def _dicoms_of(self, series_folder):
        if series_folder not in self._folders:
            found = []
            for base in (self.image_root, self.image_root / "CBIS-DDSM"):
                folder = base / series_folder
                if folder.is_dir():
                    found = sorted(str(p) for p in folder.rglob("*.dcm"))
                    break
            self._folders[series_folder] = found
        return self._folders[series_folder]

    def _as_written(self, text):
        path = self.image_root / text
        return str(path) if path.is_file() else None

    def full_image(self, text, where):
        if not self.check:
            return str(self.image_root / text)
        exact = self._as_written(text)
        if exact:
            return exact
        found = self._dicoms_of(_series_folder(text))
        if len(found) != 1:
            raise ValueError(f"{where}cannot find the image {text} under {self.image_root} "
                             f"({len(found)} DICOMs in its series folder).")
        return found[0]

    def roi_pair(self, mask_text, crop_text, full, where):
        """(mask, crop) paths; the crop may be None when absent."""
        if not self.check:
            return str(self.image_root / mask_text), (str(self.image_root / crop_text)
                                                      if crop_text else None)
        candidates = {p for p in (self._as_written(mask_text), self._as_written(crop_text)) if p}
        for text in (mask_text, crop_text):
            if text:
                candidates.update(self._dicoms_of(_series_folder(text)))
        if not candidates:
            raise ValueError(f"{where}cannot find the ROI mask {mask_text} under {self.image_root}.")
        return _tell_mask_from_crop(sorted(candidates), full, where)


def _series_folder(text):
    return pathlib.PurePosixPath(text.replace("\\", "/")).parts[0]


def _tell_mask_from_crop(paths, full, where):
    import pydicom

    if len(paths) == 1:
        return paths[0], None
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in paths}
    masks = [p for p, h in headers.items() if "mask" in str(getattr(h, "SeriesDescription", "")).lower()]
    crops = [p for p, h in headers.items() if "crop" in str(getattr(h, "SeriesDescription", "")).lower()]
    if len(masks) != 1:
        full_header = pydicom.dcmread(full, stop_before_pixels=True)
        size = (full_header.Rows, full_header.Columns)
        masks = [p for p, h in headers.items() if (h.Rows, h.Columns) == size]
        crops = [p for p in paths if p not in masks]
    if len(masks) != 1:
        raise ValueError(f"{where}cannot tell the ROI mask from the crop among {paths}.")
    return masks[0], (crops[0] if crops else None)
