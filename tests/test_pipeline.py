"""Tests of gan_zoo.data.pipeline: resumable training streams, evaluation."""

import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.pipeline import evaluation_dataset, training_stream

SIZE = 4
# Asymmetric, so a flip changes the pixels but not the mean.
PATTERN = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 7).astype(np.uint8)
COUNT = 12


def _image(index):
    """A 4x4 RGB image whose mean identifies `index`."""
    return np.repeat((20 * index + PATTERN)[..., None], 3, axis=-1).astype(np.uint8)


def _ids(images):
    """Recovers image indices from a batch scaled to (0, 1)."""
    means = np.asarray(images).mean(axis=(1, 2, 3)) * 255.0
    return np.round((means - PATTERN.mean()) / 20).astype(int).tolist()


@pytest.fixture
def records(tmp_path):
    out = []
    for i in range(COUNT):
        path = tmp_path / "images" / f"img{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(_image(i)).save(path)
        out.append(ImageRecord(path=str(path), label=i % 2))
    return out


def _stream(source, **kwargs):
    options = dict(batch_size=5, image_size=(SIZE, SIZE), value_range=(0.0, 1.0), seed=3)
    options.update(kwargs)
    return training_stream(source, **options)


def _epochs(stream, count):
    """The first `count` epochs as lists of (images, labels) numpy batches."""
    batches = list(stream.dataset.take(count * stream.steps_per_epoch).as_numpy_iterator())
    steps = stream.steps_per_epoch
    return [batches[e * steps : (e + 1) * steps] for e in range(count)]


def _same(epoch_a, epoch_b):
    return all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(epoch_a, epoch_b)
    )


def _epoch_ids(epoch):
    return [i for images, _ in epoch for i in _ids(images)]


# ---------------------------------------------------------------- resumable order


@pytest.mark.parametrize("cache", [None, "memory"])
@pytest.mark.slow
def test_epoch_is_a_pure_function_of_seed_and_epoch(records, cache):
    # Different global seeds: the order must depend on (seed, epoch) alone.
    tf.random.set_seed(1)
    stream = _stream(records, flips=True, cache=cache)
    first = _epochs(stream, 3)
    tf.random.set_seed(2)
    again = _epochs(_stream(records, flips=True, cache=cache), 3)
    assert all(_same(a, b) for a, b in zip(first, again))

    # 12 examples, batches of 5: two full batches of distinct examples.
    assert (stream.num_examples, stream.steps_per_epoch) == (12, 2)
    for epoch in first:
        assert len(epoch) == 2
        ids = _epoch_ids(epoch)
        assert len(set(ids)) == 10 and set(ids) <= set(range(COUNT))
        for images, labels in epoch:
            assert images.shape == (5, SIZE, SIZE, 3) and images.dtype == np.float32
            assert labels.dtype == np.int32
            assert [i % 2 for i in _ids(images)] == labels.tolist()
    assert _epoch_ids(first[0]) != _epoch_ids(first[1])  # a new order every epoch

    resumed = _epochs(_stream(records, flips=True, cache=cache, start_epoch=2), 1)
    assert _same(resumed[0], first[2])

    other_seed = _epochs(_stream(records, flips=True, cache=cache, seed=4), 1)
    assert _epoch_ids(other_seed[0]) != _epoch_ids(first[0])


def test_flips_change_pixels_but_not_content(records):
    plain = _epochs(_stream(records), 2)
    flipped = _epochs(_stream(records, flips=True), 2)
    assert [_epoch_ids(e) for e in plain] == [_epoch_ids(e) for e in flipped]
    images = np.concatenate([b[0] for e in flipped for b in e])
    originals = np.stack([_image(i) for i in _ids(images)]) / 255.0
    changed = ~np.isclose(images, originals).all(axis=(1, 2, 3))
    assert 0 < changed.sum() < len(images)


