"""TFDS builder `cbis_ddsm_local`: CBIS-DDSM from a local copy (no download).

Prepares sharded TFRecords from a manual folder (`manual_dir`) in EITHER
layout that `gan_zoo.data.mammography.scan_cbis_ddsm` reads:

* the official TCIA release: case-description CSVs
  (`mass_case_description_train_set.csv`, ..., `calc_...`) beside the
  DICOM tree (`CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/...`);
* the preprocessed PNG layout: `labels.csv` (image, mask, patient_id, side,
  view, label, ...) with `images/` and `masks/` (e.g.
  `../shared/data/cbis_ddsm_mass`).

One example per whole mammogram: `image` is uint16 holding the pixel value
scaled to the FULL 16-bit range (value / 65535 is the image in [0, 1] as
`load_grayscale` reads it: an 8-bit PNG becomes v * 257, lossless; a DICOM
is scaled by its BitsStored, so its dynamic range is kept); `bit_depth` is
the depth of the source file; `mask` is the union of the image's lesion
masks (0 / 255); `label` is malignant (1) if any lesion is.

Configs: `original` (images at their own size) and `fit256` (resized so the
longer side is 256, aspect kept, padded with 0: DiaGRAM's whole-image
input). Split: one split "full"; split by patient at load time (or by
`official_split`, "train"/"test" from the image names).

The name is `cbis_ddsm_local`, not `curated_breast_imaging_ddsm`, so it never
shadows TFDS's own (downloading) builder.

    tfds build datasets/cbis_ddsm --manual_dir=../shared/data/cbis_ddsm_mass \
        --data_dir=~/tensorflow_datasets [--config=fit256]
"""

import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from gan_zoo.data.mammography import load_grayscale, scan_cbis_ddsm
from gan_zoo.data.mammography.patches import fit_whole_image
from gan_zoo.data.mammography.pixels import bit_depth_of

_DESCRIPTION = """
CBIS-DDSM (Lee et al. 2017): scanned-film mammograms of the DDSM with
curated mass and calcification ROIs and pathology-verified labels. Whole
images with the union of their lesion masks, patient, side, view and the
official train/test membership.
"""

_MANUAL_DOWNLOAD_INSTRUCTIONS = """
Put ONE of the following in the manual folder (`--manual_dir`):
  * the TCIA release: the case-description CSVs and the DICOM tree the NBIA
    Data Retriever wrote (CBIS-DDSM/<series folder>/...), or
  * a PNG folder with labels.csv, images/ and masks/.
"""

_CITATION = """
@article{lee2017curated,
  title={A curated mammography data set for use in computer-aided detection and diagnosis research},
  author={Lee, Rebecca Sawyer and Gimenez, Francisco and Hoogi, Assaf and Miyake, Kanae Kawai and Gorovoy, Mia and Rubin, Daniel L},
  journal={Scientific Data}, volume={4}, pages={170177}, year={2017}
}
"""


class CBISDDSMConfig(tfds.core.BuilderConfig):
    """Builder config with an optional fitted size."""

    def __init__(self, *, fit_to=None, **kwargs):
        super().__init__(**kwargs)
        self.fit_to = fit_to


class Builder(tfds.core.GeneratorBasedBuilder):
    """CBIS-DDSM whole mammograms with masks, from a local copy."""

    name = "cbis_ddsm_local"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        CBISDDSMConfig(name="original", description="Images at their own size."),
        CBISDDSMConfig(name="fit256", fit_to=256,
                       description="Longer side 256, aspect kept, zero-padded to 256x256."),
    ]
    DEFAULT_CONFIG_NAME = "original"
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self):
        size = self.builder_config.fit_to
        shape = (size, size, 1) if size else (None, None, 1)
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=shape, dtype=np.uint16, encoding_format="png"),
                "mask": tfds.features.Image(shape=shape, dtype=np.uint8, encoding_format="png"),
                "label": tfds.features.ClassLabel(names=["benign", "malignant"]),
                "patient_id": tfds.features.Text(),
                "side": tfds.features.Text(),
                "view": tfds.features.Text(),
                "official_split": tfds.features.Text(),
                "file_name": tfds.features.Text(),
                "bit_depth": tfds.features.Scalar(dtype=np.int32),
                "num_lesions": tfds.features.Scalar(dtype=np.int32),
            }),
            supervised_keys=("image", "label"),
            homepage="https://www.cancerimagingarchive.net/collection/cbis-ddsm/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        return {"full": self._generate_examples(dl_manager.manual_dir)}

    def _generate_examples(self, manual_dir):
        for record in scan_cbis_ddsm(str(manual_dir)):
            image = load_grayscale(record.path)
            mask = np.zeros(image.shape, np.float32)
            mask_paths = [record.mask_path] if record.mask_path else []
            mask_paths += [lesion.mask_path for lesion in record.lesions if lesion.mask_path]
            for path in mask_paths:
                lesion_mask = load_grayscale(path)
                if lesion_mask.shape != image.shape:
                    raise ValueError(f"{path}: mask {lesion_mask.shape} does not match the image "
                                     f"{record.path} {image.shape}.")
                mask = np.maximum(mask, lesion_mask)
            size = self.builder_config.fit_to
            if size:
                image, mask = fit_whole_image(image, size), fit_whole_image(mask, size)
            key = os.path.relpath(record.path, str(manual_dir))
            yield key, {
                "image": np.round(image * 65535.0).astype(np.uint16)[..., None],
                "mask": np.where(mask > 0.5, 255, 0).astype(np.uint8)[..., None],
                "label": int(record.label),
                "patient_id": record.patient_id,
                "side": record.side or "",
                "view": record.view or "",
                "official_split": record.official_split or "",
                "file_name": os.path.basename(record.path),
                "bit_depth": bit_depth_of(record.path),
                "num_lesions": len(record.lesions) or int(record.extra.get("n_masks") or 0),
            }
