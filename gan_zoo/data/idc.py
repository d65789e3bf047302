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

Example:

    >>> ds = scan_idc("../shared/data/idc")
    >>> print(ds.summary())
    >>> split = idc_split(ds, "cruz_roa")
    >>> train = ds.records(split["train"])     # list of ImageRecord
    >>> weights = class_weights([r.label for r in train])
"""

import collections
import dataclasses
import logging
import os
import pathlib
import random
import re
import zipfile

from gan_zoo.data.download import download_file, safe_extract
from gan_zoo.data.image_folder import ImageRecord, check_on_error, problem_listing
from gan_zoo.data.splits import (
    DEFAULT_FRACTIONS,
    assert_disjoint,
    kfold_by_group,
    natural_key,
    split_by_group,
)

logger = logging.getLogger(__name__)

IDC_URL = "https://andrewjanowczyk.com/wp-static/IDC_regular_ps50_idx5.zip"
"""The original release, as given in the footnote of the semi-supervised cGAN
IDC paper (shared/papers/000_9b6b55d5e2ffc12a.txt). No checksum is published for it:
`download_idc` therefore needs `sha256=` or an explicit `verify=False`."""

IDC_ZIP_NAME = "IDC_regular_ps50_idx5.zip"
IDC_TOP_FOLDER = "IDC_regular_ps50_idx5"
PATCH_SIZE = 50
IDC_SIZE_POLICY = "pad_end"  # pipeline size_policy for IDC (see module docstring)
CLASS_NAMES = ("healthy", "idc")

CITATION = (
    "Cruz-Roa A. et al., Automatic detection of invasive ductal carcinoma in "
    "whole slide images with convolutional neural networks, SPIE Medical "
    "Imaging 2014, 904103. Janowczyk A., Madabhushi A., Deep learning for "
    "digital pathology image analysis: a comprehensive tutorial with selected "
    "use cases, J Pathol Inform 2016;7:29."
)

# The standard patient-level split of Cruz-Roa et al. 2014, reused by
# Janowczyk & Madabhushi 2016: 84 train / 29 validation / 49 test patients of
# the 162-patient release. Lists as given in the project's data notes
# (shared/data/README.md). Train is "every other patient present".
CRUZ_ROA_VALIDATION_PATIENTS = frozenset("""
    13688 9381 16554 12867 12880 9076 12626 10299 8959 9023 15473 12896 13591
    13461 9078 9324 9022 8956 9036 10260 10269 10261 8917 10277 12875 16896
    9345 8914 8867
""".split())
CRUZ_ROA_TEST_PATIENTS = frozenset("""
    12909 9382 9075 9290 12881 12895 8864 14191 10259 10274 10303 12907 9225
    13402 10295 10306 9176 13023 12821 10307 9322 9073 12905 13106 12906 13401
    13403 10292 9261 8916 8918 9254 15515 13458 16550 9250 9347 14081 12826
    13460 10276 10273 14189 9181 13687 10286 10255 10301 9125