def test_horizontal_flips_mirror_left_right_only_and_as_the_both_mode_does(records):
    both = np.concatenate([b[0] for e in _epochs(_stream(records, flips=True), 2) for b in e])
    mirrored = np.concatenate([b[0] for e in _epochs(_stream(records, flips="horizontal"), 2) for b in e])
    originals = np.stack([_image(i) for i in _ids(mirrored)]) / 255.0
    left_right = originals[:, :, ::-1]
    is_original = np.isclose(mirrored, originals).all(axis=(1, 2, 3))
    is_mirror = np.isclose(mirrored, left_right).all(axis=(1, 2, 3))
    assert (is_original | is_mirror).all() and 0 < is_mirror.sum() < len(mirrored)
    # The same draw decides the left-right mirror in both modes.
    both_mirrored = np.isclose(both, left_right).all(axis=(1, 2, 3)) | np.isclose(
        both, left_right[:, ::-1]).all(axis=(1, 2, 3))
    assert (both_mirrored == is_mirror).all()
    with pytest.raises(ValueError, match="flips must be"):
        _stream(records, flips="vertical")


def test_stream_stops_after_epochs(records):
    stream = _stream(records, start_epoch=1, epochs=3)
    assert len(list(stream.dataset)) == 2 * stream.steps_per_epoch
    assert list(_stream(records, start_epoch=3, epochs=3).dataset) == []  # run already done


def test_unlabelled_records_yield_images_only(records):
    unlabelled = [ImageRecord(r.path) for r in records]
    batch = next(iter(_stream(unlabelled).dataset))
    assert isinstance(batch, tf.Tensor) and batch.shape == (5, SIZE, SIZE, 3)


# ---------------------------------------------------------------- cache


def test_memory_cache_survives_deleted_files(records):
    reference = _epochs(_stream(records, cache="memory", flips=True), 3)
    stream = _stream(records, cache="memory", flips=True)
    iterator = iter(stream.dataset)
    first = [next(iterator) for _ in range(stream.steps_per_epoch)]
    for record in records:
        os.remove(record.path)
    later = [next(iterator) for _ in range(2 * stream.steps_per_epoch)]
    assert _same([(a.numpy(), b.numpy()) for a, b in first], reference[0])
    assert _same([(a.numpy(), b.numpy()) for a, b in later[:2]], reference[1])
    assert _same([(a.numpy(), b.numpy()) for a, b in later[2:]], reference[2])


