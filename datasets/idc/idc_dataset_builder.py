"""TFDS builder `idc`: IDC breast H&E patches from a local copy (no download).

Builds sharded TFRecords from a manual folder (`manual_dir`), which may be:
the Kaggle folder of patient folders, a folder holding the original
`IDC_regular_ps50_idx5/` folder, or a folder holding the original archive
`IDC_regular_ps50_idx5.zip` (read in place, not extracted).

Configs:
    raw (default): images stored as they are; the few edge crops keep their
        smaller size (image shape (None, None, 3)).
    pad50: every image zero-padded at the bottom and right to 50x50 (the
        missing rows and columns lie beyond the slide border, so the padding
        goes where the slide ended and the pixel scale is kept). `height` and
        `width` still give the original size.

Split: a single split "full" (TFDS reserves the name "all", which reads the
union of all splits, so `split="all"` reads it as well). Patient-level train / validation / test splits
are made at load time by filtering on `patient` (see
`gan_zoo.data.idc_tfds.load_idc_tfds` and `idc_split`), because TFDS splits are
fixed at build time while patient splits are a choice of the experiment
(cruz_roa or seeded random ones, k folds).

Build from the command line:

    tfds build datasets/idc --manual_dir=../shared/data/idc \
        --data_dir=~/tensorflow_datasets [--config=pad50]
"""

import io
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from gan_zoo.data import idc as idc_lib

_DESCRIPTION = """
Invasive ductal carcinoma (IDC) patches of breast cancer whole-slide images
(H&E, scanned at 40x and down-sampled 16:1 to 4 um/pixel), 50x50 RGB, labelled
healthy (0) or IDC (1) from expert annotations; patient id and the patch's
top-left slide coordinates (x, y) come from the file names.
"""

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Put ONE of the following in the manual folder (`--manual_dir`):
  * the Kaggle "breast-histopathology-images" folder itself
    (<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png), or
  * a folder containing {idc_lib.IDC_TOP_FOLDER}/ (the original release), or
  * a folder containing {idc_lib.IDC_ZIP_NAME} from {idc_lib.IDC_URL}
    (see gan_zoo.data.idc.download_idc).
"""


class IDCConfig(tfds.core.BuilderConfig):
    """Builder config with an optional padded size."""

    def __init__(self, *, pad_to=None, **kwargs):
        super().__init__(**kwargs)
        self.pad_to = pad_to


class Builder(tfds.core.GeneratorBasedBuilder):
    """IDC patches (Cruz-Roa et al. 2014; Janowczyk & Madabhushi 2016)."""

    name = "idc"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        IDCConfig(name="raw", description="Images as stored; edge crops "
                  "keep their smaller size."),
        IDCConfig(name="pad50", pad_to=idc_lib.PATCH_SIZE,
                  description="Zero-padded at bottom/right to 50x50."),
    ]
    DEFAULT_CONFIG_NAME = "raw"
    # Metadata (README.md as the description) lives beside this file; set it
    # explicitly because this module may be imported by file path.
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self):
        size = self.builder_config.pad_to
        shape = (size, size, 3) if size else (None, None, 3)
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=shape, dtype=np.uint8,
                                             encoding_format="png"),
                "label": tfds.features.ClassLabel(
                    names=list(idc_lib.CLASS_NAMES)),
                "patient": tfds.features.Text(),
                "x": tfds.features.Scalar(dtype=np.int32),
                "y": tfds.features.Scalar(dtype=np.int32),
                "height": tfds.features.Scalar(dtype=np.int32),
                "width": tfds.features.Scalar(dtype=np.int32),
            }),
            supervised_keys=("image", "label"),
            homepage="https://andrewjanowczyk.com/",
            citation=idc_lib.CITATION,
        )

    def _split_generators(self, dl_manager):
        return {"full": self._generate_examples(dl_manager.manual_dir)}

    def _generate_examples(self, manual_dir):
        manual_dir = str(manual_dir)
        zip_path = pathlib.Path(manual_dir) / idc_lib.IDC_ZIP_NAME
        top = pathlib.Path(manual_dir) / idc_lib.IDC_TOP_FOLDER
        if zip_path.is_file() and not top.is_dir():
            for name, patient, label, x, y, data in idc_lib.iter_idc_zip(zip_path):
                image = _decode(data, f"{zip_path}:{name}")
                yield name, self._example(image, patient, label, x, y)
            return
        dataset = idc_lib.scan_idc(manual_dir, read_sizes=False)
        for patch in dataset.patches:
            with open(patch.path, "rb") as f:
                image = _decode(f.read(), patch.path)
            key = f"{patch.patient}/{patch.label}/{os.path.basename(patch.path)}"
            yield key, self._example(image, patch.patient, patch.label,
                                     patch.x, patch.y)

    def _example(self, image, patient, label, x, y):
        height, width = image.shape[:2]
        size = self.builder_config.pad_to
        if size:
            image = _pad(image, size, f"patient {patient} x{x} y{y}")
        return {"image": image, "label": label, "patient": patient,
                "x": x, "y": y, "height": height, "width": width}


def _decode(data, where):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode != "RGB":
                raise ValueError(f"expected an RGB image, got mode {im.mode}")
            return np.asarray(im, dtype=np.uint8)
    except Exception as e:
        raise ValueError(f"{where}: cannot read the image: {e}") from e


def _pad(image, size, where):
    height, width = image.shape[:2]
    if height > size or width > size:
        raise ValueError(f"{where}: {height}x{width} is larger than {size}x{size}.")
    if (height, width) == (size, size):
        return image
    return np.pad(image, ((0, size - height), (0, size - width), (0, 0)))
