"""The on-disk layouts a synthesis writes: the ones the project's loaders read.

- `idc`: the Kaggle IDC layout under the release's top folder,
  `OUT/IDC_regular_ps50_idx5/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png`,
  so that `scan_idc(OUT)` (and `--data-dir OUT --layout idc`) reads it and
  passes over `manifest.json` beside it. Generated patches belong to one
  synthetic patient (`patient_id`, letters and digits) and lie in one row,
  image i at x = 50 i, y = 0; translated patches keep their source's
  patient and corner.
- `cbis_ddsm`: the CBIS-DDSM PNG layout, `OUT/labels.csv` with `image`,
  `mask`, `patient_id`, `side`, `view`, `label` (MALIGNANT / BENIGN) and
  where each image came from; `images/synthetic_<i>.png` (8-bit
  grayscale) and `masks/synthetic_<i>_mask.png` (0 / 255): what
  `scan_cbis_ddsm(OUT)` reads. `patient_id` is the patient of the
  lesion-free context, whose tissue fills the patch outside the mask.
- `tiles`: PNG tiles `OUT/synthetic_<i>.png` (`scan_he_images(OUT)`).
- `hdf5`: `OUT/synthetic.h5` in PathologyGAN's layout, `train_img` uint8
  `[N, H, W, C]` (`PathologyHDF5(OUT / "synthetic.h5")`).

Every image file is written under a temporary hidden name and renamed into
place, so no reader ever sees half a file. A writer can `truncate` to the
first k images (a resumed synthesis rewrites what came after), and
`finish` writes the index files from the entries.
"""

from __future__ import annotations

import abc
import csv
import os
import pathlib

import numpy as np

from gan_zoo.synthesis.errors import SynthesisError

LAYOUTS = ("idc", "cbis_ddsm", "tiles", "hdf5")
HDF5_NAME = "synthetic.h5"
HDF5_SPLIT = "train"
CBIS_COLUMNS = ("image", "mask", "patient_id", "side", "view", "label", "seed", "context_image",
                "context_patient", "context_corner", "mask_image", "mask_patient", "mask_corner")


def to_uint8(image):
    """A float image in [0, 1] as uint8 pixels (rounded, as `gan_zoo.images.save_image`)."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def write_png(path, pixels):
    """Writes uint8 pixels ([H, W], [H, W, 1] or [H, W, 3]) as a PNG, atomically.

    Args:
        path: the file; its folder is created.
        pixels: the image.
    """
    from PIL import Image

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    Image.fromarray(pixels).save(temporary, format="PNG")
    os.replace(temporary, path)


class Layout(abc.ABC):
    """Base of the writers: where image `entry` goes, writing, truncating, finishing.

    Args:
        out: the output folder.
    """

    name = ""

    def __init__(self, out):
        self.out = pathlib.Path(out)

    def check(self, plan):
        """Raises a SynthesisError if `plan`'s images cannot be written in this layout."""
        return None

    @abc.abstractmethod
    def relative_path(self, entry):
        """The image file of `entry`, relative to the output folder."""

    def write(self, entries, images, plan):
        """Writes a batch; adds `file` (and layout fields) to each entry."""
        for entry, image in zip(entries, images):
            entry["file"] = self.relative_path(entry)
            write_png(self.out / entry["file"], to_uint8(image))

    def truncate(self, count):
        """Forgets what was written after the first `count` images (their files are rewritten)."""
        return None

    def finish(self, entries):
        """Writes the layout's index from all entries (an iterable, read once)."""
        for _ in entries:
            pass

    def close(self):
        """Releases open files."""
        return None


class IDCLayout(Layout):
    """The Kaggle IDC layout (see the module docstring).

    Args:
        out: the output folder.
        patient_id: the synthetic patient of generated patches.
    """

    name = "idc"

    def __init__(self, out, patient_id="synthetic"):
        from gan_zoo.data.idc.layout import IDC_TOP_FOLDER, PATIENT_RE, PATIENT_RULE

        super().__init__(out)
        if not PATIENT_RE.match(str(patient_id)):
            raise SynthesisError(f"patient id {patient_id!r}: {PATIENT_RULE}.")
        self.patient_id = str(patient_id)
        self.root = IDC_TOP_FOLDER

    def check(self, plan):
        from gan_zoo.data.idc import PATCH_SIZE

        shape = tuple(plan.image_shape)
        if shape != (PATCH_SIZE, PATCH_SIZE, 3):
            raise SynthesisError(
                f"The IDC layout holds {PATCH_SIZE}x{PATCH_SIZE} RGB patches; this model makes "
                f"{'x'.join(map(str, shape))} images (choose --layout tiles or hdf5)."
            )
        first = plan.entry(0) if plan.count else {}
        if "patient" not in first and first.get("label") not in (0, 1):
            raise SynthesisError(
                "The IDC layout needs class 0 (no IDC) or 1 (IDC) for every patch: give an "
                "unconditional generator's class with --labels, e.g. 1:1000."
            )

    def relative_path(self, entry):
        from gan_zoo.data.idc import PATCH_SIZE

        patient = entry.get("patient", self.patient_id)
        x, y = (entry["x"], entry["y"]) if "x" in entry else (entry["index"] * PATCH_SIZE, 0)
        label = entry["label"]
        return f"{self.root}/{patient}/{label}/{patient}_idx5_x{x}_y{y}_class{label}.png"


