"""Tests of gan_zoo.data.image_folder: scanning and verifying image trees."""

import logging

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data.image_folder import (
    ON_ERROR,
    ImageRecord,
    check_on_error,
    mask_records,
    problem_listing,
    scan_image_folder,
    verify_images,
)


def _write_png(path, height=4, width=6, value=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    pixels = np.full(shape, value, np.uint8)
    pixels[0, 0] = 255 - value  # not constant, so compression has work to do
    Image.fromarray(pixels, mode).save(path)
    return path


def _write_truncated_png(path):
    _write_png(path, height=32, width=32)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def tree(tmp_path):
    """root/{benign,malignant}/... with a nested folder and a hidden file."""
    root = tmp_path / "root"
    _write_png(root / "malignant" / "p2_a.png")
    _write_png(root / "malignant" / "p2_b.png")
    _write_png(root / "benign" / "p1_a.png")
    _write_png(root / "benign" / "deep" / "p1_b.PNG", height=5, width=7)
    (root / "benign" / "._p1_a.png").write_bytes(b"macOS resource fork")
    (root / "benign" / "notes.txt").write_text("not an image")
    return root


def test_scan_lists_classes_in_sorted_order(tree):
    folder = scan_image_folder(tree)
    assert folder.class_names == ("benign", "malignant")
    assert folder.class_counts() == {"benign": 2, "malignant": 2}
    assert folder.labels == [0, 0, 1, 1]
    assert all(isinstance(r, ImageRecord) for r in folder.records)
    assert any(p.endswith("p1_b.PNG") for p in folder.paths)  # nested, upper-case
    assert not any("._" in p for p in folder.paths)  # hidden files ignored
    assert folder.skipped == ()
    assert len(folder) == 4


def test_scan_with_given_class_order_and_groups(tree):
    def patient(path):
        return path.rsplit("/", 1)[-1].split("_")[0]

    folder = scan_image_folder(tree, class_names=["malignant", "benign"], group_fn=patient)
    assert folder.class_names == ("malignant", "benign")
    assert folder.labels == [0, 0, 1, 1]
    assert folder.groups == ["p2", "p2", "p1", "p1"]


def test_scan_with_unknown_class_name_names_it(tree):
    with pytest.raises(FileNotFoundError, match="normal"):
        scan_image_folder(tree, class_names=["benign", "normal"])


def test_scan_reads_sizes_from_headers(tree):
    folder = scan_image_folder(tree, read_sizes=True)
    sizes = {r.path.rsplit("/", 1)[-1]: r.size for r in folder.records}
    assert sizes["p1_b.PNG"] == (5, 7)
    assert sizes["p1_a.png"] == (4, 6)


def test_missing_root_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_image_folder(missing)


def test_empty_root_names_folder_and_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"No images found in .*\.png"):
        scan_image_folder(tmp_path)


def test_empty_class_folder_is_named(tree):
    (tree / "normal").mkdir()
    with pytest.raises(ValueError, match=r"normal holds no images"):
        scan_image_folder(tree)


def test_images_without_class_folders_are_an_error(tmp_path):
    _write_png(tmp_path / "a.png")
    with pytest.raises(ValueError, match="no class folders"):
        scan_image_folder(tmp_path)


def test_unlisted_image_extensions_are_warned_about(tree, caplog):
    (tree / "benign" / "scan.tif").write_bytes(b"II*\0")
    with caplog.at_level(logging.WARNING):
        folder = scan_image_folder(tree)
    assert len(folder) == 4
    assert ".tif" in caplog.text


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_verify_raises_naming_the_bad_file(tree, kind):
    bad = tree / "benign" / f"{kind}.png"
    if kind == "garbage":
        bad.write_bytes(b"this is not a png" * 10)
    else:
        _write_truncated_png(bad)
    scan_image_folder(tree)  # without verify the file is only listed
    with pytest.raises(ValueError, match=f"{kind}.png"):
        scan_image_folder(tree, verify=True)


