"""Tests of gan_zoo.data.streams: several sources in one fit, mixed batches."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_zoo.data.image_folder import ImageRecord, mask_records
from gan_zoo.data.pipeline import training_stream
from gan_zoo.data.streams import StreamSource, mixed_batches, training_streams

SIZE = 8
# Asymmetric, so a flip changes the pixels but not the mean.
PATTERN = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 7).astype(np.uint8)


def _gray(index):
    """An 8x8 gray image whose mean identifies `index` (0..11)."""
    return (20 * index + PATTERN).astype(np.uint8)


def _ids(images):
    """Image indices from a batch scaled to (0, 1)."""
    means = np.asarray(images).mean(axis=tuple(range(1, np.ndim(images)))) * 255.0
    return np.round((means - PATTERN.mean()) / 20).astype(int).tolist()


def _records(folder, ids, masks=False):
    """RGB images of `ids` (label = id % 2); with `masks`, gray masks of the same pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in ids:
        path = folder / f"img{i:02d}.png"
        Image.fromarray(np.repeat(_gray(i)[..., None], 3, axis=-1)).save(path)
        mask = None
        if masks:
            mask = folder / f"img{i:02d}_mask.png"
            Image.fromarray(_gray(i), "L").save(mask)
        out.append(ImageRecord(str(path), label=i % 2, mask_path=mask and str(mask)))
    return out


@pytest.fixture
def sources(tmp_path):
    return {
        "a": _records(tmp_path / "a", range(12)),
        "b": _records(tmp_path / "b", range(7)),
    }


def _source(records, **kwargs):
    return StreamSource(records, image_size=SIZE, value_range=(0.0, 1.0), **kwargs)


def _batches(stream, epochs):
    """`epochs` epochs as lists of numpy batch dicts."""
    batches = stream.dataset.take(epochs * stream.steps_per_epoch)
    return list(batches.as_numpy_iterator())


def _same(first, second):
    flat = [tf.nest.flatten(b) for b in (first, second)]
    return len(first) == len(second) and all(
        np.array_equal(x, y) for a, b in zip(*flat) for x, y in zip(a, b)
    )


def _unpaired(sources, **kwargs):
    options = dict(batch_size=4, seed=3)
    options.update(kwargs)
    specs = {name: _source(records, flips=True) for name, records in sources.items()}
    return training_streams(specs, **options)


def test_unpaired_orders_cycles_and_exact_resume(sources):
    stream = _unpaired(sources)
    assert (stream.steps_per_epoch, stream.examples_per_epoch) == (3, 12)
    assert stream.num_examples == {"a": 12, "b": 7}
    epochs = _batches(stream, 3)
    for e in range(3):
        epoch = epochs[3 * e : 3 * e + 3]
        a = [i for batch in epoch for i in _ids(batch["a"][0])]
        b = [i for batch in epoch for i in _ids(batch["b"][0])]
        assert sorted(a) == list(range(12))  # one permutation of a
        assert sorted(b[:7]) == list(range(7))  # b: a whole cycle, then part of the next
        assert len(set(b[7:])) == 5
        assert [i % 2 for i in a[:4]] == epochs[3 * e]["a"][1].tolist()
    # Resume: built at epoch 2, the stream yields epoch 2's batches exactly.
    assert _same(_batches(_unpaired(sources, start_epoch=2), 1), epochs[6:9])
    # a's order is a function of (seed, epoch, name) only, not of the other sources.
    alone = _unpaired({"a": sources["a"]})
    assert [_ids(x["a"][0]) for x in _batches(alone, 1)] == [_ids(x["a"][0]) for x in epochs[:3]]
    # The two sources have independent orders, and the seed matters.
    a_order = [_ids(x["a"][0]) for x in epochs[:2]]
    assert a_order != [_ids(x["b"][0]) for x in epochs[:2]]
    assert a_order != [_ids(x["a"][0]) for x in _batches(_unpaired(sources, seed=4), 1)[:2]]


def test_unpaired_epoch_length_and_caches(sources, tmp_path):
    assert _unpaired(sources, epoch_length="min").steps_per_epoch == 1
    assert _unpaired(sources, epoch_length="b", batch_size=2).steps_per_epoch == 3
    with pytest.raises(ValueError, match="epoch_length must be"):
        _unpaired(sources, epoch_length="c")
    # A cache changes nothing about the batches.
    plain = _batches(_unpaired(sources), 1)
    specs = {
        "a": _source(sources["a"], flips=True, cache="memory"),
        "b": _source(sources["b"], flips=True, cache=str(tmp_path / "cache" / "b")),
    }
    assert _same(_batches(training_streams(specs, batch_size=4, seed=3), 1), plain)


@pytest.fixture
def lesions(tmp_path):
    return _records(tmp_path / "lesions", range(10), masks=True)


def _aligned(records, start_epoch=0, flips=True, **mask_options):
    specs = {
        "image": _source(records, flips=flips),
        "mask": _source(mask_records(records), channels=1, labels=False, flips=flips,
                        **mask_options),
    }
    return training_streams(
        specs, batch_size=3, seed=7, pairing="aligned", start_epoch=start_epoch
    )


