"""Reading a preset: every file checked against its SHA-256, archives extracted safely, the model built."""

import gzip
import io
import json
import os
import pathlib
import tarfile
import urllib.parse
import uuid
import zipfile

from gan_zoo.presets.layout import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    URL_SCHEMES,
    WEIGHTS_FILE,
    PresetError,
    PresetIntegrityError,
    is_archive_name,
    read_json,
    sha256_of,
)


def verify_files(folder, metadata):
    """Checks every file `metadata.json` lists against its SHA-256 and size.

    Args:
        folder: the preset folder.
        metadata: its `metadata.json`.

    Raises:
        PresetIntegrityError: a listed file missing or changed, naming it.
    """
    files = metadata.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files or CONFIG_FILE not in files:
        raise PresetIntegrityError(f"{folder / METADATA_FILE} lists no hashes of {CONFIG_FILE} and "
                                   f"{WEIGHTS_FILE}: not a complete preset.")
    for name, info in files.items():
        path = folder / name
        if pathlib.PurePath(name).name != name:
            raise PresetIntegrityError(f"{folder / METADATA_FILE} lists {name!r}, which is not a file "
                                       "of the preset folder.")
        if not path.is_file():
            raise PresetIntegrityError(f"{path} is missing (metadata.json lists it).")
        digest = sha256_of(path)
        if digest != info.get("sha256"):
            raise PresetIntegrityError(
                f"{path}: SHA-256 {digest[:16]}... differs from the {str(info.get('sha256'))[:16]}... "
                "metadata.json records; the file was changed after publishing: refusing to load it.")


def read_preset(path, verify=True):
    """The `metadata.json` of a preset folder, its files checked.

    Args:
        path: the preset folder.
        verify: check every listed file's SHA-256 (`verify_files`).

    Raises:
        PresetError: not a preset folder; `PresetIntegrityError`: a changed file.
    """
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir():
        raise PresetError(f"Preset folder {folder} does not exist." if not folder.exists()
                          else f"{folder} is not a preset folder (not a folder).")
    if not (folder / METADATA_FILE).is_file():
        raise PresetError(f"{folder} is not a published preset: it has no {METADATA_FILE}.")
    metadata = read_json(folder / METADATA_FILE, "the preset's metadata")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise PresetError(f"{folder / METADATA_FILE} is not the metadata of a gan_zoo preset.")
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise PresetError(f"{folder} was published in preset format {metadata['format_version']}; this "
                          f"gan_zoo reads format {FORMAT_VERSION}: upgrade gan_zoo.")
    if verify:
        verify_files(folder, metadata)
    return metadata


def presets_cache_dir():
    """Where preset archives are extracted: `$KERAS_HOME/gan_zoo/presets` (default `~/.keras`)."""
    return pathlib.Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "gan_zoo" / "presets"


def _preset_root(folder):
    """The folder holding `metadata.json`: `folder` or its only sub-folder."""
    if (folder / METADATA_FILE).is_file():
        return folder
    inner = [p for p in folder.iterdir() if p.is_dir()]
    if len(inner) == 1 and (inner[0] / METADATA_FILE).is_file():
        return inner[0]
    raise PresetError(f"{folder} (an extracted archive) holds no preset: no {METADATA_FILE}.")


