"""H&E data: PathologyGAN's HDF5 layout, the tiler, whole slides, the HDF5 stream."""

import gc
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data.he import (
    PathologyHDF5,
    PathologyHDF5Writer,
    SlideReader,
    background_fraction,
    dihedral,
    hdf5_splits,
    is_background,
    is_slide,
    scan_he_images,
    slide_tiles,
    tile_grid,
    tile_image,
    write_tiles,
)
from gan_zoo.data.he.stream import hdf5_training_stream


def tissue(height, width, seed=0):
    """Pink and purple H&E-like pixels, never background."""
    rng = np.random.default_rng(seed)
    pink = np.array([230, 150, 200]) + rng.integers(-20, 20, (height, width, 3))
    nuclei = rng.random((height, width)) < 0.2
    pixels = np.where(nuclei[..., None], np.array([80, 40, 130]), pink)
    return np.clip(pixels, 0, 214).astype(np.uint8)


def half_white(height=448, width=448):
    image = tissue(height, width)
    image[:, : width // 2] = 255
    return image


# ----------------------------------------------------------------------- tiler
def test_tiler_drops_a_white_patch_and_keeps_a_tissue_patch():
    tiles, corners, counts = tile_image(half_white(), tile_size=224, overlap=0.5)
    assert tile_grid(448, 448) == [(y, x) for y in (0, 112, 224) for x in (0, 112, 224)]
    # x = 0: all white; x = 112: half white (50% >= 30%): both dropped.
    assert sorted({x for _, x in corners.tolist()}) == [224]
    assert counts.kept == 3 and counts.background == 6
    assert tiles.shape == (3, 224, 224, 3) and tiles.dtype == np.uint8
    assert not any(is_background(t) for t in tiles)


def test_background_rule_is_thirty_percent_of_pixels_all_above_215():
    tile = tissue(10, 10)
    tile[:3] = 255  # 30%
    assert background_fraction(tile) == pytest.approx(0.3) and is_background(tile)
    tile[2, 9] = tissue(1, 1)[0, 0]  # 29%
    assert not is_background(tile)
    grey = np.full((10, 10, 3), 215, np.uint8)  # not above 215
    assert background_fraction(grey) == 0.0
    one_dark_channel = np.full((10, 10, 3), 250, np.uint8)
    one_dark_channel[..., 1] = 200  # pink, not white: tissue
    assert not is_background(one_dark_channel)


def test_dihedral_gives_four_rotations_times_two_mirrorings():
    tile = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    versions = dihedral(tile)
    assert len(versions) == 8
    assert len({v.tobytes() for v in versions}) == 8
    assert np.array_equal(versions[0], tile)
    assert np.array_equal(versions[1], np.rot90(tile))
    assert np.array_equal(versions[4], tile[:, ::-1])


def test_scan_groups_images_by_slide_folder_or_file(tmp_path):
    for name in ("SOB_B_F-14-14134-40-001.png", "SOB_B_F_14-14134E_3.png", "SOB_M_DC-14-2523-40-010.png"):
        Image.fromarray(tissue(8, 8)).save(tmp_path / name)
    groups = [s.group for s in scan_he_images(tmp_path)]
    assert groups == ["14-14134", "14-14134", "14-2523"]  # one patient with and without a letter
    nested = tmp_path / "nested"
    for patient in ("p1", "p2"):
        (nested / patient / "1").mkdir(parents=True)
        Image.fromarray(tissue(8, 8)).save(nested / patient / "1" / "a.png")
    assert [s.group for s in scan_he_images(nested)] == ["p1", "p2"]
    assert [s.group for s in scan_he_images(nested, split_by="image")] == ["p1/1/a", "p2/1/a"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No H&E images"):
        scan_he_images(tmp_path / "empty")


# ------------------------------------------------------------------------ HDF5
def test_write_tiles_into_the_pathology_gan_layout(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(half_white()).save(folder / "slide_a.png")
    Image.fromarray(tissue(448, 448, seed=1)).save(folder / "slide_b.png")
    summary = write_tiles(scan_he_images(folder), tmp_path / "tiles.h5", splits={"slide_b": "test"})
    assert summary["tiles"] == {"train": 3 * 8, "test": 9 * 8}  # kept tiles x 8 symmetries
    assert summary["background_dropped"] == 6
    assert summary["groups"] == {"train": ["slide_a"], "test": ["slide_b"]}
    assert hdf5_splits(tmp_path / "tiles.h5") == ["train", "test"]
    with PathologyHDF5(tmp_path / "tiles.h5", "train") as train:
        assert len(train) == 24 and train.image_shape == (224, 224, 3) and not train.has_labels
        first = train.read([0])[0]
        assert np.array_equal(train.read([1])[0], np.rot90(first))
    plain = write_tiles(scan_he_images(folder), tmp_path / "plain.h5", augment=False)
    assert plain["tiles"] == {"train": 12}


def test_hdf5_reader_reads_rows_in_any_order_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    labels = rng.random((10, 2)).astype(np.float32)
    with PathologyHDF5Writer(tmp_path / "x.h5", (8, 8, 3)) as writer:
        writer.add("train", images[:6], labels[:6])
        writer.add("train", images[6:], labels[6:])
        writer.add("test", images[:3])
    with PathologyHDF5(tmp_path / "x.h5", "train") as train:
        got, got_labels = train.read([7, 2, 2, 0])
        np.testing.assert_array_equal(got, images[[7, 2, 2, 0]])
        np.testing.assert_allclose(got_labels, labels[[7, 2, 2, 0]])
        assert np.concatenate(list(train.chunks(4))).shape == (10, 8, 8, 3)
        with pytest.raises(IndexError):
            train.read([10])
    with pytest.raises(ValueError, match="no dataset 'valid_img'"):
        PathologyHDF5(tmp_path / "x.h5", "valid")
    with pytest.raises(ValueError, match="uint8"):
        with PathologyHDF5Writer(tmp_path / "y.h5", (8, 8, 3)) as writer:
            writer.add("train", images.astype(np.float32))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        PathologyHDF5(tmp_path / "bad.h5")


_HDF5_RSS_CHILD = """
import json, sys
import numpy as np
from gan_zoo.data.he import PathologyHDF5

def status(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))

with PathologyHDF5(sys.argv[1], "train", cache_bytes=int(sys.argv[2])) as tiles:
    order = np.random.default_rng(1).permutation(len(tiles))
    tiles.read(order[:16])  # h5py's lazy state goes into the baseline
    baseline = status("VmRSS:")
    for start in range(0, len(order), 16):
        tiles.read(order[start : start + 16])
    for chunk in tiles.chunks(32):
        pass
    print(json.dumps({"growth": status("VmHWM:") - baseline}))
"""


@pytest.mark.slow
def test_hdf5_reader_memory_stays_flat_on_a_file_larger_than_its_cache(tmp_path):
    path = tmp_path / "big.h5"
    rng = np.random.default_rng(0)
    block = rng.integers(0, 255, (40, 224, 224, 3), dtype=np.uint8)
    with PathologyHDF5Writer(path, (224, 224, 3)) as writer:
        for _ in range(8):  # 320 tiles, 48 MB
            writer.add("train", block)
    cache = 2 * 2**20
    assert path.stat().st_size > 20 * cache
    with PathologyHDF5(path, "train", cache_bytes=cache) as tiles:
        order = np.random.default_rng(1).permutation(len(tiles))
        tiles.read(order[:16])  # warm up h5py
        gc.collect()
        tracemalloc.start()
        total = 0
        for start in range(0, len(order), 16):
            total += int(tiles.read(order[start : start + 16]).shape[0] == 16)
        for chunk in tiles.chunks(32):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert total == 20 + 320
    batch_bytes = 32 * 224 * 224 * 3
    assert peak < 3 * batch_bytes  # a few batches, not the 48 MB file
    # h5py's chunk cache is C memory tracemalloc does not see: peak RSS of a
    # fresh process (a long test session's allocator state is noise here).
    done = subprocess.run([sys.executable, "-c", _HDF5_RSS_CHILD, str(path), str(cache)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    growth = json.loads(done.stdout.strip().splitlines()[-1])["growth"]
    assert growth < 16 * 2**20, f"peak RSS grew {growth / 2**20:.1f} MiB reading a 48 MB file"


def test_hdf5_stream_is_resumable_and_resized(tmp_path):
    rng = np.random.default_rng(0)
    with PathologyHDF5Writer(tmp_path / "s.h5", (56, 56, 3)) as writer:
        writer.add("train", rng.integers(0, 255, (20, 56, 56, 3), dtype=np.uint8))
    stream = hdf5_training_stream(tmp_path / "s.h5", batch_size=8, image_size=28, seed=3, epochs=2)
    assert stream.steps_per_epoch == 2 and stream.num_examples == 20
    batches = [b.numpy() for b in stream.dataset]
    assert len(batches) == 4 and batches[0].shape == (8, 28, 28, 3)
    assert 0.0 <= min(b.min() for b in batches) and max(b.max() for b in batches) <= 1.0
    resumed = hdf5_training_stream(tmp_path / "s.h5", batch_size=8, image_size=28, seed=3,
                                   start_epoch=1, epochs=2)
    again = [b.numpy() for b in resumed.dataset]
    np.testing.assert_array_equal(np.stack(again), np.stack(batches[2:]))
    assert not np.array_equal(batches[0], batches[2])  # epochs are reshuffled
    with pytest.raises(ValueError, match="fewer than batch_size"):
        hdf5_training_stream(tmp_path / "s.h5", batch_size=64, image_size=28)


def _tiff_variants(image):
    """Writers of `image` as the TIFF layouts the band reader handles, and two it leaves to Pillow."""
    import tifffile

    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 128, np.uint8)], axis=-1)
    planar = np.moveaxis(image, -1, 0)
    return {
        "tiled.tif": lambda p: tifffile.imwrite(p, image, tile=(128, 128), photometric="rgb", compression="zlib"),
        "big_tiles.tif": lambda p: tifffile.imwrite(p, image, tile=(512, 512), photometric="rgb"),
        "strips.tif": lambda p: tifffile.imwrite(p, image, photometric="rgb", compression="lzw", predictor=True,
                                                 rowsperstrip=16),
        "one_strip.tif": lambda p: tifffile.imwrite(p, image, photometric="rgb"),  # read straight from the file
        "pillow.tif": lambda p: Image.fromarray(image).save(p, compression="tiff_adobe_deflate"),
        "planar.tif": lambda p: tifffile.imwrite(p, planar, photometric="rgb", planarconfig="separate",
                                                 compression="zlib", rowsperstrip=50),
        "grey.tif": lambda p: tifffile.imwrite(p, image[..., 1], photometric="minisblack", compression="packbits",
                                               rowsperstrip=100),
        "rgba.tif": lambda p: tifffile.imwrite(p, rgba, photometric="rgb", extrasamples=[2], tile=(256, 256)),
        # Decoded whole by Pillow: lossy JPEG inside a TIFF, and a PNG.
        "jpeg.tif": lambda p: Image.fromarray(image).save(p, compression="jpeg"),
        "image.png": lambda p: Image.fromarray(image).save(p),
    }


def test_tiff_tiles_read_by_band_match_the_whole_image_tiler(tmp_path, monkeypatch):
    from gan_zoo.data.he import tiles as tiles_module

    image = tissue(700, 900, seed=2)
    image[:, :300] = 255  # background columns and a background corner
    image[500:, 600:] = 250
    folder = tmp_path / "images"
    folder.mkdir()
    for name, write in _tiff_variants(image).items():
        write(folder / name)
    sources = scan_he_images(folder, split_by="image")
    splits = {s.group: "test" for s in sources[::2]}  # test: plain tiles; train: 8 symmetries each
    # The reference: each file decoded whole by Pillow, tiled in memory.
    expected, background = {"train": [], "test": []}, 0
    for source in sources:
        split = splits.get(source.group, "train")
        tiles, _, counts = tile_image(tiles_module.load_rgb(source.path))
        background += counts.background
        for tile in tiles:
            expected[split].extend(dihedral(tile) if split == "train" else [tile])
    assert all(expected.values())

    whole = {"jpeg.tif", "image.png"}
    load_rgb = tiles_module.load_rgb

    def only_formats_without_region_reads(path):
        assert os.path.basename(path) in whole, f"{path} was decoded whole"
        return load_rgb(path)

    monkeypatch.setattr(tiles_module, "load_rgb", only_formats_without_region_reads)
    # batch=5: batches span tile rows and files.
    summary = write_tiles(sources, tmp_path / "tiles.h5", splits, augment=("train",), batch=5)
    assert summary["background_dropped"] == background
    for split, tiles in expected.items():
        assert summary["tiles"][split] == len(tiles)
        with PathologyHDF5(tmp_path / "tiles.h5", split) as written:
            np.testing.assert_array_equal(written.read(np.arange(len(written))), np.stack(tiles))


_PEAK_RSS_CHILD = """
import json, sys
from gan_zoo.data.he import HESource, write_tiles

def status(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))

small, large, out = sys.argv[1:4]
# A small TIFF first, so lazy imports (tifffile, zarr, h5py, Pillow) and
# reader threads are in the baseline, not in the growth.
write_tiles([HESource(small, "a")], out, augment=False, batch=32)
baseline = status("VmRSS:")
summary = write_tiles([HESource(large, "a")], out, augment=False, batch=32)
print(json.dumps({"growth": status("VmHWM:") - baseline, "tiles": summary["tiles"]}))
"""


def test_write_tiles_memory_stays_flat_in_the_size_of_a_tiff(tmp_path):
    import tifffile

    size = 6000
    image = np.full((size, size, 3), 255, np.uint8)
    image[: size // 2] = np.tile(tissue(500, 500), (size // 1000, size // 500, 1))  # top half tissue
    options = dict(tile=(256, 256), photometric="rgb")
    tifffile.imwrite(tmp_path / "large.tif", image, **options)
    tifffile.imwrite(tmp_path / "small.tif", image[:512, :512], **options)
    image_bytes = image.nbytes
    del image
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS_CHILD, *(str(tmp_path / n) for n in ("small.tif", "large.tif", "x.h5"))],
            capture_output=True, text=True, timeout=300,
        )
    finally:  # pytest keeps the last runs' tmp_path: not 300 MB of them
        for name in ("large.tif", "x.h5"):
            (tmp_path / name).unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tiles"]["train"] > 1000  # the tissue half was tiled
    # Read by bands: a few bands of 6000 x ~480 rows (8.6 MB each), one batch
    # and the readers' buffers, about 50 MB. Decoding the image whole costs
    # its 108 MB at least (Pillow's copies and stacked tiles: 500 MB here).
    bound = image_bytes
    assert result["growth"] < bound, f"peak RSS grew {result['growth'] / 2**20:.0f} MiB (bound {bound / 2**20:.0f})"


# ---------------------------------------------------------------- whole slides
def _write_pyramid(path, base, description=True):
    import tifffile

    options = dict(tile=(128, 128), photometric="rgb", compression=None)
    extra = {}
    if description:
        extra["description"] = (
            "Aperio Image Library v12.0.15 \n896x896 [0,0 896x896] (128x128) |AppMag = 40|MPP = 0.25"
        )
    with tifffile.TiffWriter(path) as tif:
        tif.write(base, subifds=2, **options, **extra)
        for factor in (2, 4):
            small = base.reshape(base.shape[0] // factor, factor, base.shape[1] // factor, factor, 3)
            tif.write(small.mean(axis=(1, 3)).astype(np.uint8), subfiletype=1, **options)


def test_pyramidal_tiff_is_read_at_the_chosen_magnification(tmp_path):
    base = half_white(896, 896)
    path = tmp_path / "slide.tif"
    _write_pyramid(path, base)
    assert is_slide(path)
    flat = tmp_path / "flat.tif"
    Image.fromarray(base[:64, :64]).save(flat)
    assert not is_slide(flat) and not is_slide(tmp_path / "x.png")
    with SlideReader(path, magnification=20) as slide:
        assert slide.base_magnification == 40 and slide.size == (448, 448)
        assert slide.level == 1  # the 2x-downsampled level, no resizing
        region = slide.read(0, 224, 224)
    expected = base.reshape(448, 2, 448, 2, 3).mean(axis=(1, 3)).astype(np.uint8)[:224, 224:]
    np.testing.assert_array_equal(region, expected)
    with SlideReader(path, magnification=10) as slide:
        assert slide.size == (224, 224) and slide.level == 2
    with SlideReader(path) as slide:  # base magnification
        assert slide.size == (896, 896)
    parts = list(slide_tiles(path, magnification=20, tile_size=224))
    kept = sum(p[1].kept for p in parts)
    dropped = sum(p[1].background for p in parts)
    assert (kept, dropped) == (3, 6)  # as the 448 x 448 image above
    with pytest.raises(ValueError, match="magnification must be in"):
        SlideReader(path, magnification=60)
    summary = write_tiles(scan_he_images(tmp_path, split_by="image"), tmp_path / "out" / "slides.h5",
                          magnification=20, augment=False)
    # slide.tif at 20x: 3 tiles; flat.tif, an ordinary image: no full tile.
    assert summary["images"] == 2 and summary["tiles"] == {"train": 3}
    bare = tmp_path / "bare.tif"
    _write_pyramid(bare, base, description=False)
    with pytest.raises(ValueError, match="base_magnification"):
        SlideReader(bare, magnification=20)
    with SlideReader(bare, magnification=20, base_magnification=40) as slide:
        assert slide.size == (448, 448)


@pytest.mark.shared_data
def test_tiles_a_real_brecahad_image(shared_data):
    path = shared_data / "he_tiles" / "brecahad" / "images" / "10011.jpg"
    if not path.exists():
        pytest.skip("BreCaHAD tiles not found")
    image = np.asarray(Image.open(path).convert("RGB"))
    tiles, corners, counts = tile_image(image)
    assert image.shape == (1024, 1360, 3)
    assert counts.kept + counts.background == 8 * 11  # rows x columns of 224 with stride 112
    assert counts.kept > 0 and tiles.shape[1:] == (224, 224, 3)