def _garble_keeping_size_and_mtime(path):
    """Makes `path` undecodable without changing its size or modification time."""
    stat = os.stat(path)
    with open(path, "wb") as handle:
        handle.write(b"x" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _rewrite(path, index):
    """Writes image `index` to `path`, with a modification time surely new."""
    stat = os.stat(path)
    Image.fromarray(_image(index)).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _cache_keys(prefix):
    """The hash suffixes of the cache files written under `prefix`."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"-([0-9a-f]{12})")
    names = os.listdir(os.path.dirname(prefix))
    return {match[1] for match in map(pattern.match, names) if match}


def test_file_cache_serves_a_resumed_stream_without_reading_the_files(records, tmp_path):
    prefix = str(tmp_path / "cache" / "train")
    reference = _epochs(_stream(records, cache=prefix), 3)
    for record in records:
        # Unchanged size and mtime: the cache is valid, so this is never read.
        _garble_keeping_size_and_mtime(record.path)
    resumed = _epochs(_stream(records, cache=prefix, start_epoch=2), 1)
    assert _same(resumed[0], reference[2])
    assert len(_cache_keys(prefix)) == 1


def test_file_cache_is_not_reused_for_files_rewritten_at_the_same_paths(records, tmp_path):
    prefix = str(tmp_path / "cache" / "eval")

    def evaluate():
        batches = evaluation_dataset(
            records, batch_size=5, image_size=(SIZE, SIZE), value_range=(0.0, 1.0), cache=prefix
        )
        return [i for images, _ in batches.as_numpy_iterator() for i in _ids(images)]

    assert evaluate() == list(range(COUNT))
    _rewrite(records[0].path, 5)
    assert evaluate() == [5, *range(1, COUNT)]
    assert len(_cache_keys(prefix)) == 2


def test_same_seed_same_batches_with_and_without_a_cache(records, tmp_path):
    # A cache changes the speed of a run, never its batches or flips.
    def run(cache, **kwargs):
        return _epochs(_stream(records, flips=True, cache=cache, **kwargs), 3)

    plain = run(None)
    prefix = str(tmp_path / "cache" / "train")
    for cache in ("memory", prefix, prefix):  # the file cache written, then read
        assert all(_same(a, b) for a, b in zip(plain, run(cache)))
    assert _same(run(prefix, start_epoch=2)[0], plain[2])
    # One images file and one labels file, written atomically: no leftovers.
    names = sorted(os.listdir(tmp_path / "cache"))
    assert len(names) == 2 and names[0].endswith(".labels.npy") and names[1].endswith(".npy")
    images = np.load(tmp_path / "cache" / names[1], mmap_mode="r")
    assert images.shape == (COUNT, SIZE, SIZE, 3) and images.dtype == np.uint8


@pytest.fixture
def grouped(tmp_path):
    """40 records sorted by group (patient): groups 0-3 then 4-7."""
    out = []
    for i in range(40):
        path = tmp_path / "grouped" / f"img{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(_image(i % 12)).save(path)
        out.append(ImageRecord(str(path), label=i // 5, group=str(i // 5)))
    return out


@pytest.mark.parametrize("cache", [None, "memory", "file"])
def test_every_batch_samples_the_whole_epoch(grouped, tmp_path, cache):
    # Even with a small shuffle_buffer, cached batches do not come from a window
    # of neighbouring groups: file records are always globally permuted.
    if cache == "file":
        cache = str(tmp_path / "cache" / "train")
    stream = training_stream(
        grouped, batch_size=8, image_size=SIZE, seed=5, cache=cache, shuffle_buffer=8
    )
    for epoch in _epochs(stream, 2):
        for _, groups in epoch:
            assert groups.min() < 4 <= groups.max(), groups  # both halves in every batch


def test_cached_dataset_source_is_permuted_globally():
    # With a cache a dataset source is read by index too: global permutations.
    images = np.stack([_image(i % 12) for i in range(40)])
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(40) // 5})
    stream = _stream(source, batch_size=8, cache="memory", shuffle_buffer=8)
    first = _epochs(stream, 2)
    for epoch in first:
        for _, groups in epoch:
            assert groups.min() < 4 <= groups.max(), groups
    resumed = _stream(source, batch_size=8, cache="memory", start_epoch=1)
    assert _same(_epochs(resumed, 1)[0], first[1])


def test_evaluation_reads_the_training_cache(records, tmp_path):
    prefix = str(tmp_path / "cache" / "data")
    _stream(records, cache=prefix)
    for record in records:
        _garble_keeping_size_and_mtime(record.path)  # so only the cache can serve them
    batches = _evaluate(records, image_size=(SIZE, SIZE), cache=prefix, batch_size=5)
    assert [i for images, _ in batches for i in _ids(images)] == list(range(COUNT))
    assert len(_cache_keys(prefix)) == 1


# ---------------------------------------------------------------- preprocessing


def _write(path, pixels, mode=None):
    Image.fromarray(pixels, mode).save(path)
    return [ImageRecord(str(path), label=0)]


def _evaluate(source, **kwargs):
    options = dict(batch_size=4, image_size=(8, 8), channels=3, value_range=(0.0, 1.0))
    options.update(kwargs)
    return list(evaluation_dataset(source, **options).as_numpy_iterator())


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_value_range_maps_0_and_255_to_its_ends(tmp_path, value_range):
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:4] = 255
    (images, _), = _evaluate(_write(tmp_path / "a.png", pixels), value_range=value_range)
    assert images.min() == value_range[0] and images.max() == value_range[1]


@pytest.fixture
def off_size(tmp_path):
    """A 6x10 (height x width) image: too short and too wide for 8x8."""
    pixels = np.arange(60, dtype=np.uint8).reshape(6, 10)[..., None].repeat(3, axis=-1) + 100
    return pixels, _write(tmp_path / "off_size.png", pixels)


def test_resize_policy(off_size):
    _, records = off_size
    (images, _), = _evaluate(records, size_policy="resize")
    assert images.shape == (1, 8, 8, 3)


@pytest.mark.parametrize("policy", ["pad", "crop"])
def test_pad_and_crop_policies_centre_each_axis(off_size, policy):
    pixels, records = off_size
    (images, _), = _evaluate(records, size_policy=policy, pad_value=7)
    got = np.round(images[0] * 255).astype(np.uint8)
    assert (got[0] == 7).all() and (got[7] == 7).all()  # height 6 padded to 8
    np.testing.assert_array_equal(got[1:7], pixels[:, 1:9])  # width 10 cropped to 8


def test_pad_end_policy_keeps_the_top_left_corner(off_size):
    pixels, records = off_size
    (images, _), = _evaluate(records, size_policy="pad_end", pad_value=7)
    got = np.round(images[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(got[:6], pixels[:, :8])  # width 10 cropped at the right
    assert (got[6:] == 7).all()  # height 6 padded at the bottom


def test_error_policy_names_the_file(off_size):
    _, records = off_size
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"off_size\.png is 6x10"):
        _evaluate(records, size_policy="error")
    _evaluate(records, size_policy="error", image_size=(6, 10))


def test_grayscale_becomes_rgb_and_rgb_becomes_grayscale(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    (rgb, _), = _evaluate(_write(tmp_path / "gray.png", gray, "L"))
    assert rgb.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(rgb[0, ..., 0] * 255, gray, atol=1e-3)
    assert (rgb[..., 0] == rgb[..., 2]).all()

    colour = np.zeros((8, 8, 4), np.uint8)
    colour[..., 1] = 200
    colour[..., 3] = 255
    (single, _), = _evaluate(_write(tmp_path / "rgba.png", colour, "RGBA"), channels=1)
    assert single.shape == (1, 8, 8, 1)
    assert 0.4 < single.mean() < 0.6  # luma of pure green, alpha dropped


def test_dataset_source_with_known_single_channel():
    # A source whose images are statically 1-channel gives 1 or 3 channels
    # (rgb_to_grayscale cannot trace such a spec, so it must not be called).
    gray = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8, 1)
    source = tf.data.Dataset.from_tensor_slices({"image": gray})
    (single,) = _evaluate(source, channels=1)
    np.testing.assert_allclose(single * 255, gray, atol=1e-3)
    (rgb,) = _evaluate(source, channels=3)
    assert rgb.shape == (2, 8, 8, 3) and (rgb[..., 2] == rgb[..., 0]).all()


def test_evaluation_keeps_order_and_last_partial_batch(records):
    batches = list(
        evaluation_dataset(
            records, batch_size=5, image_size=(SIZE, SIZE), channels=3, value_range=(0.0, 1.0)
        ).as_numpy_iterator()
    )
    assert [len(images) for images, _ in batches] == [5, 5, 2]
    assert [i for images, _ in batches for i in _ids(images)] == list(range(COUNT))


# ---------------------------------------------------------------- unreadable files


@pytest.fixture
def with_bad_files(records, tmp_path):
    truncated = tmp_path / "images" / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    Image.fromarray(noise).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    garbage = tmp_path / "images" / "garbage.png"
    garbage.write_bytes(b"definitely not an image" * 4)
    bad = [ImageRecord(str(truncated), label=0), ImageRecord(str(garbage), label=1)]
    return records + bad


@pytest.mark.parametrize(
    "name, reason", [("truncated.png", "truncated PNG"), ("garbage.png", "unrecognised format")]
)
def test_unreadable_file_error_names_file_and_reason(with_bad_files, name, reason):
    source = [r for r in with_bad_files if r.path.endswith(name)]
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{name}: {reason}"):
        _evaluate(source)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{name}: {reason}"):
        list(_stream(source * 5, batch_size=2).dataset.take(1))


def test_skip_mode_drops_and_counts_unreadable_files(with_bad_files):
    stream = _stream(with_bad_files, on_error="skip")
    assert stream.num_examples == COUNT
    skipped = sorted(path.rsplit("/", 1)[-1] for path, _ in stream.skipped)
    assert skipped == ["garbage.png", "truncated.png"]
    ids = _epoch_ids(_epochs(stream, 1)[0])
    assert set(ids) <= set(range(COUNT))

    batches = _evaluate(
        with_bad_files, image_size=(SIZE, SIZE), on_error="skip", size_policy="error"
    )
    assert [i for images, _ in batches for i in _ids(images)] == list(range(COUNT))


# ---------------------------------------------------------------- dataset sources


def _dataset_source(labels=True):
    images = np.stack([_image(i) for i in range(COUNT)])
    elements = {"image": images}
    if labels:
        elements["label"] = np.arange(COUNT) % 2
    return tf.data.Dataset.from_tensor_slices(elements)


def test_dataset_source_stream_is_resumable(records):
    source = _dataset_source()
    first = _epochs(_stream(source, flips=True), 3)
    for epoch in first:
        assert len(set(_epoch_ids(epoch))) == 10
    assert _epoch_ids(first[0]) != _epoch_ids(first[1])
    resumed = _epochs(_stream(source, flips=True, start_epoch=2), 1)
    assert _same(resumed[0], first[2])


def test_dataset_source_with_unknown_cardinality_is_counted():
    source = _dataset_source().filter(lambda element: element["label"] >= 0)
    assert _stream(source).num_examples == COUNT


def test_dataset_source_evaluation_and_unlabelled():
    batches = _evaluate(_dataset_source(), image_size=(SIZE, SIZE), batch_size=5)
    assert [i for images, _ in batches for i in _ids(images)] == list(range(COUNT))
    batch = next(iter(_stream(_dataset_source(labels=False)).dataset))
    assert isinstance(batch, tf.Tensor) and batch.shape == (5, SIZE, SIZE, 3)


def test_dataset_source_errors():
    with pytest.raises(ValueError, match="infinite"):
        _stream(_dataset_source().repeat())
    floats = tf.data.Dataset.from_tensor_slices({"image": np.zeros((4, 4, 4, 3), np.float32)})
    with pytest.raises(TypeError, match="uint8"):
        _stream(floats)
    with pytest.raises(ValueError, match=r"dataset source \(test split\) is empty"):
        _evaluate(_dataset_source().take(0), what="test split")


def test_dataset_source_errors_name_the_element_by_patient_and_position():
    # Like IDC TFDS elements: images of unknown static size, decoded in the source.
    png = tf.io.encode_png(np.zeros((3, 4, 3), np.uint8)).numpy()
    source = tf.data.Dataset.from_tensor_slices(
        {"png": [png], "patient": ["100"], "x": np.array([51], np.int32), "y": [1]}
    ).map(lambda element: {**element, "image": tf.io.decode_png(element["png"], channels=3)})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(patient 100, x 51, y 1\) is 3x4"):
        _evaluate(source, size_policy="error")
    fixed = tf.data.Dataset.from_tensor_slices({"image": np.zeros((2, 3, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match="dataset source are 3x4 but image_size is 8x8"):
        _evaluate(fixed, size_policy="error")


def _encoded_source(bad_positions=(), unknown_size=False):
    """PNG bytes decoded inside the source, as TFDS does; some are garbage."""
    encoded = [
        b"garbage" if i in bad_positions else tf.io.encode_png(_image(i)).numpy()
        for i in range(COUNT)
    ]
    source = tf.data.Dataset.from_tensor_slices({"png": encoded, "label": np.arange(COUNT) % 2})
    if unknown_size:
        source = source.filter(lambda element: element["label"] >= 0)
    return source.map(
        lambda element: {
            "image": tf.io.decode_png(element["png"], channels=3),
            "label": element["label"],
        }
    )


def test_skip_mode_on_a_dataset_source_counts_what_it_dropped(caplog):
    with caplog.at_level(logging.WARNING):
        stream = _stream(_encoded_source(bad_positions=(3, 8)), on_error="skip")
    assert (stream.num_examples, stream.num_skipped, stream.skipped) == (COUNT - 2, 2, ())
    assert "Skipped 2 unreadable element(s)" in caplog.text
    ids = {i for epoch in _epochs(stream, 2) for i in _epoch_ids(epoch)}
    assert ids <= set(range(COUNT)) - {3, 8}
    # Unknown cardinality: what was dropped cannot be counted, and says so.
    unknown = _stream(_encoded_source(bad_positions=(3,), unknown_size=True), on_error="skip")
    assert (unknown.num_examples, unknown.num_skipped) == (COUNT - 1, None)
    assert _stream(_encoded_source(), on_error="skip").num_skipped == 0


def _labels_flipped(source):
    return source.map(lambda element: {**element, "label": 1 - element["label"]})


def test_dataset_file_cache_key_follows_cache_key_spec_and_cardinality(tmp_path):
    prefix = str(tmp_path / "cache" / "train")
    source = _dataset_source()
    _stream(source, cache=prefix, cache_key="a")
    # Same spec and size, other data: a different cache_key gives its own cache.
    flipped = _stream(_labels_flipped(source), cache=prefix, cache_key="b")
    for images, labels in _epochs(flipped, 1)[0]:
        assert [1 - i % 2 for i in _ids(images)] == labels.tolist()
    assert len(_cache_keys(prefix)) == 2
    _stream(source.take(COUNT - 1), cache=prefix, cache_key="a")  # other cardinality
    _stream(source.map(lambda e: {"image": e["image"]}), cache=prefix, cache_key="a")  # other spec
    assert len(_cache_keys(prefix)) == 4


# ---------------------------------------------------------------- argument checks


def test_argument_errors(records):
    with pytest.raises(ValueError, match="fewer than batch_size"):
        _stream(records, batch_size=13)
    with pytest.raises(ValueError, match=r"source \(test split of data/idc\) holds no image"):
        _stream([], what="test split of data/idc")
    with pytest.raises(ValueError, match=r"source \(validation split\) holds no image"):
        _evaluate([], what="validation split")
    with pytest.raises(ValueError, match="size_policy"):
        _stream(records, size_policy="stretch")
    with pytest.raises(ValueError, match="channels"):
        _stream(records, channels=2)
    with pytest.raises(ValueError, match="value_range"):
        _stream(records, value_range=(1.0, 0.0))
    mixed = records[:5] + [ImageRecord(records[5].path)]
    with pytest.raises(ValueError, match="img05.png has none"):
        _stream(mixed)


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_real_idc_patient_and_cbis_mammograms(shared_data):
    from gan_zoo.data.image_folder import scan_image_folder

    # An IDC patient folder is itself a <class>/<image> tree.
    patient = sorted((shared_data / "idc").iterdir())[0]
    folder = scan_image_folder(patient, verify=True)
    assert folder.class_names == ("0", "1") or len(folder.class_names) == 1
    stream = training_stream(
        folder, batch_size=8, image_size=(50, 50), size_policy="pad", flips=True, epochs=1
    )
    batches = list(stream.dataset)
    assert len(batches) == stream.steps_per_epoch
    assert batches[0][0].shape == (8, 50, 50, 3)

    images = sorted((shared_data / "cbis_ddsm_mass" / "images").glob("*.png"))[:6]
    dataset = evaluation_dataset(
        [ImageRecord(str(p)) for p in images],
        batch_size=4, image_size=(64, 64), channels=1, value_range=(-1.0, 1.0),
    )
    batch = next(iter(dataset))
    assert batch.shape == (4, 64, 64, 1)
    assert -1.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 1.0
