"""Mammography data: CBIS-DDSM, INbreast and mini-MIAS as `MammogramRecord`s.

Readers return `MammogramRecord`s (one whole mammogram each, with patient,
image label, side, view, masks/lesions); `records` splits them by patient;
`pixels.load_grayscale` reads any of their files as float32 in [0, 1],
keeping the file's bit depth.
"""

from gan_zoo.data.mammography.cbis_ddsm import (  # noqa: F401
    detect_layout,
    official_split_of,
    scan_cbis_ddsm,
    scan_cbis_ddsm_png,
)
from gan_zoo.data.mammography.pixels import load_grayscale, read_dicom  # noqa: F401
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