def extract_archive(archive, sha256=None, cache_dir=None):
    """Extracts a preset archive (once, keyed by its SHA-256) and returns the preset folder.

    Args:
        archive: a local `.tar.gz` / `.tgz` / `.tar` / `.zip` file.
        sha256: its expected SHA-256, or None.
        cache_dir: where to extract (default `presets_cache_dir()`).

    Raises:
        PresetIntegrityError: the archive's SHA-256 differs from `sha256`.
        PresetError: an unsafe or unreadable archive, or one without a preset.
    """
    from gan_zoo.data.download import UnsafeArchiveError, safe_extract

    archive = pathlib.Path(archive).expanduser()
    if not archive.is_file():
        raise PresetError(f"Preset archive {archive} does not exist.")
    digest = sha256_of(archive)
    if sha256 is not None and digest != str(sha256).strip().lower():
        raise PresetIntegrityError(f"{archive}: SHA-256 {digest[:16]}... differs from the expected "
                                   f"{str(sha256)[:16]}...: refusing to load it.")
    target = pathlib.Path(cache_dir or presets_cache_dir()) / digest[:16]
    if not target.is_dir():
        try:
            safe_extract(archive, target)
        except (FileExistsError, OSError) as error:
            if not target.is_dir():  # not another process extracting the same archive first
                raise PresetError(f"Cannot extract {archive}: {error}") from None
        except (UnsafeArchiveError, ValueError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise PresetError(f"{archive} is not a usable preset archive: {error}") from None
    return _preset_root(target)


def _preset_folder(path, sha256=None):
    """The local preset folder of a folder, a local archive or an archive URL."""
    text = os.fspath(path)
    if urllib.parse.urlparse(text).scheme in URL_SCHEMES:
        from gan_zoo.weights import resolve_weights

        return extract_archive(resolve_weights(text, sha256), sha256)
    local = pathlib.Path(text).expanduser()
    if local.is_file() and is_archive_name(local):
        return extract_archive(local, sha256)
    if sha256 is not None:
        raise PresetError(f"A SHA-256 checks an archive, and {local} is not one: a preset folder's files "
                          "are checked against its metadata.json.")
    return local


def load_preset(path, name=None, sha256=None, **overrides):
    """Builds the model of a published preset; every file is checked first.

    Args:
        path: a preset folder, a local preset archive, or an `http(s)://` /
            `file://` URL of one (then `sha256` is required).
        name: the registry name the preset must hold, or None.
        sha256: the archive's expected SHA-256.
        **overrides: options changed over the preset's config; options that
            shape the weights must keep the preset's values.

    Returns:
        The built (uncompiled) model with the preset's weights.

    Raises:
        PresetIntegrityError: a file changed since publishing (named).
        PresetError: not a preset, or a preset of another model.
    """
    from gan_zoo.registry import get_spec, resolve_config
    from gan_zoo.weights import load_weights_into

    folder = _preset_folder(path, sha256)
    metadata = read_preset(folder)
    saved = read_json(folder / CONFIG_FILE, "the preset's model config")
    registry_name = saved.get("registry_name") if isinstance(saved, dict) else None
    if not isinstance(registry_name, str) or not isinstance(saved.get("config"), dict):
        raise PresetError(f"{folder / CONFIG_FILE} names no registry model and config.")
    if name is not None and name != registry_name:
        raise PresetError(f"{folder} holds a {registry_name!r} model, not a {name!r}.")
    spec = get_spec(registry_name)
    unknown = sorted(set(saved["config"]) - set(spec.config))
    if unknown:
        raise PresetError(f"{folder} was published with gan_zoo {metadata.get('gan_zoo_version')}, whose "
                          f"{registry_name} had options {unknown} that this gan_zoo's has not.")
    config = resolve_config(registry_name, **{**saved["config"], **overrides})
    model = spec.builder(**config)
    return load_weights_into(model, folder / WEIGHTS_FILE)


def _tar_info(name, size=None):
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if size is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info


def write_archive(folder, dest=None):
    """Writes a preset folder as a reproducible `.tar.gz` (one top folder, fixed times and owners).

    The same preset always gives the same bytes, so its SHA-256 can be
    published beside its URL.

    Args:
        folder: the preset folder (checked first).
        dest: the archive (default `<folder>.tar.gz`).

    Returns:
        `(path, sha256)` of the archive.
    """
    folder = pathlib.Path(folder)
    read_preset(folder)
    dest = pathlib.Path(dest) if dest is not None else folder.with_name(folder.name + ".tar.gz")
    temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tar_info(folder.name))
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    with open(path, "rb") as data:
                        tar.addfile(_tar_info(f"{folder.name}/{path.name}", path.stat().st_size), data)
        os.replace(temporary, dest)
    finally:
        temporary.unlink(missing_ok=True)
    return dest, sha256_of(dest)


def archive_metadata(path):
    """The `metadata.json` inside a preset archive (top level or one folder down), or None."""
    def wanted(name):
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        return 0 < len(parts) <= 2 and parts[-1] == METADATA_FILE

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if wanted(n)), None)
            return json.loads(archive.read(name)) if name else None
    with tarfile.open(path) as archive:
        member = next((m for m in archive.getmembers() if m.isfile() and wanted(m.name)), None)
        if member is None:
            return None
        return json.loads(io.TextIOWrapper(archive.extractfile(member)).read())
