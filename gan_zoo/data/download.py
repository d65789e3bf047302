"""Verified downloads and safe archive extraction, for data sets and weights.

`download_file` streams a URL (`https://`, `http://` or `file://`) into
`<dest>.part`, checks its size and SHA-256 and only then renames it to `dest`,
so a file at `dest` is always complete. `safe_extract` unpacks a zip or tar
archive after checking every member, into a hidden folder beside the target
that is renamed into place at the end, so a killed extraction never leaves a
half-filled folder under the final name.

Example:

    >>> path = download_file(
    ...     "https://example.org/weights.h5", "weights/dcgan.weights.h5",
    ...     sha256="3b4c...")
    >>> files = safe_extract("IDC_regular_ps50_idx5.zip", "data/idc")
"""

import hashlib
import logging
import os
import pathlib
import posixpath
import re
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_USER_AGENT = "gan_zoo-downloader/0.1 (+python urllib)"


class DownloadError(RuntimeError):
    """A download failed: unreachable URL, truncated transfer, wrong size."""


class ChecksumError(DownloadError):
    """A file's SHA-256 differs from the expected one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction target."""


def sha256_of(path, chunk_size=_CHUNK):
    """Hex SHA-256 digest of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalise_sha256(sha256):
    if sha256 is None:
        return None
    value = str(sha256).strip().lower()
    if not _SHA256_RE.match(value):
        raise ValueError(
            f"sha256 must be 64 hexadecimal characters, got {sha256!r}."
        )
    return value


def _dest_for(url, dest):
    dest = pathlib.Path(dest).expanduser()
    if dest.is_dir():
        name = posixpath.basename(urllib.parse.urlparse(url).path)
        if not name:
            raise ValueError(
                f"{dest} is a folder and the URL {url} has no file name: "
                "pass the full destination file path."
            )
        dest = dest / urllib.parse.unquote(name)
    return dest


def _check_existing(url, dest, sha256, expected_size):
    """Returns True when `dest` can be reused as the download of `url`."""
    size = dest.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(
            f"{dest} already exists but has {size} bytes, expected "
            f"{expected_size} for {url}. Delete it or pass overwrite=True."
        )
    actual = sha256_of(dest)
    if sha256 is None:
        logger.warning(
            "Reusing existing %s without verification (no sha256 given); "
            "its SHA-256 is %s.", dest, actual,
        )
        return True
    if actual != sha256:
        raise ChecksumError(
            f"{dest} already exists but its SHA-256 is {actual}, expected "
            f"{sha256} for {url}. Delete it or pass overwrite=True to "
            "download again."
        )
    logger.info("Reusing %s (SHA-256 verified).", dest)
    return True


class _Progress:
    """Throttled one-line progress report on stderr."""

    def __init__(self, name, total, enabled):
        self.name, self.total, self.enabled = name, total, enabled
        self.last = 0.0

    def update(self, done, final=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        mib = done / 2**20
        if self.total:
            text = f"{self.name}: {mib:.1f} / {self.total / 2**20:.1f} MiB"
            text += f" ({100 * done / self.total:.0f}%)"
        else:
            text = f"{self.name}: {mib:.1f} MiB"
        sys.stderr.write("\r" + text + ("\n" if final else ""))
        sys.stderr.flush()


def download_file(
    url,
    dest,
    *,
    sha256=None,
    expected_size=None,
    overwrite=False,
    progress=True,
    timeout=60,
):
    """Downloads `url` to `dest`, verifying size and SHA-256.

    The data are streamed into `<dest>.part`; only a complete, verified file
    is renamed (atomically) to `dest`. On any failure the part file is removed
    and the error names the URL and the problem.

    Args:
        url: `https://`, `http://` or `file://` URL.
        dest: destination file path, or an existing folder (the file name is
            then taken from the URL).
        sha256: expected hex SHA-256 digest. Without it the file is not
            verified: its digest is computed and logged so it can be pinned.
        expected_size: expected size in bytes, or None.
        overwrite: download again even when `dest` exists. Otherwise an
            existing `dest` is reused when its size and digest match (and an
            error is raised when they do not).
        progress: print a progress line on stderr.
        timeout: socket timeout in seconds.

    Returns:
        The `pathlib.Path` of the downloaded (or reused) file.

    Raises:
        ChecksumError: the digest differs from `sha256`.
        DownloadError: the URL cannot be read, or the size is wrong.
    """
    sha256 = _normalise_sha256(sha256)
    dest = _dest_for(url, dest)
    if dest.exists() and not overwrite:
        if not dest.is_file():
            raise DownloadError(f"{dest} exists and is not a file.")
        _check_existing(url, dest, sha256, expected_size)
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    done = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DownloadError(f"Cannot open {url}: {e}") from e
        with response, open(part, "wb") as out:
            header = response.headers.get("Content-Length")
            announced = int(header) if header and header.isdigit() else None
            if (
                expected_size is not None
                and announced is not None
                and announced != expected_size
            ):
                raise DownloadError(
                    f"{url} announces {announced} bytes, expected "
                    f"{expected_size}."
                )
            report = _Progress(dest.name, announced or expected_size, progress)
            while True:
                try:
                    block = response.read(_CHUNK)
                except OSError as e:
                    raise DownloadError(
                        f"Reading {url} failed after {done} bytes: {e}"
                    ) from e
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                report.update(done)
            report.update(done, final=True)
        if announced is not None and done != announced:
            raise DownloadError(
                f"Download of {url} is truncated: got {done} bytes, the "
                f"server announced {announced}."
            )
        if expected_size is not None and done != expected_size:
            raise DownloadError(
                f"Download of {url} has {done} bytes, expected {expected_size}."
            )
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise ChecksumError(
                f"SHA-256 mismatch for {url}: expected {sha256}, got {actual} "
                f"({done} bytes). The partial file was removed."
            )
        os.replace(part, dest)
    except BaseException:
        # Never leave a part file that a later run could mistake for data.
        part.unlink(missing_ok=True)
        raise
    if sha256 is None:
        logger.warning(
            "Downloaded %s to %s (%d bytes) WITHOUT verification: no sha256 "
            "was given. Its SHA-256 is %s; pass it as sha256= to pin it.",
            url, dest, done, actual,
        )
    else:
        logger.info("Downloaded %s to %s (%d bytes, SHA-256 verified).",
                    url, dest, done)
    return dest


# ----------------------------------------------------------------------------
# Safe extraction.


def _archive_kind(archive):
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ValueError(
        f"{archive} is neither a zip nor a tar archive (.tar, .tar.gz, "
        ".tar.bz2, .tar.xz)."
    )


def _check_member_name(archive, name):
    """Rejects absolute names and `..` components; returns the clean name."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} has an absolute path; refusing to "
            "extract."
        )
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} contains a '..' component; refusing "
            "to extract."
        )
    return "/".join(parts)


