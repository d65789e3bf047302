"""IDC: invasive ductal carcinoma H&E patches (50x50), with patient splits.

The data set of Cruz-Roa et al. (2014) and Janowczyk & Madabhushi (2016):
RGB 50x50 patches cut from whole-slide images of breast cancer specimens
(4 um/pixel), labelled 0 (no IDC, "healthy") or 1 (IDC). File layout:

    <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png

where (X, Y) is the patch's top-left corner on the down-sampled slide. The
label is in the folder name *and* the file name; `scan_idc` checks they agree.

Three on-disk forms are accepted by `scan_idc`:

* the Kaggle layout: a folder of patient folders;
* a folder holding the original release's top folder
  `IDC_regular_ps50_idx5/<patient>/<0|1>/...`;
* the original archive `IDC_regular_ps50_idx5.zip` (extracted safely once,
  next to the zip or into `cache_dir`, then scanned).

Off-size patches: a patch is cut at its top-left corner (X, Y), so a patch
at the slide's right or bottom border loses the columns or rows beyond the
edge, and a few are smaller than 50x50 (e.g. 42 rows x 50 columns). They are
tissue, not errors: they are kept, counted in `IDCDataset.off_size` and
reported by `IDCDataset.summary()`. Give the input pipeline
`size_policy=IDC_SIZE_POLICY` (`"pad_end"`, the policy to use for IDC; the
pipeline's own default is `"resize"`): it zero-pads them at the bottom and
right, where the slide ended, so every pixel stays where it was relative to
the patch's corner and keeps the pixel scale (4 um/pixel) of all other
patches. `"resize"` would stretch a 1x50 sliver to 50x50 and change the
scale; the centred `"pad"` would shift the tissue away from its corner. The
TFDS builder's config `pad50` pads the same way at build time, so both routes
give the same pixels (config `raw` keeps the crops as they are).

Patient splits: never split IDC by patch (patients have up to 1,000+ patches
each). `idc_split` gives the standard literature split (`"cruz_roa"`) or a
seeded random patient split; `idc_kfold` gives patient-level folds.

Class imbalance (about 28 % IDC in the full release, 38 % in the local
Kaggle copy): `class_weights` for `fit(class_weight=...)`, or
`balanced_records` to under/over-sample to equal class counts.

Modules: `layout` (names, `IDCPatch`, `IDCDataset`), `scan` (`scan_idc`,
archives), `splits` (patient splits, class balance), `download`
(`download_idc`). Every public name is importable from here.

Example:

    >>> ds = scan_idc("../shared/data/idc")
    >>> print(ds.summary())
    >>> split = idc_split(ds, "cruz_roa")
    >>> train = ds.records(split["train"])     # list of ImageRecord
    >>> weights = class_weights([r.label for r in train])
"""

from gan_zoo.data.idc.download import IDC_URL, download_idc
from gan_zoo.data.idc.layout import (
    CITATION,
    CLASS_NAMES,
    IDC_SIZE_POLICY,
    IDC_TOP_FOLDER,
    IDC_ZIP_NAME,
    PATCH_SIZE,
    IDCDataset,
    IDCLayoutError,
    IDCPatch,
    idc_size_problem,
    parse_idc_name,
)
from gan_zoo.data.idc.scan import extract_idc_archive, iter_idc_zip, scan_idc, scan_idc_for_command
from gan_zoo.data.idc.splits import (
    CRUZ_ROA_TEST_PATIENTS,
    CRUZ_ROA_VALIDATION_PATIENTS,
    IDCSplit,
    balanced_records,
    class_weights,
    cruz_roa_assignment,
    idc_kfold,
    idc_split,
)

__all__ = [
    "CITATION",
    "CLASS_NAMES",
    "CRUZ_ROA_TEST_PATIENTS",
    "CRUZ_ROA_VALIDATION_PATIENTS",
    "IDCDataset",
    "IDCLayoutError",
    "IDCPatch",
    "IDCSplit",
    "IDC_SIZE_POLICY",
    "IDC_TOP_FOLDER",
    "IDC_URL",
    "IDC_ZIP_NAME",
    "PATCH_SIZE",
    "balanced_records",
    "class_weights",
    "cruz_roa_assignment",
    "download_idc",
    "extract_idc_archive",
    "idc_kfold",
    "idc_size_problem",
    "idc_split",
    "iter_idc_zip",
    "parse_idc_name",
    "scan_idc",
    "scan_idc_for_command",
]
