"""The IDC layout: file names, patches and the scanned data set.

    <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png

See `gan_zoo.data.idc` for the data set, and `gan_zoo.data.idc.scan` for
finding the patches on disk.
"""

import collections
import dataclasses
import logging
import re

from gan_zoo.data.image_folder import DataProblemError, ImageRecord, problem_listing
from gan_zoo.data.splits import natural_key

logger = logging.getLogger(__name__)

IDC_ZIP_NAME = "IDC_regular_ps50_idx5.zip"
IDC_TOP_FOLDER = "IDC_regular_ps50_idx5"
PATCH_SIZE = 50
IDC_SIZE_POLICY = "pad_end"  # pipeline size_policy for IDC (see gan_zoo.data.idc)
CLASS_NAMES = ("healthy", "idc")

CITATION = (
    "Cruz-Roa A. et al., Automatic detection of invasive ductal carcinoma in "
    "whole slide images with convolutional neural networks, SPIE Medical "
    "Imaging 2014, 904103. Janowczyk A., Madabhushi A., Deep learning for "
    "digital pathology image analysis: a comprehensive tutorial with selected "
    "use cases, J Pathol Inform 2016;7:29."
)

_PATIENT = r"[0-9A-Za-z]+"
PATIENT_RE = re.compile(f"^{_PATIENT}$")
PATIENT_RULE = "IDC patient ids are ASCII letters and digits only (A-Za-z0-9)"
_NAME_RE = re.compile(
    rf"^(?P<patient>{_PATIENT})_idx5_x(?P<x>\d+)_y(?P<y>\d+)"
    r"_class(?P<label>\d+)\.png$"
)
LABEL_DIRS = ("0", "1")


class IDCLayoutError(DataProblemError):
    """Files or folders that do not follow the IDC layout or naming scheme.

    `problems` lists `(path, reason)` pairs (may be empty); `parent_hint`
    is the folder to scan instead when the one given is one patient's.
    """


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
            lines.append(f"  skipped files (unreadable or off the layout, left out): {len(self.skipped)}")
        if self.ignored:
            lines.append(f"  ignored entries: {len(self.ignored)}")
        return "\n".join(lines)


def parse_idc_name(patient_dir, label_dir, filename):
    """Patient, label, x, y of `<patient_dir>/<label_dir>/<filename>`.

    Raises:
        ValueError: with the problem (the caller adds the path).
    """
    if label_dir not in LABEL_DIRS:
        raise ValueError(
            f"label folder {label_dir!r} is not '0' or '1'"
        )
    m = _NAME_RE.match(filename)
    if not m:
        raise ValueError(
            "file name does not match "
            "'<patient>_idx5_x<X>_y<Y>_class<0|1>.png'"
        )
    if m["label"] not in LABEL_DIRS:
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


def is_ignorable(name):
    """Hidden entries and macOS archive folders, which scans pass over."""
    return name.startswith(".") or name == "__MACOSX"


def problem_error(problems, root):
    """An `IDCLayoutError` listing `(path, reason)` problems found in `root`."""
    return IDCLayoutError(
        f"{len(problems)} problem(s) in the IDC data at {root} "
        f"(pass on_error='skip' to leave these files out):\n{problem_listing(problems)}",
        problems, str(root),
    )


def idc_size_problem(image_size):
    """Why IDC patches cannot be trained at `image_size`; None at the patch side.

    The IDC size policy pads or crops, never stretches (edge patches must
    keep the tissue's scale), so another side would train on black borders
    or lose tissue: the recipes and `gan-zoo train --layout idc` refuse it.

    Args:
        image_size: the side the model would be trained at.
    """
    if not isinstance(image_size, int) or image_size == PATCH_SIZE:
        return None  # a non-integer is the model's to reject, naming the option
    if image_size > PATCH_SIZE:
        effect = f"{1 - (PATCH_SIZE / image_size) ** 2:.0%} of every image would be black padding"
    else:
        effect = f"{1 - (image_size / PATCH_SIZE) ** 2:.0%} of every patch would be cropped away"
    return (
        f"IDC patches are {PATCH_SIZE}x{PATCH_SIZE} and are padded or cropped, never "
        f"stretched: at {image_size}x{image_size} {effect}; use {PATCH_SIZE}."
    )