""".split())
CRUZ_ROA_TRAIN_SIZE_ORIGINAL = 84  # train patients in the 162-patient release

_NAME_RE = re.compile(
    r"^(?P<patient>[0-9A-Za-z]+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)"
    r"_class(?P<label>\d+)\.png$"
)
_LABEL_DIRS = ("0", "1")


class IDCLayoutError(ValueError):
    """Files or folders that do not follow the IDC layout or naming scheme."""


# ----------------------------------------------------------------------------
# Patches and data set.


@dataclasses.dataclass(frozen=True)
class IDCPatch:
    """One IDC patch.

    Args:
        path: image file path.
        patient: patient id (the patient folder name).
        label: 0 (no IDC) or 1 (IDC).
        x: column of the patch's top-left corner on the down-sampled slide.
        y: row of the patch's top-left corner.
        height: image height in pixels (None when sizes were not read).
        width: image width in pixels (None when sizes were not read).
    """

    path: str
    patient: str
    label: int
    x: int
    y: int
    height: int | None = None
    width: int | None = None

    @property
    def group(self):
        """The patient: lets `splits.select` filter patches directly."""
        return self.patient

    @property
    def size(self):
        """(height, width), or None when not read."""
        if self.height is None or self.width is None:
            return None
        return (self.height, self.width)

    @property
    def off_size(self):
        """True when not 50x50; None when the size was not read."""
        size = self.size
        return None if size is None else size != (PATCH_SIZE, PATCH_SIZE)

    def to_record(self):
        """This patch as an `ImageRecord` (group = patient, size = (h, w))."""
        return ImageRecord(self.path, self.label, group=self.patient, size=self.size)


@dataclasses.dataclass(frozen=True)
class IDCDataset:
    """The result of `scan_idc`: the patches found and what was left out.

    Args:
        root: the folder that was scanned (the one holding patient folders).
        patches: every patch, sorted by patient, label, y, x.
        skipped: `(path, reason)` for files left out with `on_error="skip"`.
        ignored: hidden entries (".*", "__MACOSX") and, in a folder that also
            holds `IDC_regular_ps50_idx5/`, the entries beside it.
        sizes_read: whether patch sizes were read.
    """

    root: str
    patches: tuple
    skipped: tuple = ()
    ignored: tuple = ()
    sizes_read: bool = True

    def __len__(self):
        return len(self.patches)

    @property
    def patients(self):
        """Patient ids present, sorted numerically."""
        return tuple(sorted({p.patient for p in self.patches}, key=natural_key))

    @property
    def num_patches(self):
        return len(self.patches)

    @property
    def class_counts(self):
        """{0: number of healthy patches, 1: number of IDC patches}."""
        counts = collections.Counter(p.label for p in self.patches)
        return {label: counts.get(label, 0) for label in (0, 1)}

    @property
    def patient_counts(self):
        """{patient: {0: n_healthy, 1: n_idc}}."""
        counts = collections.defaultdict(lambda: {0: 0, 1: 0})
        for p in self.patches:
            counts[p.patient][p.label] += 1
        return {k: counts[k] for k in self.patients}

    def _require_sizes(self):
        if not self.sizes_read:
            raise ValueError(
                f"Patch sizes of {self.root} were not read: call scan_idc "
                "with read_sizes=True to count off-size patches."
            )

    @property
    def off_size(self):
        """Patches that are not 50x50 (edge crops at the slide border)."""
        self._require_sizes()
        return tuple(p for p in self.patches if p.off_size)

    @property
    def off_size_counts(self):
        """{(height, width): count} over the off-size patches."""
        return dict(
            collections.Counter(p.size for p in self.off_size).most_common()
        )

    def patches_of(self, patients=None):
        """Patches of the given patients (all patches when None)."""
        if patients is None:
            return list(self.patches)
        wanted = {str(p) for p in patients}
        absent = wanted - set(self.patients)
        if absent:
            logger.warning(
                "%d requested patients are not in %s: %s", len(absent),
                self.root, ", ".join(sorted(absent, key=natural_key)[:20]),
            )
        return [p for p in self.patches if p.patient in wanted]

    def records(self, patients=None):
        """`ImageRecord`s (group = patient) of the given patients, or all."""
        return [p.to_record() for p in self.patches_of(patients)]

    def labels(self, patients=None):
        """Labels of the given patients' patches, in `records` order."""
        return [p.label for p in self.patches_of(patients)]

    def summary(self):
        """A few lines describing counts, balance and off-size patches."""
        n = len(self.patches)
        counts = self.class_counts
        lines = [
            f"IDC data at {self.root}: {n:,} patches from "
            f"{len(self.patients)} patients.",
        ]
        for label, name in enumerate(CLASS_NAMES):
            share = 100 * counts[label] / n if n else 0.0
            lines.append(f"  class {label} ({name}): {counts[label]:,} "
                         f"({share:.1f}%)")
        if self.sizes_read:
            off = self.off_size
            sizes = ", ".join(
                f"{h}x{w}: {c}" for (h, w), c in self.off_size_counts.items()
            )
            lines.append(
                f"  off-size patches (not {PATCH_SIZE}x{PATCH_SIZE}, edge "
                f"crops): {len(off)}" + (f" [height x width: {sizes}]" if off else "")
            )
            if off:
                lines.append(
                    f"  give the pipeline size_policy={IDC_SIZE_POLICY!r} "
                    "(IDC_SIZE_POLICY) to zero-pad them to 50x50 where the "
                    "slide ended, at the pixel scale; 'resize' would stretch them."
                )
        else:
            lines.append("  patch sizes not read (read_sizes=False).")
        if self.skipped:
            lines.append(f"  skipped files (on_error='skip'): {len(self.skipped)}")
        if self.ignored:
            lines.append(f"  ignored entries: {len(self.ignored)}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------
# Scanning.


def parse_idc_name(patient_dir, label_dir, filename):
    """Patient, label, x, y of `<patient_dir>/<label_dir>/<filename>`.

    Raises:
        ValueError: with the problem (the caller adds the path).
    """
    if label_dir not in _LABEL_DIRS:
        raise ValueError(
            f"label folder {label_dir!r} is not '0' or '1'"
        )
    m = _NAME_RE.match(filename)
    if not m:
        raise ValueError(
            "file name does not match "
            "'<patient>_idx5_x<X>_y<Y>_class<0|1>.png'"
        )
    if m["label"] not in _LABEL_DIRS:
        raise ValueError(f"class {m['label']} in the file name is not 0 or 1")
    if m["label"] != label_dir:
        raise ValueError(
            f"file name says class {m['label']} but it is in label folder "
            f"{label_dir!r}"
        )
    if m["patient"] != patient_dir:
        raise ValueError(
            f"file name's patient {m['patient']!r} differs from its patient "
            f"folder {patient_dir!r}"
        )
    return m["patient"], int(m["label"]), int(m["x"]), int(m["y"])


def _is_ignorable(name):
    return name.startswith(".") or name == "__MACOSX"


def _read_size(path, verify):
    from PIL import Image

    with Image.open(path) as im:
        width, height = im.size
        if verify:
            im.load()
            if im.mode != "RGB":
                raise ValueError(f"expected an RGB image, got mode {im.mode}")
    return height, width


def _problem_error(problems, root):
    return IDCLayoutError(
        f"{len(problems)} problem(s) in the IDC data at {root} "
        f"(pass on_error='skip' to leave these files out):\n{problem_listing(problems)}"
    )


def _find_root(folder):
    """The folder holding patient folders, and entries ignored beside it.

    Descends into `IDC_regular_ps50_idx5/` (the original release's top
    folder) as long as there is one: an archive holding that folder and
    extracted into a folder of the same name nests it twice. The Kaggle
    archive also holds duplicate patient folders beside it; entries beside
    the top folder are ignored, logged and listed in `IDCDataset.ignored`.
    """
    ignored = []
    while (folder / IDC_TOP_FOLDER).is_dir():
        beside = sorted(
            str(folder / e) for e in os.listdir(folder) if e != IDC_TOP_FOLDER
        )
        if beside:
            logger.warning(
                "Using %s; ignoring %d other entries in %s (e.g. %s).",
                folder / IDC_TOP_FOLDER, len(beside), folder, beside[0],
            )
        ignored.extend(beside)
        folder = folder / IDC_TOP_FOLDER
    return folder, ignored


def _scan_folder(root, read_sizes, verify, on_error):
    patches, problems, ignored = [], [], []
    if not any(True for _ in os.scandir(root)):
        raise IDCLayoutError(
            f"{root} is empty: expected patient folders "
            "<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png."
        )
    for patient_entry in sorted(os.scandir(root), key=lambda e: e.name):
        if _is_ignorable(patient_entry.name):
            ignored.append(patient_entry.path)
            continue
        if not patient_entry.is_dir():
            problems.append((patient_entry.path,
                             "a file where patient folders are expected"))
            continue
        for label_entry in sorted(os.scandir(patient_entry.path),
                                  key=lambda e: e.name):
            if _is_ignorable(label_entry.name):
                ignored.append(label_entry.path)
                continue
            if not label_entry.is_dir() or label_entry.name not in _LABEL_DIRS:
                problems.append((label_entry.path,
                                 "expected only label folders '0' and '1' in "
                                 "a patient folder"))
                continue
            for f in sorted(os.scandir(label_entry.path), key=lambda e: e.name):
                if _is_ignorable(f.name):
                    ignored.append(f.path)
                    continue
                if not f.is_file():
                    problems.append((f.path, "a folder inside a label folder"))
                    continue
                try:
                    patient, label, x, y = parse_idc_name(
                        patient_entry.name, label_entry.name, f.name)
                    height = width = None
                    if read_sizes or verify:
                        try:
                            height, width = _read_size(f.path, verify)
                        except Exception as e:  # PIL raises many types.
                            raise ValueError(f"unreadable image: {e}") from e
                except ValueError as e:
                    problems.append((f.path, str(e)))
                    continue
                patches.append(IDCPatch(f.path, patient, label, x, y,
                                        height, width))
    if problems and on_error == "raise":
        raise _problem_error(problems, root)
    if problems:
        logger.warning("Skipped %d files in %s:\n%s", len(problems), root,
                       problem_listing(problems))
    if not patches:
        raise IDCLayoutError(
            f"No IDC patches found in {root}"
            + (f" ({len(problems)} files skipped)" if problems else "")
            + ": expected <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png."
        )
    patches.sort(key=lambda p: (natural_key(p.patient), p.label, p.y, p.x))
    return patches, problems, ignored


def _archive_stem(path):
    name = path.name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def extract_idc_archive(archive, cache_dir=None):
    """Extracts the IDC archive once; returns the extracted folder.

    The folder is `<cache_dir or the archive's folder>/<archive stem>`. It is
    created by `safe_extract` with an atomic rename, so when it exists it is
    complete and is reused without extracting again.
    """
    archive = pathlib.Path(archive).expanduser()
    parent = pathlib.Path(cache_dir).expanduser() if cache_dir else archive.parent
    target = parent / _archive_stem(archive)
    if target.is_dir():
        logger.info("Reusing extracted %s.", target)
        return target
    logger.info("Extracting %s into %s (once).", archive, target)
    safe_extract(archive, target)
    return target


def scan_idc(path, *, read_sizes=True, verify=False, on_error="raise",
             cache_dir=None):
    """Finds every IDC patch under `path`.

    Args:
        path: a Kaggle-layout folder, a folder holding
            `IDC_regular_ps50_idx5/`, or the zip archive (extracted once).
        read_sizes: read each image's height and width (header only).
        verify: fully decode each image and require RGB.
        on_error: `"raise"` (default): any file off the naming scheme, with a
            label folder that disagrees with the file name's class, or a
            patient folder that disagrees with the file name's patient, is
            an `IDCLayoutError` naming the files. `"skip"`: leave them out,
            listed in `IDCDataset.skipped`, with a warning.
        cache_dir: where to extract an archive (default: beside it).

    Returns:
        An `IDCDataset`.
    """
    check_on_error(on_error)
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"IDC data not found: {path} does not exist.")
    if path.is_file():
        path = extract_idc_archive(path, cache_dir)
    root, ignored_beside = _find_root(path)
    patches, problems, ignored = _scan_folder(root, read_sizes, verify, on_error)
    return IDCDataset(
        root=str(root),
        patches=tuple(patches),
        skipped=tuple(problems),
        ignored=tuple(ignored_beside + ignored),
        sizes_read=bool(read_sizes or verify),
    )