class CBISLayout(Layout):
    """The CBIS-DDSM PNG layout with masks (see the module docstring)."""

    name = "cbis_ddsm"

    def check(self, plan):
        if not hasattr(plan, "mask_of"):
            raise SynthesisError("The cbis_ddsm layout holds ciGAN's painted lesions (with --masks).")

    def relative_path(self, entry):
        return f"images/synthetic_{entry['index']:06d}.png"

    def write(self, entries, images, plan):
        super().write(entries, images, plan)
        for entry in entries:
            entry["mask"] = f"masks/synthetic_{entry['index']:06d}_mask.png"
            write_png(self.out / entry["mask"], plan.mask_of(entry).astype(np.uint8) * 255)

    def finish(self, entries):
        from gan_zoo.data.mammography.cbis_ddsm import LABELS_FILE
        from gan_zoo.synthesis.plans import PATHOLOGY

        temporary = self.out / f".{LABELS_FILE}.partial"
        with open(temporary, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CBIS_COLUMNS)
            for e in entries:
                writer.writerow([
                    e["file"], e["mask"], e["context_patient"], e.get("side") or "", e.get("view") or "",
                    PATHOLOGY[e["label"]], e["seed"], e["context_source"], e["context_patient"],
                    " ".join(map(str, e["context_corner"])), e["mask_source"], e["mask_patient"],
                    " ".join(map(str, e["mask_corner"])),
                ])
        os.replace(temporary, self.out / LABELS_FILE)


class TilesLayout(Layout):
    """PNG tiles, one file per image (see the module docstring)."""

    name = "tiles"

    def check(self, plan):
        if plan.image_shape[-1] not in (1, 3):
            raise SynthesisError(f"PNG tiles need 1 or 3 channels; the model makes {plan.image_shape}.")

    def relative_path(self, entry):
        return f"synthetic_{entry['index']:06d}.png"


class HDF5Layout(Layout):
    """PathologyGAN's HDF5 layout, appended one batch at a time.

    `gan_zoo.data.he.PathologyHDF5Writer` writes a new file; a resumed
    synthesis appends to the file it started, so this writer opens it for
    appending and cuts it back to the images the manifest holds.
    """

    name = "hdf5"

    def __init__(self, out):
        super().__init__(out)
        self._file = None

    def check(self, plan):
        if plan.image_shape[-1] not in (1, 3):
            raise SynthesisError(f"The HDF5 layout needs 1 or 3 channels; the model makes {plan.image_shape}.")
        self.shape = tuple(int(d) for d in plan.image_shape)

    def relative_path(self, entry):
        return f"{HDF5_NAME}:{HDF5_SPLIT}_img[{entry['index']}]"

    def _images(self):
        import h5py

        from gan_zoo.data.he.hdf5 import image_key

        if self._file is None:
            self._file = h5py.File(self.out / HDF5_NAME, "a")
        key = image_key(HDF5_SPLIT)
        if key not in self._file:
            self._file.create_dataset(key, shape=(0, *self.shape), maxshape=(None, *self.shape),
                                      dtype="uint8", chunks=(1, *self.shape))
        return self._file[key]

    def truncate(self, count):
        if (self.out / HDF5_NAME).exists():
            images = self._images()
            images.resize(min(count, images.shape[0]), axis=0)

    def write(self, entries, images, plan):
        dataset = self._images()
        start = entries[0]["index"]
        if dataset.shape[0] != start:
            dataset.resize(start, axis=0)
        dataset.resize(start + len(entries), axis=0)
        dataset[start:] = np.stack([to_uint8(image) for image in images])
        self._file.flush()
        for entry in entries:
            entry["file"] = self.relative_path(entry)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def make_layout(name, out, patient_id="synthetic"):
    """The writer of layout `name` into `out`.

    Args:
        name: one of `LAYOUTS`.
        out: the output folder.
        patient_id: the synthetic patient of the IDC layout.
    """
    if name == "idc":
        return IDCLayout(out, patient_id)
    classes = {"cbis_ddsm": CBISLayout, "tiles": TilesLayout, "hdf5": HDF5Layout}
    if name not in classes:
        raise SynthesisError(f"layout must be one of {', '.join(LAYOUTS)}; got {name!r}.")
    return classes[name](out)
