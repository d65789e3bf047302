"""Tests of gan_zoo.data.demo: the procedural demo datasets."""

import csv
import functools
import re

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data import demo, idc
from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.pipeline import evaluation_dataset

IDC_NAME = re.compile(r"^(\d+)_idx5_x(\d+)_y(\d+)_class([01])\.png$")


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def histology(tmp_path_factory):
    return demo.make_demo_histology(
        tmp_path_factory.mktemp("histology"), patients=6, patches_per_patient=40
    )


@pytest.fixture(scope="module")
def mammograms(tmp_path_factory):
    return demo.make_demo_mammograms(tmp_path_factory.mktemp("mammography"), patients=6, size=128)


def test_histology_is_deterministic_from_the_seed(tmp_path):
    small = functools.partial(demo.make_demo_histology, patients=2, patches_per_patient=6)
    first, again = small(tmp_path / "a"), small(tmp_path / "b")
    other = small(tmp_path / "c", seed=1)
    assert _files(first) == _files(again)
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in _files(first))
    assert _files(first) != _files(other) or any(
        (first / f).read_bytes() != (other / f).read_bytes() for f in _files(first)
    )


def test_histology_layout_and_names(histology):
    files = _files(histology)
    assert len(files) == 6 * 40
    patients = set()
    for relative in files:
        patient, label, name = relative.split("/")
        match = IDC_NAME.match(name)
        assert match, name
        assert match.group(1) == patient and match.group(4) == label
        assert int(match.group(2)) % 50 == 0 and int(match.group(3)) % 50 == 0
        patients.add(patient)
    assert patients == {str(90001 + i) for i in range(6)}
    # Grid positions are unique within a patient.
    positions = [tuple(IDC_NAME.match(f.split("/")[2]).group(1, 2, 3)) for f in files]
    assert len(set(positions)) == len(positions)


def _load(root):
    pixels, labels = [], []
    for path in sorted(root.rglob("*.png")):
        pixels.append(np.asarray(Image.open(path), np.float32))
        labels.append(int(path.parent.name))
    return pixels, np.array(labels)


def test_histology_classes_differ_but_overlap(histology):
    pixels, labels = _load(histology)
    assert all(p.ndim == 3 and p.shape[2] == 3 for p in pixels)
    assert 0.15 < labels.mean() < 0.45  # about 30% positive
    darkness = np.array([255 - p.mean() for p in pixels])
    purple = np.array([(p[..., 2] - p[..., 0]).mean() for p in pixels])
    assert darkness[labels == 1].mean() > darkness[labels == 0].mean() + 10
    assert purple[labels == 1].mean() > purple[labels == 0].mean()
    # Separable well above chance by darkness alone, but not perfectly.
    best = max(np.mean((darkness > t) == labels) for t in darkness)
    assert 0.7 < best < 0.99


def test_histology_has_edge_crops_and_patient_tints(histology):
    pixels, _ = _load(histology)
    shapes = {p.shape[:2] for p in pixels}
    assert (50, 50) in shapes
    assert any(h < 50 or w < 50 for h, w in shapes)
    assert all(h <= 50 and w <= 50 for h, w in shapes)
    patient_means = [
        np.mean([np.asarray(Image.open(p), np.float32).mean() for p in folder.rglob("*.png")])
        for folder in sorted(histology.iterdir())
    ]
    assert np.ptp(patient_means) > 3


def test_histology_feeds_the_pipeline(histology):
    records = [ImageRecord(str(p), int(p.parent.name)) for p in sorted(histology.rglob("*.png"))]
    dataset = evaluation_dataset(
        records[:40], batch_size=20, image_size=(50, 50), channels=3,
        value_range=(-1.0, 1.0), size_policy=idc.IDC_SIZE_POLICY,
    )
    images, labels = next(iter(dataset))
    assert images.shape == (20, 50, 50, 3)

    # Edge crops are cut at the slide's right or bottom border: IDC's policy
    # pads them there, keeping the tissue at the patch's top-left corner.
    edge = [r for r in records if Image.open(r.path).size != (50, 50)]
    assert edge
    (padded, _), = evaluation_dataset(
        edge[:1], batch_size=1, image_size=(50, 50), value_range=(0.0, 255.0),
        size_policy=idc.IDC_SIZE_POLICY,
    ).as_numpy_iterator()
    tissue = np.asarray(Image.open(edge[0].path))
    h, w = tissue.shape[:2]
    np.testing.assert_allclose(padded[0, :h, :w], tissue, atol=1e-3)
    assert not padded[0, h:].any() and not padded[0, :, w:].any()


