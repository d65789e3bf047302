"""IDC scanning, splits, class balance and download (synthetic + real data)."""

import hashlib
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data import idc
from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.idc import IDCLayoutError
from gan_zoo.data.splits import assert_disjoint

# (patient, label, x, y, height, width); 9381 is a Cruz-Roa validation
# patient, 12909 a test patient, 100 and 200 are "train".
PATCHES = [
    ("100", 0, 1, 1, 50, 50),
    ("100", 0, 51, 1, 50, 50),
    ("100", 1, 101, 51, 42, 50),  # edge crop: 42 rows
    ("200", 0, 1, 1, 50, 50),
    ("200", 1, 51, 1, 50, 13),  # edge crop: 13 columns
    ("9381", 0, 1, 1, 50, 50),
    ("9381", 1, 51, 51, 50, 50),
    ("12909", 1, 1, 1, 50, 50),
]


def _name(patient, label, x, y):
    return f"{patient}_idx5_x{x}_y{y}_class{label}.png"


def _png(path, height, width, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def make_idc(root, patches=PATCHES):
    for i, (patient, label, x, y, h, w) in enumerate(patches):
        _png(root / patient / str(label) / _name(patient, label, x, y), h, w, i)
    return root


def make_idc_zip(path, top=idc.IDC_TOP_FOLDER + "/"):
    folder = make_idc(path.parent / "src")
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.rglob("*.png")):
            zf.write(f, top + f.relative_to(folder).as_posix())
    return path


# ---------------------------------------------------------------- scanning


def test_scan_kaggle_layout(tmp_path):
    ds = idc.scan_idc(make_idc(tmp_path / "idc"))
    assert len(ds) == ds.num_patches == 8
    assert ds.patients == ("100", "200", "9381", "12909")  # numeric order
    assert ds.class_counts == {0: 4, 1: 4}
    assert ds.patient_counts["100"] == {0: 2, 1: 1}
    p = next(p for p in ds.patches if p.x == 101)
    assert (p.patient, p.label, p.y, p.height, p.width) == ("100", 1, 51, 42, 50)
    assert p.path.endswith(_name("100", 1, 101, 51))
    assert p.off_size and p.group == "100"
    assert len(ds.off_size) == 2
    assert ds.off_size_counts == {(42, 50): 1, (50, 13): 1}
    summary = ds.summary()
    assert "8 patches from 4 patients" in summary
    assert "off-size" in summary and "42x50: 1" in summary
    assert "size_policy='pad_end'" in summary


def test_size_policy_pads_where_the_slide_ended():
    # Patches are cut at their top-left corner (x, y): an edge crop lacks the
    # rows and columns beyond the slide's bottom and right edges.
    assert idc.IDC_SIZE_POLICY == "pad_end"


def test_records_are_image_records(tmp_path):
    ds = idc.scan_idc(make_idc(tmp_path / "idc"))
    records = ds.records(["200"])
    assert records == [
        ImageRecord(str(tmp_path / "idc/200/0" / _name("200", 0, 1, 1)), 0,
                    group="200", size=(50, 50)),
        ImageRecord(str(tmp_path / "idc/200/1" / _name("200", 1, 51, 1)), 1,
                    group="200", size=(50, 13)),
    ]
    assert len(ds.records()) == 8
    assert ds.labels(["200"]) == [0, 1]


def test_label_folder_disagreeing_with_file_name_names_the_file(tmp_path):
    root = make_idc(tmp_path / "idc")
    bad = root / "100" / "0" / _name("100", 1, 7, 7)
    _png(bad, 50, 50, 0)
    with pytest.raises(IDCLayoutError) as e:
        idc.scan_idc(root)
    assert str(bad) in str(e.value)
    assert "class 1" in str(e.value) and "label folder '0'" in str(e.value)


def test_patient_folder_disagreeing_with_file_name(tmp_path):
    root = make_idc(tmp_path / "idc")
    bad = root / "100" / "1" / _name("999", 1, 7, 7)
    _png(bad, 50, 50, 0)
    with pytest.raises(IDCLayoutError, match="patient '999' differs"):
        idc.scan_idc(root)