def iter_idc_zip(archive):
    """Yields `(member_name, patient, label, x, y, png_bytes)` from the zip.

    Reads the archive in place (no extraction). When it holds an
    `IDC_regular_ps50_idx5/` folder only that folder is read (entries beside
    it are logged and ignored). Members off the naming scheme raise an
    `IDCLayoutError` naming them.
    """
    archive = pathlib.Path(archive)
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        prefix = IDC_TOP_FOLDER + "/"
        if any(i.filename.startswith(prefix) for i in infos):
            beside = [i for i in infos if not i.filename.startswith(prefix)]
            if beside:
                logger.warning(
                    "%s: reading %s only; ignoring %d members beside it.",
                    archive, prefix, len(beside),
                )
            infos = [i for i in infos if i.filename.startswith(prefix)]
        else:
            prefix = ""
        parsed, problems = [], []
        for info in infos:
            parts = info.filename[len(prefix):].split("/")
            if any(_is_ignorable(p) for p in parts):
                continue
            if len(parts) != 3:
                problems.append(
                    (f"{archive}:{info.filename}",
                     "not in the <patient>/<0|1>/<file>.png layout"))
                continue
            try:
                parsed.append((info, *parse_idc_name(*parts)))
            except ValueError as e:
                problems.append((f"{archive}:{info.filename}", str(e)))
        if problems:
            raise _problem_error(problems, archive)
        if not parsed:
            raise IDCLayoutError(f"No IDC patches found in {archive}.")
        for info, patient, label, x, y in parsed:
            yield info.filename, patient, label, x, y, zf.read(info)