def test_aligned_images_and_masks_share_order_and_flips(lesions):
    stream = _aligned(lesions)
    assert stream.steps_per_epoch == 3
    batches = _batches(stream, 3)
    flipped = 0
    for batch in batches:
        images, labels = batch["image"]
        masks = batch["mask"]  # labels=False: images only
        assert masks.shape == (3, SIZE, SIZE, 1)
        # The same example, flipped the same way: the mask equals the image.
        np.testing.assert_array_equal(masks[..., 0], images[..., 0])
        assert [i % 2 for i in _ids(images)] == labels.tolist()
        originals = np.stack([_gray(i) for i in _ids(images)]) / 255.0
        flipped += int((~np.isclose(images[..., 0], originals).all(axis=(1, 2))).sum())
    assert 0 < flipped < 27
    assert _same(_batches(_aligned(lesions, start_epoch=2), 1), batches[6:])
    # One shared order: that of training_stream with the same seed.
    single = training_stream(
        lesions, batch_size=3, image_size=SIZE, value_range=(0.0, 1.0), seed=7, flips=True
    )
    expected = list(single.dataset.take(9).as_numpy_iterator())
    assert _same([b["image"] for b in batches], expected)
    # A cached mask source is read in the same order.
    assert _same(_batches(_aligned(lesions, cache="memory"), 1), batches[:3])


def test_aligned_dataset_sources_without_a_cache(lesions):
    images = np.stack([np.repeat(_gray(i)[..., None], 3, axis=-1) for i in range(10)])
    specs = {
        "image": _source(tf.data.Dataset.from_tensor_slices({"image": images})),
        "mask": _source(
            tf.data.Dataset.from_tensor_slices({"image": images[..., :1]}), channels=1
        ),
    }
    stream = training_streams(specs, batch_size=3, seed=1, pairing="aligned")
    for batch in _batches(stream, 2):
        np.testing.assert_array_equal(batch["mask"][..., 0], batch["image"][..., 0])
    specs["records"] = _source(lesions)
    with pytest.raises(ValueError, match="cannot share the permutation"):
        training_streams(specs, batch_size=3, pairing="aligned")


def test_aligned_refusals(lesions):
    with pytest.raises(ValueError, match="equally many"):
        training_streams(
            {"image": _source(lesions), "mask": _source(mask_records(lesions[:9]))},
            batch_size=3, pairing="aligned",
        )
    with pytest.raises(ValueError, match="same flips"):
        training_streams(
            {"image": _source(lesions, flips=True), "mask": _source(mask_records(lesions))},
            batch_size=3, pairing="aligned",
        )
    with pytest.raises(ValueError, match="on_error='skip'"):
        _aligned(lesions, on_error="skip")
    unlabelled = [ImageRecord(r.path) for r in lesions]
    with pytest.raises(ValueError, match="labels=True"):
        training_streams({"m": _source(unlabelled, labels=True)}, batch_size=3)
    with pytest.raises(ValueError, match="pairing"):
        training_streams({"a": _source(lesions)}, batch_size=3, pairing="zipped")


# ---------------------------------------------------------------- mixed batches


def _schedule(step):
    return 0.25 if step < 3 else 0.5 if step < 6 else 1.0


@pytest.fixture
def real_and_synthetic(tmp_path):
    real = _source(_records(tmp_path / "real", range(6)), flips=True)
    synthetic = _source(_records(tmp_path / "synthetic", range(6, 12)), flips=True)
    return real, synthetic


def _mixed(real_and_synthetic, **kwargs):
    options = dict(batch_size=4, seed=2, steps=9)
    options.update(kwargs)
    return mixed_batches(*real_and_synthetic, _schedule, **options)


def test_mixed_batches_follow_the_schedule_at_every_step(real_and_synthetic):
    stream = _mixed(real_and_synthetic)
    batches = list(stream.dataset.as_numpy_iterator())
    assert len(batches) == 9
    expected = [1, 1, 1, 2, 2, 2, 4, 4, 4]
    assert [stream.real_count(s) for s in range(9)] == expected
    for count, batch in zip(expected, batches):
        ids = _ids(batch["images"])
        assert [i < 6 for i in ids] == [True] * count + [False] * (4 - count)
        assert batch["real"].tolist() == [True] * count + [False] * (4 - count)
        assert batch["labels"].tolist() == [i % 2 for i in ids]
    # Each source is consumed in order, a permutation per pass.
    real = [i for b in batches for i in _ids(b["images"]) if i < 6]
    assert sorted(real[:6]) == list(range(6)) and sorted(real[6:12]) == list(range(6))
    synthetic = [i for b in batches for i in _ids(b["images"]) if i >= 6]
    assert sorted(synthetic[:6]) == list(range(6, 12))
    # Same seed, same batches; rebuilt at step 4, the batches of steps 4 on.
    assert _same(list(_mixed(real_and_synthetic).dataset.as_numpy_iterator()), batches)
    resumed = list(_mixed(real_and_synthetic, start_step=4).dataset.as_numpy_iterator())
    assert _same(resumed, batches[4:])


def test_mixed_batches_refusals(real_and_synthetic):
    real, synthetic = real_and_synthetic
    with pytest.raises(ValueError, match=r"real_share\(0\) is 1.5"):
        mixed_batches(real, synthetic, lambda step: 1.5, batch_size=4)
    other = StreamSource(synthetic.source, image_size=SIZE + 1, value_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="one shape"):
        mixed_batches(real, other, _schedule, batch_size=4)
