"""Finding IDC patches on disk: folders, the release's top folder, archives."""

import dataclasses
import logging
import os
import pathlib
import zipfile

from gan_zoo.data.download import safe_extract
from gan_zoo.data.idc.layout import (
    IDC_TOP_FOLDER,
    LABEL_DIRS,
    PATIENT_RE,
    PATIENT_RULE,
    IDCDataset,
    IDCLayoutError,
    IDCPatch,
    is_ignorable,
    parse_idc_name,
    problem_error,
)
from gan_zoo.data.image_folder import check_on_error, dangling_link_reason, problem_listing
from gan_zoo.data.splits import natural_key
from gan_zoo.errors import UsageError, data_problem_line

logger = logging.getLogger(__name__)


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
    patches, problems, ignored = _list_patches(root)
    if read_sizes or verify:
        patches, unreadable = _checked(patches, verify)
        problems.extend(unreadable)
    if problems and on_error == "raise":
        raise problem_error(problems, root)
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


def _one_patient_folder(root):
    """True when `root` holds label folders 0/ and 1/ with images, not patients.

    (Patient folders named "0" and "1" would hold label folders, not files.)
    """
    visible = [e for e in os.scandir(root) if not is_ignorable(e.name)]
    if not visible or not all(e.is_dir() and e.name in LABEL_DIRS for e in visible):
        return False
    return any(f.is_file() for e in visible for f in os.scandir(e.path))


def _list_patches(root):
    """Patches named by the layout (sizes unread), problems, ignored entries."""
    patches, problems, ignored = [], [], []
    if not any(True for _ in os.scandir(root)):
        raise IDCLayoutError(
            f"{root} is empty: expected patient folders "
            "<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png."
        )
    root = pathlib.Path(root)
    if _one_patient_folder(root):
        raise IDCLayoutError(
            f"{root} holds the label folders 0/ and 1/ of one patient, not patient "
            f"folders: scan its parent {root.parent}.",
            where=str(root), parent_hint=str(root.parent),
        )
    for patient_entry in sorted(os.scandir(root), key=lambda e: e.name):
        if is_ignorable(patient_entry.name):
            ignored.append(patient_entry.path)
            continue
        if not patient_entry.is_dir():
            problems.append((patient_entry.path,
                             "a file where patient folders are expected"))
            continue
        if not PATIENT_RE.match(patient_entry.name):
            # One line for the folder rather than one per file in it.
            problems.append((patient_entry.path,
                             f"patient folder name {patient_entry.name!r} is not an IDC "
                             f"patient id: {PATIENT_RULE}"))
            continue
        for label_entry in sorted(os.scandir(patient_entry.path),
                                  key=lambda e: e.name):
            if is_ignorable(label_entry.name):
                ignored.append(label_entry.path)
                continue
            if not label_entry.is_dir() or label_entry.name not in LABEL_DIRS:
                problems.append((label_entry.path,
                                 "expected only label folders '0' and '1' in "
                                 "a patient folder"))
                continue
            for f in sorted(os.scandir(label_entry.path), key=lambda e: e.name):
                if is_ignorable(f.name):
                    ignored.append(f.path)
                    continue
                if f.is_symlink() and not os.path.exists(f.path):
                    problems.append((f.path, dangling_link_reason(f.path)))
                    continue
                if not f.is_file():
                    problems.append((f.path, "a folder inside a label folder"))
                    continue
                try:
                    patient, label, x, y = parse_idc_name(
                        patient_entry.name, label_entry.name, f.name)
                except ValueError as e:
                    problems.append((f.path, str(e)))
                    continue
                patches.append(IDCPatch(f.path, patient, label, x, y))
    return patches, problems, ignored


def _checked(patches, verify):
    """Patches with their sizes, decoded by the pipeline's decoder.

    Returns:
        `(readable patches with height and width, (path, reason) problems)`.
        With `verify`, a patch that is not RGB is a problem too.
    """
    from gan_zoo.data.decode import check_images  # TensorFlow only when needed

    kept, problems = [], []
    for patch, check in zip(patches, check_images([p.path for p in patches])):
        if not check.ok:
            problems.append((patch.path, f"unreadable image: {check.problem}"))
        elif verify and check.channels != 3:
            problems.append((patch.path, f"expected an RGB image, got {check.channels} channel(s)"))
        else:
            height, width = check.size
            kept.append(dataclasses.replace(patch, height=height, width=width))
    return kept, problems


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
        read_sizes: read each image's height and width, by decoding it
            with the pipeline's decoder (`gan_zoo.data.decode.check_images`,
            about 12,000 patches a second on two cores); an image it cannot
            decode is a problem, handled per `on_error`.
        verify: as `read_sizes`, and also require RGB (3 channels).
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
            if any(is_ignorable(p) for p in parts):
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
            raise problem_error(problems, archive)
        if not parsed:
            raise IDCLayoutError(f"No IDC patches found in {archive}.")
        for info, patient, label, x, y in parsed:
            yield info.filename, patient, label, x, y, zf.read(info)


def scan_idc_for_command(data_dir, on_error="raise"):
    """`scan_idc` whose errors are one-line UsageErrors (for gan-zoo and the recipes).

    Args:
        data_dir: the IDC folder or archive.
        on_error: "raise" or "skip" (`--on-error`).
    """
    try:
        return scan_idc(data_dir, on_error=on_error)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        raise UsageError(data_problem_line(error)) from None