def test_mammograms_csv_matches_files(mammograms):
    with open(mammograms / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    assert list(rows[0]) == ["image", "mask", "patient_id", "side", "view", "label"]
    listed = {row["image"] for row in rows} | {row["mask"] for row in rows}
    assert listed == set(_files(mammograms)) - {"labels.csv"}
    for row in rows:
        assert row["mask"] == row["image"].replace("images/", "masks/").replace(".png", "_mask.png")
        assert row["patient_id"] in row["image"] and row["side"] in row["image"]
        assert row["side"] in ("LEFT", "RIGHT") and row["view"] in ("CC", "MLO")
        assert row["label"] in ("MALIGNANT", "BENIGN")
        image = Image.open(mammograms / row["image"])
        mask = np.asarray(Image.open(mammograms / row["mask"]))
        assert image.mode == "L" and image.size == (128, 128)
        assert set(np.unique(mask)) == {0, 255}
        # The mass is brighter than the breast tissue around it.
        pixels = np.asarray(image, np.float32)
        assert pixels[mask > 0].mean() > pixels[pixels > 20].mean()
    views = {}
    for row in rows:
        views.setdefault((row["patient_id"], row["side"]), set()).add((row["view"], row["label"]))
    assert all(len(v) == 2 and len({label for _, label in v}) == 1 for v in views.values())


def test_malignant_masks_are_less_compact(tmp_path):
    root = demo.make_demo_mammograms(tmp_path, patients=16, size=256)
    compactness = {"MALIGNANT": [], "BENIGN": []}
    with open(root / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            mask = np.asarray(Image.open(root / row["mask"])) > 0
            neighbours = [np.roll(mask, shift, axis) for shift in (1, -1) for axis in (0, 1)]
            edge = mask & ~np.logical_and.reduce(neighbours)
            compactness[row["label"]].append(mask.sum() / edge.sum() ** 2)
    assert compactness["MALIGNANT"] and compactness["BENIGN"]
    assert np.mean(compactness["MALIGNANT"]) < np.mean(compactness["BENIGN"])


def test_mammograms_are_deterministic(tmp_path):
    first = demo.make_demo_mammograms(tmp_path / "a", patients=2, size=64)
    again = demo.make_demo_mammograms(tmp_path / "b", patients=2, size=64)
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in _files(first))


@pytest.fixture
def tiny_generators(monkeypatch):
    """demo_dir with small datasets, counting the generator calls."""
    calls = []

    def histology(root):
        calls.append(root)
        return demo.make_demo_histology(root, patients=1, patches_per_patient=4)

    monkeypatch.setitem(demo._GENERATORS, "histology", histology)
    return calls


def test_demo_dir_generates_once(tmp_path, tiny_generators):
    path = demo.demo_dir("histology", root=tmp_path)
    assert path == tmp_path / "histology-v1"
    assert len(list(path.rglob("*.png"))) == 4
    assert demo.demo_dir("histology", root=tmp_path) == path
    assert len(tiny_generators) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["histology-v1"]  # no partial left


def test_demo_dir_uses_the_environment_variable(tmp_path, monkeypatch, tiny_generators):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "env"))
    assert demo.demo_dir("histology") == tmp_path / "env" / "histology-v1"


def test_demo_dir_never_uses_a_half_written_folder(tmp_path, monkeypatch):
    def crash(root):
        demo.make_demo_histology(root, patients=1, patches_per_patient=4)
        raise KeyboardInterrupt  # killed mid-way

    monkeypatch.setitem(demo._GENERATORS, "histology", crash)
    with pytest.raises(KeyboardInterrupt):
        demo.demo_dir("histology", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_demo_dir_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mammography-v1").mkdir()
    with pytest.raises(FileExistsError, match="mammography-v1"):
        demo.demo_dir("mammography", root=tmp_path)
    with pytest.raises(ValueError, match="kind"):
        demo.demo_dir("ultrasound", root=tmp_path)
