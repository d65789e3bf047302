"""Downloading the original IDC release."""

import pathlib

from gan_zoo.data.download import download_file
from gan_zoo.data.idc.layout import IDC_ZIP_NAME
from gan_zoo.data.idc.scan import extract_idc_archive

IDC_URL = "https://andrewjanowczyk.com/wp-static/IDC_regular_ps50_idx5.zip"
"""The original release, as given in the footnote of the semi-supervised cGAN
IDC paper (shared/papers/000_9b6b55d5e2ffc12a.txt). No checksum is published for it:
`download_idc` therefore needs `sha256=` or an explicit `verify=False`."""


def download_idc(target_dir, *, sha256=None, verify=True, progress=True):
    """Downloads `IDC_URL` into `target_dir` and extracts it safely, once.

    No checksum is published for the original archive, so a checksum cannot
    be built in: pass the `sha256` you trust (e.g. from a first download),
    or `verify=False` to accept an unverified file (its digest is then
    logged so you can pin it).

    Args:
        target_dir: where the archive is saved and extracted.
        sha256: the archive's expected SHA-256 digest (hex).
        verify: refuse to download without `sha256`.
        progress: print download progress.

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
