"""Index a class-per-folder image tree: `root/<class_name>/**/<image>`.

Scanning only lists files (and, with `verify` or `read_sizes`, decodes them
with `gan_zoo.data.decode.check_images`, the decoder training uses); the
pixels are loaded later by `gan_zoo.data.pipeline`.

    >>> folder = scan_image_folder("data/idc", verify=True, on_error="skip")
    >>> folder.class_names, folder.class_counts(), folder.skipped
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pathlib
from typing import Callable, Iterable, Sequence

logger = logging.getLogger(__name__)

# The formats `tf.io.decode_image` can read, which is what the pipeline uses.
# TIFF is left out on purpose: Pillow opens it but TensorFlow cannot decode it.
DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

# Image formats worth a warning when they are present but not scanned.
_OTHER_IMAGE_EXTENSIONS = frozenset(
    {".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".dcm", ".jp2", ".j2k"}
)
ON_ERROR = ("raise", "skip")
"""The values of every `on_error` argument in `gan_zoo.data`."""


class DataProblemError(ValueError):
    """Files of a data set that cannot be used, found by a scan.

    The message lists them; the attributes let a command line say it in one
    line with its own option names.

    Args:
        message: the full message.
        problems: `(path, reason)` pairs.
        where: the folder (or archive) scanned.
        parent_hint: a folder to scan instead, when the one given looks one
            level too deep; None otherwise.
    """

    def __init__(self, message, problems=(), where=None, parent_hint=None):
        super().__init__(message)
        self.problems = tuple(problems)
        self.where = where
        self.parent_hint = parent_hint


class UnreadableImagesError(DataProblemError):
    """Image files the pipeline's decoder cannot read (`on_error="raise"`)."""


def dangling_link_reason(path):
    """Why a dangling symbolic link cannot be read, naming its target."""
    return f"a dangling symbolic link (its target {os.readlink(path)} does not exist)"


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One image file and what is known about it.

    Args:
        path: path of the image file.
        label: integer class index, or `None` for unlabelled data.
        group: the patient (or slide) the image belongs to, for patient-level
            splits; `None` when unknown.
        size: `(height, width)` when known (e.g. from `read_sizes=True`).
        mask_path: path of the image's segmentation mask, when it has one
            (e.g. a lesion mask); `mask_records` turns records into records
            of their masks, for aligned streams (`gan_zoo.data.streams`).
    """

    path: str
    label: int | None = None
    group: str | None = None
    size: tuple[int, int] | None = None
    mask_path: str | None = None


def mask_records(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """The masks of `records`, as records, in the same order.

    Each mask record has the image's `mask_path` as its path and keeps its
    label and group, so an aligned stream of images and masks can yield
    `(mask, label)` too.

    Raises:
        ValueError: naming the first record without a `mask_path`.
    """
    masks = []
    for record in records:
        if record.mask_path is None:
            raise ValueError(f"{record.path} has no mask_path.")
        masks.append(ImageRecord(record.mask_path, record.label, group=record.group))
    return masks


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The result of `scan_image_folder`.

    Args:
        root: the scanned folder.
        records: one `ImageRecord` per image, ordered by class, then path.
        class_names: class names; `records[i].label` indexes into them.
        skipped: `(path, reason)` for every image left out with
            `on_error="skip"`.
    """

    root: str
    records: tuple[ImageRecord, ...]
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self):
        return len(self.records)

    @property
    def paths(self) -> list[str]:
        return [record.path for record in self.records]

    @property
    def labels(self) -> list[int]:
        return [record.label for record in self.records]

    @property
    def groups(self) -> list[str | None]:
        return [record.group for record in self.records]

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, in class order."""
        counts = collections.Counter(record.label for record in self.records)
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_names)}


def scan_image_folder(
    root,
    *,
    class_names: Sequence[str] | None = None,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    group_fn: Callable[[str], str] | None = None,
    read_sizes: bool = False,
    verify: bool = False,
    on_error: str = "raise",
) -> ImageFolder:
    """Lists the images of a `root/<class_name>/**/<image>` tree.

    Hidden files and folders (names starting with ".") are ignored, so macOS
    `._name.png` files and `.ipynb_checkpoints` never count as images.

    Args:
        root: the folder holding one sub-folder per class.
        class_names: the classes to read, in label order. Default: every
            sub-folder, sorted by name. Folders not listed are left out (with
            a warning naming them).
        extensions: file name endings counted as images (case-insensitive).
        group_fn: `group_fn(path) -> str` giving the patient id of an image,
            stored in `ImageRecord.group`.
        read_sizes: store each image's `(height, width)` in
            `ImageRecord.size`. Sizes come from decoding the files, which
            checks them as `verify` does.
        verify: decode every image with the pipeline's decoder
            (`gan_zoo.data.decode.check_images`), so a truncated or corrupt
            file is found now rather than mid-training.
        on_error: what to do with an image that fails `verify` or
            `read_sizes`: `"raise"` a `ValueError` naming every bad file, or
            `"skip"` it, recording `(path, reason)` in `ImageFolder.skipped`.

    Returns:
        An `ImageFolder`.

    Raises:
        FileNotFoundError: `root`, or a folder named in `class_names`, does
            not exist.
        NotADirectoryError: `root` is a file.
        ValueError: no images were found, a class folder holds no images, or
            an image is corrupt and `on_error="raise"`.
    """
    check_on_error(on_error)
    root_path = pathlib.Path(root)
    if not root_path.exists():
        raise FileNotFoundError(f"Image folder {root_path} does not exist.")
    if not root_path.is_dir():
        raise NotADirectoryError(f"Image folder {root_path} is not a directory.")
    extensions = _normalise_extensions(extensions)

    class_names = _class_folders(root_path, class_names, extensions)
    records = []
    for label, name in enumerate(class_names):
        paths = _list_images(root_path / name, extensions)
        if not paths:
            raise ValueError(
                f"Class folder {root_path / name} holds no images with extensions "
                f"{', '.join(extensions)}."
            )
        for path in paths:
            group = group_fn(path) if group_fn is not None else None
            records.append(ImageRecord(path=path, label=label, group=group))

    # A dangling link cannot be read: say so, whether or not images are decoded.
    problems = {
        r.path: dangling_link_reason(r.path)
        for r in records if os.path.islink(r.path) and not os.path.exists(r.path)
    }
    if verify or read_sizes:
        from gan_zoo.data.decode import check_images  # TensorFlow only when needed

        checks = check_images([r.path for r in records])
        problems.update({c.path: c.problem for c in checks if not c.ok and c.path not in problems})
        if read_sizes:
            records = [dataclasses.replace(r, size=c.size) for r, c in zip(records, checks)]
    skipped = _handle_problems(
        [(r.path, problems[r.path]) for r in records if r.path in problems],
        on_error,
        where=str(root_path),
    )
    if skipped:
        records = [r for r in records if r.path not in problems]
    return ImageFolder(
        root=str(root_path),
        records=tuple(records),
        class_names=tuple(class_names),
        skipped=tuple(skipped),
    )


def verify_images(paths: Iterable[str], on_error: str = "raise") -> list[tuple[str, str]]:
    """Decodes every image with the pipeline's decoder to find bad files.

    Args:
        paths: image file paths.
        on_error: `"raise"` a `ValueError` naming every bad file and its
            problem, or `"skip"`: return them (a warning gives the count).

    Returns:
        `(path, reason)` for every file that cannot be decoded, in input
        order; empty when all are fine.
    """
    from gan_zoo.data.decode import find_unreadable_files  # TensorFlow only when needed

    check_on_error(on_error)
    problems = find_unreadable_files([str(p) for p in paths])
    return _handle_problems(problems, on_error, where="the given files")


def check_on_error(on_error):
    """Raises ValueError unless `on_error` is one of `ON_ERROR`."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")


