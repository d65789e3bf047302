"""The `idc` TFDS builder (datasets/idc) and `load_idc_tfds`, offline."""

import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from gan_zoo.data import idc, idc_tfds
from gan_zoo.data.pipeline import evaluation_dataset, training_stream

# (patient, label, x, y, height, width)
PATCHES = [
    ("100", 0, 1, 1, 50, 50),
    ("100", 1, 51, 1, 42, 50),  # edge crop: 42 rows
    ("200", 0, 1, 51, 50, 50),
    ("200", 1, 101, 1, 50, 13),  # edge crop: 13 columns
    ("300", 0, 1, 1, 1, 50),  # a one-row sliver, as in the real data
]


def _pixels(i, height, width):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def idc_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("idc_src")
    for i, (patient, label, x, y, h, w) in enumerate(PATCHES):
        path = root / patient / str(label) / (
            f"{patient}_idx5_x{x}_y{y}_class{label}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(i, h, w)).save(path)
    return root


def _expected():
    return {(p, x, y): (label, _pixels(i, h, w))
            for i, (p, label, x, y, h, w) in enumerate(PATCHES)}


def _examples(ds):
    return [{k: v.numpy() for k, v in ex.items()} for ex in ds]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory, idc_folder):
    data_dir = tmp_path_factory.mktemp("tfds")
    idc_tfds.idc_tfds_builder(data_dir, manual_dir=idc_folder)
    return data_dir


def test_raw_round_trip(raw_dir):
    builder = idc_tfds.idc_tfds_builder(raw_dir)  # prepared: no manual_dir needed
    assert builder.name == "idc" and str(builder.version) == "1.0.0"
    assert builder.info.splits["full"].num_examples == len(PATCHES)
    assert builder.info.features["label"].names == ["healthy", "idc"]

    examples = _examples(idc_tfds.load_idc_tfds(raw_dir, with_coordinates=True))
    expected = _expected()
    assert len(examples) == len(PATCHES)
    for ex in examples:
        label, pixels = expected[(ex["patient"].decode(), ex["x"], ex["y"])]
        assert ex["label"] == label
        assert ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"], pixels)  # edge crops as is
    shapes = sorted(ex["image"].shape for ex in examples)
    assert shapes == [(1, 50, 3), (42, 50, 3), (50, 13, 3), (50, 50, 3),
                      (50, 50, 3)]


def test_patient_filter(raw_dir):
    dataset = idc_tfds.load_idc_tfds(raw_dir, patients={"200", "999"})
    # Counted without decoding, so a pipeline needs no counting pass.
    assert int(dataset.cardinality()) == 2
    assert int(idc_tfds.load_idc_tfds(raw_dir).cardinality()) == len(PATCHES)
    examples = _examples(dataset)
    assert sorted(ex["patient"] for ex in examples) == [b"200", b"200"]
    assert set(examples[0]) == {"image", "label", "patient"}
    assert _examples(idc_tfds.load_idc_tfds(raw_dir, patients=[])) == []


def test_read_only_without_builder_code(raw_dir):
    builder = tfds.builder_from_directory(str(raw_dir / "idc" / "raw" / "1.0.0"))
    assert builder.info.splits["full"].num_examples == len(PATCHES)


def test_pad50_config(tmp_path, idc_folder):
    ds = idc_tfds.load_idc_tfds(tmp_path, config="pad50", manual_dir=idc_folder,
                           with_coordinates=True)
    expected = _expected()
    for ex in _examples(ds):
        label, pixels = expected[(ex["patient"].decode(), ex["x"], ex["y"])]
        h, w = pixels.shape[:2]
        assert ex["image"].shape == (50, 50, 3)
        np.testing.assert_array_equal(ex["image"][:h, :w], pixels)
        assert not ex["image"][h:].any() and not ex["image"][:, w:].any()


def test_files_with_the_idc_size_policy_match_pad50(tmp_path, idc_folder):
    """Both routes to 50x50 pad the edge crops where the slide ended."""
    padded = {
        (ex["patient"].decode(), int(ex["x"]), int(ex["y"])): ex["image"]
        for ex in _examples(idc_tfds.load_idc_tfds(
            tmp_path, config="pad50", manual_dir=idc_folder, with_coordinates=True))
    }
    patches = idc.scan_idc(idc_folder).patches
    batches = evaluation_dataset(
        [p.to_record() for p in patches], batch_size=len(patches), image_size=50,
        value_range=(0.0, 255.0), size_policy=idc.IDC_SIZE_POLICY,
    )
    (images, _), = batches.as_numpy_iterator()
    for patch, image in zip(patches, images):
        np.testing.assert_array_equal(
            np.round(image).astype(np.uint8), padded[(patch.patient, patch.x, patch.y)])


def test_pipeline_errors_name_the_patch(raw_dir):
    source = idc_tfds.load_idc_tfds(raw_dir, patients={"100"}, with_coordinates=True)
    stream = training_stream(source, batch_size=2, image_size=50, size_policy="error")
    assert stream.num_examples == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(patient 100, x 51, y 1\) is 42x50"):
        list(stream.dataset)


def test_build_from_zip_in_manual_dir(tmp_path, idc_folder):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / idc.IDC_ZIP_NAME, "w") as zf:
        for f in sorted(idc_folder.rglob("*.png")):
            zf.write(f, f"{idc.IDC_TOP_FOLDER}/{f.relative_to(idc_folder).as_posix()}")
    examples = _examples(idc_tfds.load_idc_tfds(tmp_path / "tfds", manual_dir=manual))
    assert sorted(ex["patient"] for ex in examples) == sorted(
        p[0].encode() for p in PATCHES)
    assert not (manual / idc.IDC_TOP_FOLDER).exists()  # read in place


def test_not_prepared_without_manual_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="manual_dir"):
        idc_tfds.load_idc_tfds(tmp_path)


@pytest.mark.slow
@pytest.mark.shared_data
def test_build_from_real_idc(tmp_path, shared_data):
    builder = idc_tfds.idc_tfds_builder(tmp_path, manual_dir=shared_data / "idc")
    assert builder.info.splits["full"].num_examples == 16766
    validation = idc.CRUZ_ROA_VALIDATION_PATIENTS
    count = sum(1 for _ in idc_tfds.load_idc_tfds(tmp_path, patients=validation))
    assert count == 4217