# ----------------------------------------------------------------------------
# Splits.


class IDCSplit(dict):
    """`{"train", "validation", "test"} -> set of patients`, plus metadata.

    Attributes:
        scheme: `"cruz_roa"` or `"random"`.
        absent: for `"cruz_roa"`, `{split: listed patients not present}`.
    """

    def __init__(self, splits, scheme, absent=None):
        super().__init__(splits)
        self.scheme = scheme
        self.absent = absent or {}


def idc_split(dataset, scheme="cruz_roa", seed=0, fractions=None, stratify=True):
    """Patient-level train / validation / test split of an `IDCDataset`.

    Args:
        dataset: an `IDCDataset`.
        scheme: `"cruz_roa"`: the standard split of Cruz-Roa et al. 2014
            (validation = `CRUZ_ROA_VALIDATION_PATIENTS`, test =
            `CRUZ_ROA_TEST_PATIENTS`, train = every other patient present).
            On the 162-patient original release train has 84 patients; the
            Kaggle copy has more patient folders, so train is larger there.
            Listed patients that are missing (the local copy lacks all 49
            test patients) are reported in the result's `absent` and logged.
            `"random"`: a seeded random split by patient (`fractions`,
            default `splits.DEFAULT_FRACTIONS`, 70/15/15 %), stratified by
            the classes each patient has when `stratify`.
        seed: seed of the random scheme (ignored by `cruz_roa`).
        fractions: `{"train", "validation", "test"}` fractions for `random`.
        stratify: stratify the random split (see `gan_zoo.data.splits`).

    Returns:
        An `IDCSplit` (a dict of sets of patient ids). Always disjoint.
    """
    present = set(dataset.patients)
    if scheme == "cruz_roa":
        if fractions is not None:
            raise ValueError("fractions apply to scheme='random' only.")
        validation = present & CRUZ_ROA_VALIDATION_PATIENTS
        test = present & CRUZ_ROA_TEST_PATIENTS
        train = present - validation - test
        absent = {
            "validation": frozenset(CRUZ_ROA_VALIDATION_PATIENTS - present),
            "test": frozenset(CRUZ_ROA_TEST_PATIENTS - present),
        }
        for name, missing in absent.items():
            if missing:
                listed = len(CRUZ_ROA_VALIDATION_PATIENTS if name == "validation"
                             else CRUZ_ROA_TEST_PATIENTS)
                logger.warning(
                    "cruz_roa split: %d of the %d listed %s patients are "
                    "absent from %s%s", len(missing), listed, name,
                    dataset.root,
                    f" ({name} is empty)" if len(missing) == listed else "",
                )
        result = IDCSplit(
            {"train": train, "validation": validation, "test": test},
            scheme, absent,
        )
    elif scheme == "random":
        fractions = dict(fractions or DEFAULT_FRACTIONS)
        if set(fractions) != {"train", "validation", "test"}:
            raise ValueError(
                "fractions must name 'train', 'validation' and 'test', got "
                f"{sorted(fractions)}."
            )
        groups = [p.patient for p in dataset.patches]
        labels = [p.label for p in dataset.patches] if stratify else None
        result = IDCSplit(
            split_by_group(groups, fractions, seed, labels=labels), scheme
        )
    else:
        raise ValueError(
            f"Unknown IDC split scheme {scheme!r}: use 'cruz_roa' or 'random'."
        )
    assert_disjoint(result)
    return result


