"""Mammogram records and patient-level splits of them.

A `MammogramRecord` is one whole mammogram (one breast, one view) with its
image-level label, its patient and its lesions. Every reader in this package
(CBIS-DDSM, INbreast, mini-MIAS) returns a list of them, so splitting,
ROI-patch extraction and whole-image loading work the same on all three.

Splits are always by patient (`patient_id`): both views and both breasts of
a patient land in the same split. The helpers here wrap
`gan_zoo.data.splits` (which works on groups) and hand back records.

    >>> records = scan_cbis_ddsm("data/cbis_ddsm_mass")
    >>> for train, test in kfold_by_patient(records, k=5, seed=0): ...
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Sequence

from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.splits import assert_disjoint, kfold_by_group, split_by_group

logger = logging.getLogger(__name__)

BENIGN, MALIGNANT = 0, 1
CLASS_NAMES = ("benign", "malignant")
"""`record.label` indexes into these for CBIS-DDSM; other datasets say what
their 0 and 1 mean (e.g. INbreast: negative / cancer)."""


@dataclasses.dataclass(frozen=True)
class Lesion:
    """One annotated abnormality on a mammogram.

    Exactly one way of locating it is set: `mask_path` (a binary mask file
    of the whole image, CBIS-DDSM), `polygon` (pixel (x, y) vertices,
    INbreast) or `centre` + `radius` (pixels, row/column origin top-left,
    mini-MIAS after flipping its bottom-left y).

    Args:
        label: integer class of the lesion (1 malignant, 0 benign), or None.
        mask_path: path of the lesion's mask image.
        polygon: tuple of (x, y) pixel coordinates of the outline.
        centre: (x, y) pixel centre, origin top-left.
        radius: circle radius in pixels.
        kind: free text, e.g. "mass", "CIRC", "Calcification".
        crop_path: the release's own ROI crop, when it has one (CBIS-DDSM).
    """

    label: int | None = None
    mask_path: str | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    centre: tuple[float, float] | None = None
    radius: float | None = None
    kind: str | None = None
    crop_path: str | None = None


@dataclasses.dataclass(frozen=True)
class MammogramRecord:
    """One whole mammogram and what is known about it.

    Args:
        path: the image file (PNG, PGM or DICOM).
        patient_id: the patient, as text; splits are by this.
        label: image label as int (CBIS-DDSM: 1 malignant if any lesion is,
            else 0), or None when unknown.
        side: "LEFT" or "RIGHT" (None when unknown).
        view: "CC", "MLO", ... (None when unknown).
        mask_path: one mask file for the whole image (the union of its
            lesion masks), when the layout has one.
        lesions: the image's lesions (may be empty: a normal image).
        official_split: "train" or "test" from the release's own split
            (CBIS-DDSM: `Mass-Training_*` / `Mass-Test_*` names), else None.
        dataset: "cbis_ddsm", "inbreast", "mias" or "demo".
        extra: every other column the release gives (strings), e.g.
            pathologies, birads, density, n_masks for the PNG layout.
    """

    path: str
    patient_id: str
    label: int | None = None
    side: str | None = None
    view: str | None = None
    mask_path: str | None = None
    lesions: tuple[Lesion, ...] = ()
    official_split: str | None = None
    dataset: str | None = None
    extra: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)

    @property
    def group(self) -> str:
        """The patient, under the name `gan_zoo.data.splits.select` uses."""
        return self.patient_id

    def to_image_record(self) -> ImageRecord:
        """This image as a `gan_zoo.data.image_folder.ImageRecord`.

        For the generic pipeline (`gan_zoo.data.streams`), which decodes
        PNG/JPEG files; DICOM and PGM files need `load_grayscale` instead.
        """
        return ImageRecord(self.path, self.label, group=self.patient_id,
                           mask_path=self.mask_path)


def image_records(records: Sequence[MammogramRecord]) -> list[ImageRecord]:
    """`to_image_record` of each record, in order."""
    return [r.to_image_record() for r in records]


def patients(records: Sequence[MammogramRecord]) -> list[str]:
    """The distinct patient ids, in first-seen order."""
    return list(dict.fromkeys(r.patient_id for r in records))


def _labels_for_strata(records, stratify):
    if not stratify:
        return None
    return [-1 if r.label is None else r.label for r in records]


def _select(records, wanted):
    wanted = set(wanted)
    return [r for r in records if r.patient_id in wanted]


def split_by_patient(records: Sequence[MammogramRecord], fractions=None, seed=0,
                     *, stratify=True) -> dict[str, list[MammogramRecord]]:
    """Randomly assigns whole patients to named splits.

    Args:
        records: the records to split.
        fractions: `{name: fraction of patients}` summing to 1; default
            70 / 15 / 15 % train / validation / test.
        seed: the assignment depends only on the seed and the patients.
        stratify: spread each patient label pattern ({0}, {1}, {0, 1})
            evenly over the splits.

    Returns:
        `{name: records of that split's patients}`, input order kept.
    """
    groups = [r.patient_id for r in records]
    splits = split_by_group(groups, fractions, seed,
                            labels=_labels_for_strata(records, stratify))
    return {name: _select(records, members) for name, members in splits.items()}


def kfold_by_patient(records: Sequence[MammogramRecord], k=5, seed=0, *,
                     stratify=True) -> list[tuple[list[MammogramRecord], list[MammogramRecord]]]:
    """K folds by patient: each patient is in exactly one fold's test part.

    Args:
        records: the records to split.
        k: number of folds, 2 <= k <= number of patients.
        seed: random seed (independent of the input order).
        stratify: spread each patient label pattern evenly over the folds.

    Returns:
        A list of `k` pairs `(train_records, test_records)`.
    """
    groups = [r.patient_id for r in records]
    folds = kfold_by_group(groups, k, seed, labels=_labels_for_strata(records, stratify))
    return [(_select(records, train), _select(records, test)) for train, test in folds]


def official_split(records: Sequence[MammogramRecord], *,
                   drop_overlap=False) -> dict[str, list[MammogramRecord]]:
    """The release's own train/test split (CBIS-DDSM: by image name).

    CBIS-DDSM's split is by image, not by patient, and a few patients have
    images on both sides. They are logged; with `drop_overlap=True` their
    test images are dropped, so the test patients are unseen in training.

    Args:
        records: records whose `official_split` is "train" or "test".
        drop_overlap: drop test images of patients also in training.

    Returns:
        `{"train": [...], "test": [...]}` in input order.

    Raises:
        ValueError: a record has no official split, or a side is empty.
    """
    missing = [r.path for r in records if r.official_split not in ("train", "test")]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no official split (e.g. {missing[0]}); the "
            "official split needs CBIS-DDSM names Mass-Training_*/Mass-Test_* "
            "(or Calc-*): use k-fold or a random patient split instead."
        )
    out = {name: [r for r in records if r.official_split == name] for name in ("train", "test")}
    for name, part in out.items():
        if not part:
            raise ValueError(f"The official split has no {name} images in this folder.")
    overlap = set(patients(out["train"])) & set(patients(out["test"]))
    if overlap:
        logger.warning("%d patients have images in both official train and test "
                       "(e.g. %s)%s.", len(overlap), sorted(overlap)[0],
                       "; their test images are dropped" if drop_overlap else "")
        if drop_overlap:
            out["test"] = [r for r in out["test"] if r.patient_id not in overlap]
    else:
        assert_disjoint({k: patients(v) for k, v in out.items()})
    return out


def label_counts(records: Sequence[MammogramRecord]) -> dict:
    """`{label: number of images}`, for summaries and checks."""
    return dict(sorted(collections.Counter(r.label for r in records).items(),
                       key=lambda kv: (kv[0] is None, kv[0] if kv[0] is not None else 0)))
