"""Bad inputs at the library's entry points are refused in one line.

NaN and infinite pixels: in float image files (named in the error) and in
the arrays given to translate / infill. Models are tiny.
"""

import numpy as np
import pytest



@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_nan_or_inf_is_refused_naming_the_file(tmp_path, bad):
    import tifffile

    from gan_zoo.data.mammography.pixels import load_grayscale

    path = tmp_path / "float.tif"
    image = np.full((8, 8), 0.5, np.float32)
    image[2, 3] = bad
    tifffile.imwrite(path, image)
    with pytest.raises(ValueError) as caught:
        load_grayscale(path)
    message = str(caught.value)
    assert str(path) in message and "1 NaN or infinite pixel(s)" in message
    assert "\n" not in message


def test_a_finite_float_tiff_still_loads(tmp_path):
    import tifffile

    from gan_zoo.data.mammography.pixels import load_grayscale

    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    np.testing.assert_allclose(load_grayscale(path).ravel(), np.linspace(0, 1, 64), atol=1e-7)


@pytest.fixture(scope="module")
def cyclegan():
    from gan_zoo.models.cyclegan import CycleGAN

    return CycleGAN(image_size=16, generator_filters=4, discriminator_filters=4,
                    residual_blocks=2, pool_size=3)


@pytest.fixture(scope="module")
def cigan():
    from gan_zoo.models.cigan import CIGAN

    return CIGAN(patch_size=16, widths=[8, 8, 8], discriminator_widths=[4, 4, 4, 4, 4])


def _patches(n=2, size=16):
    images = np.full((n, size, size, 1), 0.4, np.float32)
    masks = np.zeros_like(images)
    masks[:, 4:10, 4:10] = 1.0
    return images, masks


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_translate_and_infill_refuse_nan_and_inf(cyclegan, cigan, bad):
    images = np.full((2, 16, 16, 3), 0.5, np.float32)
    images[1, 0, 0, 0] = bad
    message = "CycleGAN.translate expects float images in [0, 1]; got NaN or infinite values."
    with pytest.raises(ValueError) as caught:
        cyclegan.translate(images, direction="a_to_b")
    assert str(caught.value) == message
    patches, masks = _patches()
    patches[0, 12, 12, 0] = bad  # outside the mask
    with pytest.raises(ValueError, match=r"^CIGAN\.translate expects .* got NaN or infinite values\.$"):
        cigan.infill(patches, masks, target_class=1)


@pytest.mark.parametrize("brightest", [255, 256, 4095])
def test_integer_tiffs_scale_by_their_stored_bits_never_by_their_values(tmp_path, brightest):
    import tifffile

    from gan_zoo.data.mammography.pixels import load_grayscale

    pixels = np.zeros((8, 8), np.uint16)
    pixels[0, 0] = brightest
    tifffile.imwrite(tmp_path / "sixteen.tif", pixels)
    assert load_grayscale(tmp_path / "sixteen.tif").max() == pytest.approx(brightest / 65535)
    assert load_grayscale(tmp_path / "sixteen.tif", bit_depth=12).max() == pytest.approx(brightest / 4095)
    tifffile.imwrite(tmp_path / "int32.tif", pixels.astype(np.int32))
    with pytest.raises(ValueError, match=r"int32\.tif: 32-bit integer pixels have no standard scale"):
        load_grayscale(tmp_path / "int32.tif")
    assert load_grayscale(tmp_path / "int32.tif", bit_depth=12).max() == pytest.approx(brightest / 4095)


def test_a_sixteen_bit_png_with_dim_content_stays_sixteen_bit(tmp_path):
    from PIL import Image

    from gan_zoo.data.mammography.pixels import load_grayscale

    dim = np.full((8, 8), 255, np.uint16)
    Image.fromarray(dim).save(tmp_path / "dim16.png")
    assert load_grayscale(tmp_path / "dim16.png").max() == pytest.approx(255 / 65535)


def test_an_image_above_pillows_pixel_limit_is_named_in_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from gan_zoo.data.he.tiles import load_rgb

    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 196-megapixel TIFF, scaled down
    with pytest.raises(ValueError) as caught:
        load_rgb(path)
    message = str(caught.value)
    assert message.startswith(f"Cannot read the image {path}: Image size (400 pixels) exceeds limit of 200")
    assert "whole-slide image" in message and "\n" not in message


def test_an_undecodable_dicom_kind_is_found_before_any_training(tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    from gan_zoo.data.mammography.pixels import check_decodable
    from test_mammography_data import write_dicom

    plain = tmp_path / "plain.dcm"
    write_dicom(plain, np.arange(64, dtype=np.uint16).reshape(8, 8))
    check_decodable([plain])  # decodes
    compressed = []
    for name in ("a", "b", "c"):
        dataset = pydicom.dcmread(plain)
        dataset.file_meta.TransferSyntaxUID = JPEG2000Lossless
        dataset.PixelData = encapsulate([b"\x00\x01not a codestream"])
        dataset["PixelData"].VR = "OB"
        dataset.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        compressed.append(tmp_path / f"{name}.dcm")
    with pytest.raises(ValueError) as caught:
        check_decodable([plain, *compressed])
    message = str(caught.value)
    assert message.startswith(f"{compressed[0]}: cannot decode its pixels (DICOM JPEG 2000 Image Compression")
    assert "3 file(s) of this kind" in message and "\n" not in message


def test_exported_signatures_check_ranges_and_labels(cyclegan, cigan):
    import tensorflow as tf

    from gan_zoo.models.dcgan import DCGAN

    generate, _ = DCGAN(image_size=16, base_filters=4, latent_dim=8, num_classes=2).serving_endpoints()["generate"]
    z = tf.zeros((2, 8))
    assert generate(z, tf.constant([0, 1]))["images"].shape == (2, 16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"generate labels expects class labels in \[0, 2\)"):
        generate(z, tf.constant([5, 7]))

    translate, _ = cyclegan.serving_endpoints()["translate_a_to_b"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"translate_a_to_b expects float32 images in \[0, 1\]"):
        translate(tf.fill((1, 16, 16, 3), 200.0))

    infill, _ = cigan.serving_endpoints()["infill"]
    patches, masks = _patches()
    assert infill(patches, masks, tf.constant([1, 0]))["images"].shape == (2, 16, 16, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="infill expects float32 images in"):
        infill(patches * 255, masks, tf.constant([1, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"infill target_class expects class labels in \[0, 2\)"):
        infill(patches, masks, tf.constant([2, -1]))