def problem_listing(problems, limit=20):
    """Lines `  path: reason` for the first `limit` problems, then a count.

    Args:
        problems: `(path, reason)` pairs.
        limit: how many to show; the rest are summed up as "... and N more".

    Returns:
        The lines joined by newlines (no trailing newline).
    """
    problems = list(problems)
    lines = [f"  {path}: {reason}" for path, reason in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)


def _normalise_extensions(extensions):
    if isinstance(extensions, str):
        extensions = (extensions,)
    normalised = tuple(
        ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions
    )
    if not normalised:
        raise ValueError("extensions must name at least one file ending.")
    return normalised


def _is_hidden(name):
    return name.startswith(".")


def _class_folders(root, class_names, extensions):
    """Returns the class folder names in label order, checking they exist."""
    folders = sorted(
        entry.name for entry in root.iterdir() if entry.is_dir() and not _is_hidden(entry.name)
    )
    loose = [
        entry.name
        for entry in root.iterdir()
        if entry.is_file() and entry.suffix.lower() in extensions
    ]
    if not folders:
        if loose:
            raise ValueError(
                f"Image folder {root} holds {len(loose)} images but no class "
                f"folders; expected the layout {root}/<class_name>/<image>."
            )
        raise ValueError(
            f"No images found in {root}: it has no class folders "
            f"(searched for {', '.join(extensions)})."
        )
    if loose:
        # Images beside the class folders have no label: say they are unused.
        logger.warning(
            "Ignoring %d images directly in %s (not inside a class folder).",
            len(loose),
            root,
        )
    if class_names is None:
        return folders
    class_names = [str(name) for name in class_names]
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names has duplicates: {class_names}.")
    missing = [name for name in class_names if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"Class folders {', '.join(str(root / m) for m in missing)} do not exist "
            f"(found {', '.join(folders)})."
        )
    unused = sorted(set(folders) - set(class_names))
    if unused:
        logger.warning(
            "Ignoring folders of %s not in class_names: %s.", root, ", ".join(unused)
        )
    return class_names


def _list_images(folder, extensions):
    """Sorted image paths under `folder`, recursively, skipping hidden entries."""
    paths = []
    unlisted = collections.Counter()
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        # Sorting in place makes os.walk visit sub-folders in a fixed order.
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
        for name in sorted(files):
            if _is_hidden(name):
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix in extensions:
                paths.append(os.path.join(directory, name))
            elif suffix in _OTHER_IMAGE_EXTENSIONS:
                unlisted[suffix] += 1
    if unlisted:
        logger.warning(
            "Ignoring image files in %s with extensions not searched: %s; pass "
            "extensions=... to include them.",
            folder,
            ", ".join(f"{count} x {ext}" for ext, count in sorted(unlisted.items())),
        )
    return paths


def _handle_problems(problems, on_error, *, where):
    """Raises for `problems` or logs them, per `on_error`; returns them."""
    if not problems:
        return []
    listing = problem_listing(problems)
    if on_error == "raise":
        raise UnreadableImagesError(
            f"{len(problems)} unreadable image file(s) in {where}:\n{listing}\n"
            "Pass on_error='skip' to leave them out.",
            problems, where,
        )
    logger.warning("Skipped %d unreadable image file(s) in %s:\n%s", len(problems), where, listing)
    return list(problems)
