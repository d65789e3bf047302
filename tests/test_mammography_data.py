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


# ------------------------------------------------------------- DICOM helpers


def write_dicom(path, pixels, *, bits_stored=16, photometric="MONOCHROME2", description=None,
                patient="anon", window=None):
    """A minimal grayscale DICOM file written with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient
    ds.Modality = "MG"
    pixels = np.asarray(pixels)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if description:
        ds.SeriesDescription = description
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_sixteen_bit_dicom_keeps_its_dynamic_range_through_the_pipeline(tmp_path):
    from gan_zoo.data.mammography import MammogramRecord
    from gan_zoo.data.mammography.arrays import prepare_mammograms
    from gan_zoo.data.mammography.pixels import bit_depth_of
    from gan_zoo.data.mammography.streams import diagram_streams

    # A 14-bit ramp: 4,096 levels in a narrow dense-tissue band (8,000..12,095).
    rows = 8000 + np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 24:40] = 255
    records = []
    for i in range(4):
        dicom = write_dicom(tmp_path / f"img{i}.dcm", rows, bits_stored=14)
        Image.fromarray(mask).save(tmp_path / f"mask{i}.png")
        records.append(MammogramRecord(str(dicom), f"p{i}", label=i % 2,
                                       mask_path=str(tmp_path / f"mask{i}.png")))
    image = load_grayscale(records[0].path)
    np.testing.assert_allclose(image, rows / (2**14 - 1), atol=1e-6)  # / actual bits, not 65535
    assert bit_depth_of(records[0].path) == 14
    whole, patches = prepare_mammograms(records, image_size=64, patch_size=16, patch_copies=2)
    assert whole.bit_depth == 14
    stream = diagram_streams(whole, patches, batch_size=2, epochs=1, flips=False)
    assert stream.kind == "float32"  # not quantised to uint8
    batch = next(iter(stream.dataset))
    levels = np.unique(np.round(batch["images"][0].numpy() * 1e5))
    assert levels.size > 1000  # 8 bits would leave <= 256 levels (here ~64)
    # Windows: "minmax" stretches, "dicom" applies WindowCenter/Width.
    stretched = load_grayscale(records[0].path, window="minmax")
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    windowed = write_dicom(tmp_path / "w.dcm", rows, bits_stored=14, window=(10048, 4096))
    assert load_grayscale(windowed, window="dicom").max() == pytest.approx(1.0, abs=1e-3)
    inverted = write_dicom(tmp_path / "m1.dcm", rows, bits_stored=14, photometric="MONOCHROME1")
    np.testing.assert_allclose(load_grayscale(inverted), 1 - image, atol=1e-6)


# --------------------------------------------------------------- ROI patches


def test_roi_square_crop_on_a_known_mask():
    from gan_zoo.data.mammography.patches import crop_square, fit_whole_image, roi_boxes

    mask = np.zeros((100, 120), np.uint8)
    mask[10:20, 30:60] = 1  # a 10 x 30 ROI: its square is 30 x 30 around it
    mask[70:74, 100:103] = 1  # a second ROI, 4 x 3
    boxes = roi_boxes(mask)
    assert [(b.top, b.left, b.side) for b in boxes] == [(0, 30, 30), (70, 100, 4)]
    image = np.zeros((100, 120), np.float32)
    image[10:20, 30:60] = 1.0
    crop = crop_square(image, boxes[0], 30)
    np.testing.assert_array_equal(crop, image[0:30, 30:60])
    # A box over the edge is padded with 0; resizing keeps the ROI centred.
    assert crop_square(image, roi_boxes(mask, minimum_side=40)[0], 8)[0, 0] == 0.0
    small = crop_square(image, boxes[0], 10)
    assert small.shape == (10, 10) and small[4:6].min() > 0.99 and small[:3].max() < 0.01
    # Whole images: aspect kept, centred padding with 0.
    fitted = fit_whole_image(np.ones((50, 100), np.float32), 64)
    assert fitted.shape == (64, 64)
    np.testing.assert_array_equal(fitted[:16], 0)
    np.testing.assert_allclose(fitted[16:48], 1, atol=1e-6)


def test_augmented_crops_rotate_about_the_roi():
    from gan_zoo.data.mammography.patches import augmented_crops, roi_boxes

    image = np.zeros((80, 80), np.float32)
    image[30:50, 38:42] = 1.0  # a vertical bar: rotated copies differ, centre stays
    box = roi_boxes(image)[0]
    crops = augmented_crops(image, box, 20, 6, np.random.default_rng(0))
    assert crops.shape == (6, 20, 20)
    np.testing.assert_allclose(crops[0].sum(axis=0)[8:12].sum(), crops[0].sum(), rtol=1e-5)
    assert all(c[9:11, 9:11].mean() > 0.5 for c in crops)  # the bar's centre stays put
    assert any(np.abs(c - crops[0]).max() > 0.5 for c in crops[1:])


# ------------------------------------------------------------------ MIAS


def test_mias_bottom_left_coordinates_are_flipped(tmp_path):
    from gan_zoo.data.mammography.arrays import lesion_boxes
    from gan_zoo.data.mammography.mias import scan_mias
    from gan_zoo.data.mammography.patches import crop_square

    size = 128
    image = np.full((size, size), 20, np.uint8)
    # A bright lesion at column 30, row 100 (top-left frame) = MIAS y 27.
    yy, xx = np.mgrid[:size, :size]
    image[(yy - 100) ** 2 + (xx - 30) ** 2 <= 36] = 250
    (tmp_path / "images").mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "mdb001.png")
    Image.fromarray(np.full((size, size), 20, np.uint8)).save(tmp_path / "images" / "mdb002.png")
    header = "image,patient,tissue,abnormality,severity,x,y,radius,image_label\n"
    (tmp_path / "labels.csv").write_text(
        header + "images/mdb001.png,1,G,CIRC,M,30,27,6,malignant\n"
        "images/mdb002.png,1,G,NORM,,,,,normal\n")
    records = scan_mias(tmp_path, height=size)
    assert [r.label for r in records] == [1, 0] and {r.patient_id for r in records} == {"1"}
    (box, label), = lesion_boxes(records[0], (size, size), minimum_side=1)
    crop = crop_square(image / 255.0, box, 12)
    assert label == 1 and crop.mean() > 0.6  # the lesion fills the crop
    # Without the flip the crop would be at row 27: background only.
    assert image[21:33, 24:36].max() == 20
    # The circle as a pixel mask (what ciGAN's lesion patches use without a
    # mask file) covers the drawn lesion and nothing far from it.
    from gan_zoo.data.mammography.arrays import lesion_mask
    from gan_zoo.data.mammography.lesion_patches import sample_patches

    mask = lesion_mask(records[0], (size, size))
    drawn = image == 250
    assert mask[drawn].all() and not mask[(yy - 100) ** 2 + (xx - 30) ** 2 > 64].any()
    patches = sample_patches(records[:1], patch_size=32, normal_per_image=0, seed=0)
    assert len(patches.images) == 1 and patches.masks[0].sum() == mask.sum()
    assert [r.label for r in scan_mias(tmp_path, task="abnormal", height=size)] == [1, 0]
    assert len(scan_mias(tmp_path, task="benign_malignant", height=size)) == 1


def test_mias_original_info_txt_and_pgm(tmp_path):
    from gan_zoo.data.mammography.mias import mias_patient, scan_mias

    pixels = np.zeros((16, 16), np.uint8)
    for name in ("mdb003", "mdb004"):
        (tmp_path / f"{name}.pgm").write_bytes(b"P5\n16 16\n255\n" + pixels.tobytes())
    (tmp_path / "Info.txt").write_text(
        "header text\nmdb003 D CIRC B 5 6 2\nmdb004 D NORM\nmdb005 F CALC M *NOTE 3*\n")
    records = scan_mias(tmp_path, height=16)
    assert [r.patient_id for r in records] == ["2", "2"] == [mias_patient("mdb004")] * 2
    assert records[0].lesions[0].centre == (5.0, 9.0) and records[0].label == 0
    assert load_grayscale(records[0].path).shape == (16, 16)
    with pytest.raises(ValueError, match="task must be one of"):
        scan_mias(tmp_path, task="cancer")


# --------------------------------------------------------------- INbreast


def _roi_plist(points):
    import plistlib

    rois = [{"Name": name, "NumberOfPoints": len(p), "Point_px": [f"({x}, {y})" for x, y in p]}
            for name, p in points]
    return plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]})


def test_inbreast_folder_parses_labels_masks_and_excludes_birads3(tmp_path):
    from gan_zoo.data.mammography.arrays import lesion_boxes, lesion_mask
    from gan_zoo.data.mammography.inbreast import scan_inbreast

    root = tmp_path / "INbreast Release 1.0"
    pixels = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 10)
    rows = ["Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"]
    cases = [("20586908", "aaa1", "R", "CC", "4c"), ("20586934", "aaa1", "R", "MLO", "5"),
             ("22614074", "bbb2", "L", "CC", "2"), ("22614097", "bbb2", "L", "MLO", "1"),
             ("24055274", "ccc3", "L", "CC", "3")]
    for name, patient, side, view, birads in cases:
        write_dicom(root / "AllDICOMs" / f"{name}_{patient}_MG_{side}_{view}_ANON.dcm", pixels,
                    bits_stored=14)
        rows.append(f"removed;;{side};{view};201001;{name};2;{birads}")
    (root / "AllXML").mkdir(parents=True)
    (root / "AllXML" / "20586908.xml").write_bytes(
        _roi_plist([("Mass", [(10, 5), (20, 5), (20, 12), (10, 12)]), ("Calcification", [(3, 28)])]))
    (root / "INbreast.csv").write_text("\n".join(rows) + "\n")
    records = scan_inbreast(tmp_path)
    by_name = {r.extra["file_name"]: r for r in records}
    assert sorted(by_name) == ["20586908", "20586934", "22614074", "22614097"]  # BI-RADS 3 out
    assert [by_name[n].label for n in sorted(by_name)] == [1, 1, 0, 0]
    assert by_name["20586908"].patient_id == "aaa1" and by_name["22614097"].side == "LEFT"
    mass, calcification = by_name["20586908"].lesions
    assert mass.kind == "Mass" and mass.polygon[2] == (20.0, 12.0)
    boxes = lesion_boxes(by_name["20586908"], (32, 32), minimum_side=4)
    assert [(b.top, b.left, b.side) for b, _ in boxes] == [(4, 10, 11), (27, 2, 4)]
    assert all(label == 1 for _, label in boxes)
    # A ROI wholly outside its image is left out and named, not cropped as an empty lesion.
    from gan_zoo.data.mammography.arrays import prepare_mammograms

    (root / "AllXML" / "20586934.xml").write_bytes(_roi_plist([("Mass", [(40, 50), (60, 50), (60, 70)])]))
    outside = scan_inbreast(tmp_path)[1]
    skipped = []
    assert lesion_boxes(outside, (32, 32), skipped=skipped) == []
    assert skipped == [f"{outside.path}: polygon ROI of 3 points lies wholly outside the 32x32 image; skipped"]
    _, patches = prepare_mammograms([by_name["20586908"], outside], image_size=32, patch_size=16,
                                    patch_copies=1)
    assert len(patches) == 2 and len(patches.skipped_rois) == 1 and set(patches.labels) == {1}
    # Pixel masks: the filled mass polygon and the calcification's single point.
    expected = np.zeros((32, 32), bool)
    expected[5:13, 10:21] = True
    expected[28, 3] = True
    np.testing.assert_array_equal(lesion_mask(by_name["20586908"], (32, 32)), expected)
    assert not lesion_mask(by_name["22614074"], (32, 32)).any()
    assert len(scan_inbreast(tmp_path, keep_birads3=True)) == 5
    image = load_grayscale(by_name["20586908"].path)
    np.testing.assert_allclose(image, pixels / (2**14 - 1), atol=1e-6)
    (root / "INbreast.csv").write_text("\n".join(rows + ["removed;;L;CC;2010;999;2;maybe"]))
    with pytest.raises(ValueError, match="unknown BI-RADS value 'maybe'"):
        scan_inbreast(tmp_path)


# ------------------------------------------------------------ CBIS-DDSM TCIA


def test_tcia_layout_merges_lesions_and_tells_mask_from_crop(tmp_path):
    full = np.zeros((40, 30), np.uint16)
    mask = np.zeros((40, 30), np.uint8)
    mask[5:15, 5:12] = 255
    crop = np.ones((10, 7), np.uint8)
    header = ("patient_id,breast_density,left_or_right_breast,image_view,abnormality_id,"
              "abnormality_type,mass_shape,mass_margins,assessment,pathology,subtlety,"
              "image_file_path,cropped_image_file_path,ROI_mask_file_path\n")
    lines = []
    for split, lesion, pathology in (("Training", 1, "BENIGN"), ("Training", 2, "MALIGNANT"),
                                     ("Test", 1, "BENIGN_WITHOUT_CALLBACK")):
        series = f"Mass-{split}_P_00007_LEFT_CC"
        write_dicom(tmp_path / "CBIS-DDSM" / series / "1.2" / "1.3" / "1-1.dcm", full, bits_stored=16)
        roi = f"{series}_{lesion}"
        # Downloaded names differ from the CSV's, and crop/mask are told apart by header.
        write_dicom(tmp_path / "CBIS-DDSM" / roi / "x" / "y" / "1-1.dcm", mask, bits_stored=8,
                    description="ROI mask images")
        write_dicom(tmp_path / "CBIS-DDSM" / roi / "x" / "y" / "1-2.dcm", crop, bits_stored=8,
                    description="cropped images")
        lines.append(f"P_00007,3,LEFT,CC,{lesion},mass,OVAL,CIRCUMSCRIBED,4,{pathology},3,"
                     f"{series}/1.2/1.3/000000.dcm,{roi}/a/b/000000.dcm,{roi}/a/b/000001.dcm\n")
    (tmp_path / "mass_case_description_train_set.csv").write_text(header + "".join(lines[:2]))
    (tmp_path / "mass_case_description_test_set.csv").write_text(header + lines[2])
    assert detect_layout(tmp_path) == "tcia"
    records = scan_cbis_ddsm(tmp_path)
    assert len(records) == 2  # two lesion rows of one image merged
    train = next(r for r in records if r.official_split == "train")
    test = next(r for r in records if r.official_split == "test")
    assert train.label == 1 and test.label == 0 and len(train.lesions) == 2
    assert all(lesion.mask_path.endswith("1-1.dcm") and lesion.crop_path.endswith("1-2.dcm")
               for lesion in train.lesions)
    assert train.extra["pathologies"] == "0;1" and train.patient_id == "P_00007"
    with pytest.raises(ValueError, match="No calcification case-description CSVs"):
        scan_cbis_ddsm(tmp_path, abnormality="calcification")


def test_format_detection(demo_png, tmp_path):
    from gan_zoo.data.mammography import detect_format, scan_mammograms

    assert detect_format(demo_png) == "cbis_ddsm"
    (tmp_path / "Info.txt").write_text("mdb001 G NORM\n")
    assert detect_format(tmp_path) == "mias"
    with pytest.raises(ValueError, match="Cannot tell the format"):
        detect_format(demo_png / "images")
    with pytest.raises(ValueError, match="format must be one of"):
        scan_mammograms(demo_png, format="ddsm")
    assert scan_mammograms(demo_png)[0] == "cbis_ddsm"


@pytest.mark.parametrize("force_float", [False, True])
def test_diagram_streams_resume_and_layout(demo_png, force_float):
    from gan_zoo.data.mammography.arrays import prepare_mammograms
    from gan_zoo.data.mammography.streams import diagram_streams

    whole, patches = prepare_mammograms(scan_cbis_ddsm(demo_png), image_size=32, patch_size=16,
                                        patch_copies=3)
    assert len(patches) == 3 * 12  # one mass per demo image, 3 copies each
    assert set(patches.patients) == set(whole.patients)

    def epoch_batches(start):
        stream = diagram_streams(whole, patches, batch_size=4, seed=5, start_epoch=start,
                                 epochs=2, force_float=force_float)
        return stream, [b for b in stream.dataset]

    stream, both = epoch_batches(0)
    assert stream.kind == ("float32" if force_float else "uint8")
    assert stream.steps_per_epoch == 3 and len(both) == 6  # an epoch = the 12 whole images
    batch = both[0]
    assert batch["patches"][0].shape == (4, 16, 16, 1) and batch["images"][0].shape == (4, 32, 32, 1)
    assert -1.0 <= float(np.min(batch["images"][0])) and float(np.max(batch["images"][0])) <= 1.0
    _, second = epoch_batches(1)
    for a, b in zip(both[3:], second):
        for name in ("patches", "images"):
            np.testing.assert_array_equal(a[name][0], b[name][0])
            np.testing.assert_array_equal(a[name][1], b[name][1])
    seen = np.concatenate([b["images"][1].numpy() for b in both[:3]])
    assert sorted(seen.tolist()) == sorted(whole.labels.tolist())  # each image once per epoch


def test_tfds_builder_prepares_either_layout(demo_png, tmp_path):
    from gan_zoo.data.mammography.tfds_builder import cbis_ddsm_tfds_builder, load_cbis_ddsm_tfds

    records = scan_cbis_ddsm(demo_png)
    builder = cbis_ddsm_tfds_builder(tmp_path / "tfds", config="fit256", manual_dir=demo_png)
    assert builder.info.splits["full"].num_examples == len(records)
    wanted = {records[0].patient_id}
    examples = list(load_cbis_ddsm_tfds(tmp_path / "tfds", patients=wanted, config="fit256"))
    assert len(examples) == 2 and {e["patient_id"].numpy().decode() for e in examples} == wanted
    first = next(e for e in examples if e["view"].numpy() == b"CC")
    record = next(r for r in records if r.patient_id in wanted and r.view == "CC")
    from gan_zoo.data.mammography.patches import fit_whole_image

    expected = fit_whole_image(load_grayscale(record.path), 256)
    np.testing.assert_allclose(first["image"].numpy()[..., 0], expected, atol=1e-4)
    assert first["image"].shape == (256, 256, 1) and int(first["label"]) == record.label
    assert float(first["mask"].numpy().sum()) > 0 and int(first["bit_depth"]) == 8
    with pytest.raises(FileNotFoundError, match="pass manual_dir="):
        cbis_ddsm_tfds_builder(tmp_path / "empty")