def idc_kfold(dataset, k=5, seed=0, stratify=True):
    """K patient-level folds of an `IDCDataset`.

    Every patient is in exactly one fold's test set; see
    `gan_zoo.data.splits.kfold_by_group`.

    Args:
        dataset: an `IDCDataset`.
        k: number of folds, 2 <= k <= number of patients.
        seed: seed of the assignment (independent of the patch order).
        stratify: spread patients with only healthy, only IDC, and both
            kinds of patches evenly over the folds.

    Returns:
        A list of `k` pairs `(train_patients, test_patients)` of sets of
        patient ids. Each pair is disjoint.
    """
    groups = [p.patient for p in dataset.patches]
    labels = [p.label for p in dataset.patches] if stratify else None
    folds = kfold_by_group(groups, k, seed, labels=labels)
    for train, test in folds:
        assert_disjoint({"train": train, "test": test})
    return folds


# ----------------------------------------------------------------------------
# Class imbalance.


def class_weights(labels, num_classes=2):
    """Inverse-frequency class weights for `fit(class_weight=...)`.

    `w_c = N / (num_classes * n_c)`, so the mean weight over the samples is
    exactly 1 and the loss keeps its scale.

    Raises:
        ValueError: a class has no samples, or a label is out of range.
    """
    counts = collections.Counter(int(y) for y in labels)
    n = sum(counts.values())
    bad = sorted(set(counts) - set(range(num_classes)))
    if bad:
        raise ValueError(f"Labels {bad} are outside 0..{num_classes - 1}.")
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise ValueError(
            f"Classes {empty} have no samples; class weights are undefined."
        )
    return {c: n / (num_classes * counts[c]) for c in range(num_classes)}


