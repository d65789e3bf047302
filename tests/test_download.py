"""download_file (through file:// URLs) and safe_extract."""

import hashlib
import io
import logging
import os
import stat
import tarfile
import zipfile

import pytest

from gan_zoo.data import download
from gan_zoo.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_file,
    safe_extract,
    sha256_of,
)

PAYLOAD = b"gan_zoo test payload\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA = "0" * 64


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "remote" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- download


def test_sha256_of(source):
    assert sha256_of(source) == PAYLOAD_SHA


def test_download_verified(source, tmp_path):
    dest = tmp_path / "out" / "w.bin"
    got = download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA.upper(),
                        expected_size=len(PAYLOAD), progress=False)
    assert got == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["w.bin"]  # no .part file


def test_download_into_folder_takes_url_name(source, tmp_path):
    got = download_file(source.as_uri(), tmp_path, sha256=PAYLOAD_SHA,
                        progress=True)
    assert got == tmp_path / "weights.bin"


def test_hash_mismatch_names_url_and_digests_and_removes_part(source, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(ChecksumError) as e:
        download_file(source.as_uri(), dest, sha256=WRONG_SHA, progress=False)
    message = str(e.value)
    assert source.as_uri() in message
    assert WRONG_SHA in message and PAYLOAD_SHA in message
    assert not dest.exists()
    assert not (tmp_path / "w.bin.part").exists()


def test_size_mismatch(source, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match="expected 5"):
        download_file(source.as_uri(), dest, expected_size=5, progress=False)
    assert _leftovers(tmp_path) == ["remote"]


def test_existing_file_with_right_hash_is_reused(source, tmp_path):
    dest = tmp_path / "w.bin"
    download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False)
    source.unlink()  # a second download would now fail
    mtime = dest.stat().st_mtime_ns
    assert download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA,
                         progress=False) == dest
    assert dest.stat().st_mtime_ns == mtime


def test_existing_file_with_wrong_hash_is_an_error(source, tmp_path):
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="overwrite=True"):
        download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA,
                         overwrite=True, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD


def test_unverified_download_logs_digest(source, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=download.__name__):
        download_file(source.as_uri(), tmp_path / "w.bin", progress=False)
    assert "WITHOUT verification" in caplog.text
    assert PAYLOAD_SHA in caplog.text


def test_missing_url_names_it(tmp_path):
    url = (tmp_path / "nope.bin").as_uri()
    with pytest.raises(DownloadError, match="nope.bin"):
        download_file(url, tmp_path / "x.bin", progress=False)
    assert not (tmp_path / "x.bin.part").exists()


def test_bad_sha_string(source, tmp_path):
    with pytest.raises(ValueError, match="64 hexadecimal"):
        download_file(source.as_uri(), tmp_path / "x", sha256="abc")


# ---------------------------------------------------------------- extraction

FILES = {"top/a.txt": b"alpha", "top/sub/b.txt": b"beta", "c.txt": b"gamma"}


def _zip(path, entries):
    """entries: (name, bytes) or (name, bytes, 'symlink')."""
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            if len(entry) == 3:
                info = zipfile.ZipInfo(entry[0])
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, entry[1])
            else:
                zf.writestr(entry[0], entry[1])
    return path


def _tar(path, entries, mode="w:gz"):
    """entries: (name, bytes) files or (name, target, 'sym'|'hard') links."""
    with tarfile.open(path, mode) as tf:
        for entry in entries:
            info = tarfile.TarInfo(entry[0])
            if len(entry) == 3:
                info.type = tarfile.SYMTYPE if entry[2] == "sym" else tarfile.LNKTYPE
                info.linkname = entry[1]
                tf.addfile(info)
            else:
                info.size = len(entry[1])
                tf.addfile(info, io.BytesIO(entry[1]))
    return path


def _assert_full(target, written):
    assert sorted(p.relative_to(target).as_posix() for p in written) == sorted(FILES)
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data