def _refuse_link(archive, member_name, link_target, hard):
    """Links are refused, whatever their target.

    A link's target cannot be judged by its text alone: a link `s -> .`
    followed by `s/up -> ..` passes a lexical check yet points outside the
    extraction folder, and a later member `s/up/x` would be written there.
    No data set the zoo reads needs links in its archive.
    """
    kind = "hard link" if hard else "symbolic link"
    raise UnsafeArchiveError(
        f"{archive}: member {member_name!r} is a {kind} (to {link_target!r}); archives "
        "with links are refused, so that nothing is written outside the target folder."
    )


def _zip_is_symlink(info):
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(archive, tmp):
    written = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = []
        for info in infos:
            clean = _check_member_name(archive, info.filename)
            if not clean:
                continue
            if _zip_is_symlink(info):
                target = zf.read(info).decode("utf-8", errors="replace")
                _refuse_link(archive, info.filename, target, hard=False)
            plan.append((info, clean))
        for info, clean in plan:
            out = tmp.joinpath(*clean.split("/"))
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            written.append(clean)
    return written


def _extract_tar(archive, tmp):
    written = []
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member_name(archive, m.name)
            if m.issym() or m.islnk():
                _refuse_link(archive, m.name, m.linkname, hard=m.islnk())
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} is a device or pipe; "
                    "refusing to extract."
                )
        # Python's "data" filter re-checks paths and links and drops unsafe
        # permission bits (defence in depth on top of the checks above).
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(tmp, members=members, **kwargs)
        for m in members:
            if not m.isdir():
                clean = _check_member_name(archive, m.name)
                if clean:
                    written.append(clean)
    return written


def safe_extract(archive, target, *, overwrite=False):
    """Extracts a zip or tar(.gz/.bz2/.xz) archive into `target` safely.

    Every member is checked before anything is written: absolute paths, `..`
    components, symbolic and hard links (wherever they point) and (tar)
    devices or pipes are refused with an `UnsafeArchiveError` naming the
    member. The archive is
    unpacked into a hidden temporary folder in `target`'s parent which is
    renamed to `target` only once extraction has finished, so a killed
    extraction leaves at most a `.<target>.partial-*` folder, never a
    half-filled `target`.

    Args:
        archive: path of the archive; the format is detected from its content.
        target: folder to create; the archive's members end up inside it.
        overwrite: replace an existing `target` (after a successful
            extraction). Without it an existing `target` is an error.

    Returns:
        The paths (under `target`) of the extracted files and links, in
        archive order.
    """
    archive = pathlib.Path(archive).expanduser()
    target = pathlib.Path(target).expanduser()
    if not archive.is_file():
        raise FileNotFoundError(f"Archive {archive} does not exist.")
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"Extraction target {target} already exists; pass overwrite=True "
            "to replace it."
        )
    kind = _archive_kind(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        written = (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp)
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Extracted %d files from %s into %s.", len(written), archive,
                target)
    return [target.joinpath(*name.split("/")) for name in written]