def balanced_records(records, seed=0, method="undersample"):
    """Records re-sampled to equal class counts, shuffled.

    Args:
        records: objects with a `label` (ImageRecord, IDCPatch).
        seed: random seed.
        method: `"undersample"`: keep a random subset of each class of the
            minority's size (no duplicates; drops data). `"oversample"`: keep
            everything and add random duplicates of the smaller classes up to
            the majority's size.

    Alternative without duplicating or dropping records: keep all of them
    and pass `class_weights(...)` to `fit`, or sample per-class
    `tf.data` datasets with `tf.data.Dataset.sample_from_datasets`.
    """
    if method not in ("undersample", "oversample"):
        raise ValueError(
            f"method must be 'undersample' or 'oversample', got {method!r}."
        )
    by_class = collections.defaultdict(list)
    for r in records:
        if r.label is None:
            raise ValueError(f"Record {r!r} has no label.")
        by_class[r.label].append(r)
    if not by_class:
        return []
    rng = random.Random(seed)
    sizes = [len(v) for v in by_class.values()]
    out = []
    for label in sorted(by_class):
        members = by_class[label]
        if method == "undersample":
            out.extend(rng.sample(members, min(sizes)))
        else:
            extra = max(sizes) - len(members)
            out.extend(members)
            out.extend(rng.choice(members) for _ in range(extra))
    rng.shuffle(out)
    return out


# ----------------------------------------------------------------------------
# Download.


def download_idc(target_dir, *, sha256=None, verify=True, progress=True):
    """Downloads `IDC_URL` into `target_dir` and extracts it safely, once.

    No checksum is published for the original archive, so a checksum cannot
    be built in: pass the `sha256` you trust (e.g. from a first download),
    or `verify=False` to accept an unverified file (its digest is then
    logged so you can pin it).

    Returns:
        The extracted folder (`<target_dir>/IDC_regular_ps50_idx5`); give it
        to `scan_idc`.
    """
    if sha256 is None and verify:
        raise ValueError(
            f"No published SHA-256 exists for {IDC_URL}: pass sha256='...' "
            "to verify the download, or verify=False to download without "
            "verification (the digest is then logged)."
        )
    target_dir = pathlib.Path(target_dir).expanduser()
    archive = download_file(
        IDC_URL, target_dir / IDC_ZIP_NAME, sha256=sha256, progress=progress
    )
    return extract_idc_archive(archive)