def test_zip_extracts_fully(tmp_path):
    archive = _zip(tmp_path / "a.zip", list(FILES.items()))
    target = tmp_path / "out"
    _assert_full(target, safe_extract(archive, target))
    assert _leftovers(tmp_path) == ["a.zip", "out"]  # no temporary folder


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"),
                                         (".tar.bz2", "w:bz2"),
                                         (".tar.xz", "w:xz")])
def test_tar_extracts_fully(tmp_path, suffix, mode):
    archive = _tar(tmp_path / f"a{suffix}", list(FILES.items()), mode)
    target = tmp_path / "out"
    _assert_full(target, safe_extract(archive, target))


def test_a_chain_of_links_cannot_write_outside_the_target(tmp_path):
    # Each link looks harmless on its own (s -> ., s/up -> .. is "."
    # lexically), but together they lead out of the target, and the file
    # after them would be written there.
    archive = _zip(tmp_path / "bad.zip", [
        ("s", ".", "symlink"), ("s/up", "..", "symlink"), ("s/up/evil.txt", b"x"),
    ])
    (tmp_path / "inside").mkdir()
    with pytest.raises(UnsafeArchiveError, match="archives with links are refused"):
        safe_extract(archive, tmp_path / "inside" / "out")
    assert not (tmp_path / "inside" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert _leftovers(tmp_path / "inside") == []


def test_inner_links_are_refused_too(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("d/f.txt", b"x"), ("d/link", "f.txt", "sym")])
    with pytest.raises(UnsafeArchiveError, match="'d/link' is a symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.tar.gz"]


UNSAFE_ZIPS = {
    "dotdot": [("ok.txt", b"1"), ("../evil.txt", b"x")],
    "nested_dotdot": [("a/../../evil.txt", b"x")],
    "absolute": [("/tmp/evil.txt", b"x")],
    "escaping_symlink": [("link", "../../outside", "symlink")],
    "absolute_symlink": [("link", "/etc/passwd", "symlink")],
    "inner_symlink": [("f.txt", b"x"), ("link", "f.txt", "symlink")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_ZIPS))
def test_zip_refuses_unsafe_members(tmp_path, case):
    entries = UNSAFE_ZIPS[case]
    archive = _zip(tmp_path / "bad.zip", entries)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as e:
        safe_extract(archive, target)
    assert repr(entries[-1][0]) in str(e.value)  # names the member
    assert _leftovers(tmp_path) == ["bad.zip"]  # nothing written at all


UNSAFE_TARS = {
    "dotdot": [("ok.txt", b"1"), ("../evil.txt", b"x")],
    "absolute": [("/tmp/evil.txt", b"x")],
    "escaping_symlink": [("d/link", "../../outside", "sym")],
    "absolute_symlink": [("link", "/etc/passwd", "sym")],
    "escaping_hardlink": [("link", "../outside", "hard")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TARS))
def test_tar_refuses_unsafe_members(tmp_path, case):
    entries = UNSAFE_TARS[case]
    archive = _tar(tmp_path / "bad.tar.gz", entries)
    with pytest.raises(UnsafeArchiveError) as e:
        safe_extract(archive, tmp_path / "out")
    assert repr(entries[-1][0]) in str(e.value)
    assert _leftovers(tmp_path) == ["bad.tar.gz"]


def test_interrupted_extraction_leaves_no_target(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "a.zip", list(FILES.items()))
    calls = []

    def dying_copy(src, dst, length=0):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were stopped
        dst.write(src.read())

    monkeypatch.setattr(download.shutil, "copyfileobj", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.zip"]


def test_existing_target(tmp_path):
    archive = _zip(tmp_path / "a.zip", list(FILES.items()))
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="out"):
        safe_extract(archive, target)
    _assert_full(target, safe_extract(archive, target, overwrite=True))
    assert not (target / "old.txt").exists()
    assert _leftovers(tmp_path) == ["a.zip", "out"]


def test_not_an_archive(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        safe_extract(path, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")