def test_bad_names_raise_or_are_skipped_and_counted(tmp_path):
    root = make_idc(tmp_path / "idc")
    bad = root / "100" / "0" / "scan.png"
    _png(bad, 50, 50, 0)
    (root / "notes.txt").write_text("x")
    with pytest.raises(IDCLayoutError) as e:
        idc.scan_idc(root)
    assert "2 problem(s)" in str(e.value)
    assert str(bad) in str(e.value) and "notes.txt" in str(e.value)
    ds = idc.scan_idc(root, on_error="skip")
    assert len(ds) == 8
    assert sorted(path for path, _ in ds.skipped) == sorted(
        [str(bad), str(root / "notes.txt")])
    assert "skipped files" in ds.summary()


def test_hidden_entries_are_ignored_but_listed(tmp_path):
    root = make_idc(tmp_path / "idc")
    (root / ".DS_Store").write_text("x")
    (root / "100" / "0" / "._junk").write_text("x")
    ds = idc.scan_idc(root)
    assert len(ds) == 8 and len(ds.ignored) == 2


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IDCLayoutError, match="empty"):
        idc.scan_idc(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        idc.scan_idc(tmp_path / "missing")
    (tmp_path / "only_hidden" / ".x").mkdir(parents=True)
    with pytest.raises(IDCLayoutError, match="No IDC patches"):
        idc.scan_idc(tmp_path / "only_hidden")


def test_unreadable_image(tmp_path):
    root = make_idc(tmp_path / "idc")
    bad = root / "200" / "0" / _name("200", 0, 99, 99)
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(IDCLayoutError, match="unreadable image"):
        idc.scan_idc(root)
    assert len(idc.scan_idc(root, read_sizes=False)) == 9  # names only
    assert len(idc.scan_idc(root, on_error="skip")) == 8


def test_without_sizes(tmp_path):
    ds = idc.scan_idc(make_idc(tmp_path / "idc"), read_sizes=False)
    assert ds.patches[0].size is None
    assert ds.records()[0].size is None
    with pytest.raises(ValueError, match="read_sizes=True"):
        _ = ds.off_size
    assert "not read" in ds.summary()


def test_original_top_folder_layout(tmp_path):
    make_idc(tmp_path / "download" / idc.IDC_TOP_FOLDER)
    (tmp_path / "download" / idc.IDC_ZIP_NAME).write_bytes(b"")
    ds = idc.scan_idc(tmp_path / "download")
    assert len(ds) == 8
    assert ds.root == str(tmp_path / "download" / idc.IDC_TOP_FOLDER)
    assert ds.ignored == (str(tmp_path / "download" / idc.IDC_ZIP_NAME),)


@pytest.mark.parametrize("top", [idc.IDC_TOP_FOLDER + "/", ""])
def test_zip_is_extracted_once_then_scanned(tmp_path, monkeypatch, top):
    archive = make_idc_zip(tmp_path / idc.IDC_ZIP_NAME, top)
    ds = idc.scan_idc(archive)
    assert len(ds) == 8 and ds.patients == ("100", "200", "9381", "12909")
    assert (tmp_path / idc.IDC_TOP_FOLDER).is_dir()

    def no_extract(*args, **kwargs):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(idc.scan, "safe_extract", no_extract)
    assert len(idc.scan_idc(archive)) == 8


def test_zip_into_cache_dir_and_read_in_place(tmp_path):
    archive = make_idc_zip(tmp_path / idc.IDC_ZIP_NAME)
    ds = idc.scan_idc(archive, cache_dir=tmp_path / "cache")
    assert ds.root.startswith(str(tmp_path / "cache"))
    items = list(idc.iter_idc_zip(archive))
    assert len(items) == 8
    name, patient, label, x, y, data = items[0]
    assert name.startswith(idc.IDC_TOP_FOLDER + "/") and data[:4] == b"\x89PNG"


# ---------------------------------------------------------------- splits


def test_cruz_roa_split_on_synthetic(tmp_path):
    ds = idc.scan_idc(make_idc(tmp_path / "idc"))
    split = idc.idc_split(ds, "cruz_roa")
    assert split == {"train": {"100", "200"}, "validation": {"9381"},
                     "test": {"12909"}}
    assert len(split.absent["validation"]) == 28
    assert len(split.absent["test"]) == 48
    assert split.scheme == "cruz_roa"


def test_cruz_roa_lists():
    assert len(idc.CRUZ_ROA_VALIDATION_PATIENTS) == 29
    assert len(idc.CRUZ_ROA_TEST_PATIENTS) == 49
    assert not idc.CRUZ_ROA_VALIDATION_PATIENTS & idc.CRUZ_ROA_TEST_PATIENTS


def test_random_split_and_kfold(tmp_path):
    patches = [(str(p), label, 1, 1 + 50 * label, 50, 50)
               for p in range(300, 320) for label in (0, 1)]
    ds = idc.scan_idc(make_idc(tmp_path / "idc", patches))
    split = idc.idc_split(ds, "random", seed=5)
    assert {k: len(v) for k, v in split.items()} == {
        "train": 14, "validation": 3, "test": 3}
    assert split == idc.idc_split(ds, "random", seed=5)
    folds = idc.idc_kfold(ds, k=4, seed=0)
    assert sorted(p for _, test in folds for p in test) == list(ds.patients)
    with pytest.raises(ValueError, match="Unknown IDC split scheme"):
        idc.idc_split(ds, "by_patch")
    with pytest.raises(ValueError, match="must name 'train'"):
        idc.idc_split(ds, "random", fractions={"train": 0.5, "test": 0.5})


# ---------------------------------------------------------------- balance


def test_class_weights_mean_one():
    labels = [0] * 6 + [1] * 2
    weights = idc.class_weights(labels)
    assert weights == pytest.approx({0: 8 / 12, 1: 8 / 4})
    assert np.mean([weights[y] for y in labels]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"Classes \[1\] have no samples"):
        idc.class_weights([0, 0])
    with pytest.raises(ValueError, match="outside"):
        idc.class_weights([0, 1, 2])


def test_balanced_records():
    records = [ImageRecord(f"{i}.png", int(i < 3), group="p") for i in range(10)]
    under = idc.balanced_records(records, seed=1)
    assert sorted(r.label for r in under) == [0, 0, 0, 1, 1, 1]
    assert len({r.path for r in under}) == 6
    over = idc.balanced_records(records, seed=1, method="oversample")
    assert sorted(r.label for r in over) == [0] * 7 + [1] * 7
    assert {r.path for r in records} <= {r.path for r in over}
    assert idc.balanced_records(records, seed=1) == under


# ---------------------------------------------------------------- download


def test_download_idc_requires_a_checksum_decision(tmp_path):
    with pytest.raises(ValueError, match="verify=False"):
        idc.download_idc(tmp_path)


def test_download_idc_from_file_url(tmp_path, monkeypatch):
    archive = make_idc_zip(tmp_path / "server" / idc.IDC_ZIP_NAME)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(idc.download, "IDC_URL", archive.as_uri())
    folder = idc.download_idc(tmp_path / "data", sha256=digest, progress=False)
    assert folder == tmp_path / "data" / idc.IDC_TOP_FOLDER
    assert len(idc.scan_idc(folder)) == 8
    assert len(idc.scan_idc(tmp_path / "data")) == 8
    # Second call: file reused (hash checked), extraction reused.
    assert idc.download_idc(tmp_path / "data", sha256=digest) == folder


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_idc_counts_and_cruz_roa_split(shared_data):
    ds = idc.scan_idc(shared_data / "idc")
    assert len(ds) == 16766
    assert len(ds.patients) == 230
    assert ds.class_counts == {0: 10452, 1: 6314}
    assert len(ds.off_size) == 103
    assert all(h <= 50 and w <= 50 for h, w in ds.off_size_counts)
    assert not ds.skipped and not ds.ignored

    split = idc.idc_split(ds, "cruz_roa")
    assert len(split["validation"]) == 29
    assert split["test"] == set()
    assert split.absent["test"] == idc.CRUZ_ROA_TEST_PATIENTS  # all 49 absent
    assert not split.absent["validation"]
    assert len(split["train"]) == 201
    assert len(ds.records(split["train"])) == 12549
    assert len(ds.records(split["validation"])) == 4217
    assert_disjoint(split)
