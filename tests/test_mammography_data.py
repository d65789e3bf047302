"""Mammography readers: CBIS-DDSM (PNG and TCIA), INbreast, mini-MIAS, patches."""

import csv

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data.demo import make_demo_mammograms
from gan_zoo.data.mammography import (
    detect_layout,
    kfold_by_patient,
    load_grayscale,
    official_split,
    official_split_of,
    patients,
    scan_cbis_ddsm,
    split_by_patient,
)


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def demo_png(tmp_path_factory):
    return make_demo_mammograms(tmp_path_factory.mktemp("demo"), patients=6, size=48)


# ------------------------------------------------------------- CBIS-DDSM PNG


def test_png_layout_reads_demo(demo_png):
    records = scan_cbis_ddsm(demo_png)
    assert detect_layout(demo_png) == "png"
    assert len(records) == 12 and len(patients(records)) == 6
    with open(demo_png / "labels.csv") as handle:
        rows = {r["image"].split("/")[-1]: r for r in csv.DictReader(handle)}
    for record in records:
        row = rows[record.path.split("/")[-1]]
        assert record.label == (1 if row["label"] == "MALIGNANT" else 0)
        assert record.patient_id == row["patient_id"]
        assert (record.side, record.view) == (row["side"], row["view"])
        assert record.mask_path.endswith(row["mask"])
        assert record.official_split is None
    image = load_grayscale(records[0].path)
    assert image.dtype == np.float32 and image.shape == (48, 48)
    assert 0.0 <= image.min() and image.max() <= 1.0


def _png_folder(tmp_path, rows, *, make_files=True):
    for row in rows:
        if make_files:
            (tmp_path / row["image"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / row["image"])
    _write_csv(tmp_path / "labels.csv", rows)
    return tmp_path


def test_png_layout_labels_extras_and_official_split(tmp_path):
    rows = [
        {"image": "images/Mass-Training_P_00001_LEFT_CC_FULL.png", "patient_id": "P_00001",
         "label": "MALIGNANT", "birads": "5"},
        {"image": "images/Mass-Training_P_00002_LEFT_CC_FULL.png", "patient_id": "P_00002",
         "label": "BENIGN_WITHOUT_CALLBACK", "birads": "3"},
        {"image": "images/Mass-Test_P_00003_RIGHT_MLO_FULL.png", "patient_id": "P_00003",
         "label": "BENIGN", "birads": "4"},
        {"image": "images/Mass-Test_P_00001_RIGHT_MLO_FULL.png", "patient_id": "P_00001",
         "label": "benign", "birads": "2"},
    ]
    records = scan_cbis_ddsm(_png_folder(tmp_path, rows))
    by_name = {r.path.split("/")[-1][:22]: r for r in records}
    assert [r.label for r in records] == [0, 0, 1, 0]
    assert by_name["Mass-Training_P_00002_"].extra["birads"] == "3"
    assert by_name["Mass-Training_P_00001_"].mask_path is None
    assert official_split_of("Calc-Test_P_1_LEFT_CC") == "test"
    split = official_split(records)
    assert {r.patient_id for r in split["train"]} == {"P_00001", "P_00002"}
    assert len(split["test"]) == 2
    # P_00001 is on both sides: dropping the overlap leaves only unseen patients.
    split = official_split(records, drop_overlap=True)
    assert [r.patient_id for r in split["test"]] == ["P_00003"]


def test_png_layout_errors_name_file_and_row(tmp_path):
    rows = [{"image": "images/a.png", "patient_id": "P_1", "label": "MAYBE"}]
    with pytest.raises(ValueError, match=r"labels.csv line 2: unknown pathology 'MAYBE'"):
        scan_cbis_ddsm(_png_folder(tmp_path, rows))
    rows = [{"image": "images/b.png", "patient_id": "P_1", "label": "BENIGN"}]
    with pytest.raises(ValueError, match=r"1 files listed .* are missing, e.g. .*b.png"):
        scan_cbis_ddsm(_png_folder(tmp_path, rows, make_files=False))
    _write_csv(tmp_path / "labels.csv", [{"image": "x.png", "label": "BENIGN"}])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['patient_id'\]"):
        scan_cbis_ddsm(tmp_path)
    with pytest.raises(ValueError, match="is not a CBIS-DDSM folder"):
        scan_cbis_ddsm(tmp_path / "images")
    with pytest.raises(ValueError, match="no official split"):
        official_split(scan_cbis_ddsm(_png_folder(tmp_path, rows)))


def test_patient_splits_keep_patients_whole(demo_png):
    records = scan_cbis_ddsm(demo_png)
    folds = kfold_by_patient(records, k=3, seed=0)
    tested = []
    for train, test in folds:
        assert not set(patients(train)) & set(patients(test))
        assert len(train) + len(test) == len(records)
        tested.extend(patients(test))
    assert sorted(tested) == sorted(patients(records))
    splits = split_by_patient(records, {"train": 0.5, "test": 0.5}, seed=1)
    assert not set(patients(splits["train"])) & set(patients(splits["test"]))
    assert kfold_by_patient(records, k=3, seed=0) == folds


def test_real_cbis_ddsm_png(shared_data):
    records = scan_cbis_ddsm(shared_data / "cbis_ddsm_mass")
    assert len(records) == 1231 and len(patients(records)) == 691
    assert all(r.official_split == "train" for r in records)
    assert sum(r.label for r in records) > 500


# ------------------------------------------------------------------- pixels


def test_sixteen_bit_png_and_pgm_keep_their_range(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    image = load_grayscale(tmp_path / "ramp16.png")
    np.testing.assert_allclose(image, ramp / 65535.0, atol=1e-6)
    assert len(np.unique(image)) == 64  # an 8-bit round trip would merge levels
    # A 12-bit PGM scales by its header's maxval, comments allowed.
    twelve = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 60)
    header = b"P5\n# a comment\n8 8\n4095\n"
    (tmp_path / "x.pgm").write_bytes(header + twelve.astype(">u2").tobytes())
    np.testing.assert_allclose(load_grayscale(tmp_path / "x.pgm"), twelve / 4095.0, atol=1e-6)
    eight = np.arange(64, dtype=np.uint8).reshape(8, 8)
    (tmp_path / "y.pgm").write_bytes(b"P5 8 8 255\n" + eight.tobytes())
    np.testing.assert_allclose(load_grayscale(tmp_path / "y.pgm"), eight / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="bit_depth must be"):
        load_grayscale(tmp_path / "x.pgm", bit_depth=17)
    with pytest.raises(ValueError, match="Image file not found"):
        load_grayscale(tmp_path / "none.png")