def test_verify_skip_records_and_counts_bad_files(tree, caplog):
    _write_truncated_png(tree / "benign" / "truncated.png")
    (tree / "malignant" / "garbage.png").write_bytes(b"\x89PNG but not really")
    with caplog.at_level(logging.WARNING):
        folder = scan_image_folder(tree, verify=True, on_error="skip")
    assert len(folder) == 4
    skipped = dict(folder.skipped)
    assert set(p.rsplit("/", 1)[-1] for p in skipped) == {"truncated.png", "garbage.png"}
    assert all(reason for reason in skipped.values())
    assert "Skipped 2 unreadable" in caplog.text


def test_verify_images_catches_truncated_jpeg(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:-200])
    (problem,) = verify_images([good, bad], on_error="skip")
    assert problem[0] == str(bad) and "truncated JPEG" in problem[1]
    with pytest.raises(ValueError, match="bad.jpg"):
        verify_images([good, bad])


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.png", b"", "the file is empty"),
        ("garbage.png", b"not an image at all", "unrecognised format"),
        ("truncated.png", None, "truncated PNG"),
        ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40 + b"IEND\xaeB`\x82", "corrupt"),
    ],
)
def test_one_checker_names_the_file_and_the_problem(tree, name, content, reason):
    # The scanners and the pipeline share one TensorFlow-based checker, so
    # they agree on what is unreadable and say why in the same words.
    from gan_zoo.data import idc
    from gan_zoo.data.decode import check_images

    bad = tree / "benign" / name
    if content is None:
        _write_truncated_png(bad)
    else:
        bad.write_bytes(content)
    (check,) = [c for c in check_images([bad, tree / "benign" / "p1_a.png"]) if not c.ok]
    assert check.path == str(bad) and reason in check.problem
    with pytest.raises(ValueError, match=rf"{name}: {reason}"):
        scan_image_folder(tree, verify=True)
    assert verify_images([bad], on_error="skip") == [(str(bad), check.problem)]
    patient = tree.parent / "idc" / "100" / "0"
    patient.mkdir(parents=True)
    (patient / "100_idx5_x1_y1_class0.png").write_bytes(bad.read_bytes())
    with pytest.raises(idc.IDCLayoutError, match=reason):
        idc.scan_idc(tree.parent / "idc")


def test_sizes_and_channels_come_from_the_decoder(tree):
    from gan_zoo.data.decode import check_images

    gray = _write_png(tree / "benign" / "gray.png", height=3, width=2, mode="L")
    checks = check_images([gray, tree / "benign" / "p1_a.png"])
    checks = {c.path.rsplit("/", 1)[-1]: c for c in checks}
    assert (checks["gray.png"].size, checks["gray.png"].channels) == ((3, 2), 1)
    assert (checks["p1_a.png"].size, checks["p1_a.png"].channels) == ((4, 6), 3)
    assert check_images([]) == []


def test_mask_records_keep_label_and_group():
    records = [ImageRecord("a.png", 1, group="p", mask_path="a_mask.png")]
    assert mask_records(records) == [ImageRecord("a_mask.png", 1, group="p")]
    with pytest.raises(ValueError, match="b.png has no mask_path"):
        mask_records([ImageRecord("b.png", 0)])


def test_bad_on_error_value_is_rejected(tree):
    with pytest.raises(ValueError, match="on_error"):
        scan_image_folder(tree, on_error="ignore")


def test_check_on_error_accepts_only_the_listed_values():
    for value in ON_ERROR:
        check_on_error(value)
    with pytest.raises(ValueError, match=r"on_error must be one of .*'ignore'"):
        check_on_error("ignore")


def test_problem_listing_shows_the_first_ones_and_counts_the_rest():
    problems = [(f"f{i}.png", "empty") for i in range(5)]
    assert problem_listing(problems, limit=2) == (
        "  f0.png: empty\n  f1.png: empty\n  ... and 3 more"
    )
    assert problem_listing(problems[:1]) == "  f0.png: empty"
