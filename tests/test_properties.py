"""Property-based tests: random shapes, dtypes and value ranges.

Every entry point either works (output of the promised shape, dtype and
range) or raises its documented error, a ValueError naming the problem;
never a TypeError, a NumPy or TensorFlow error from deep inside, NaN
outputs or a silently wrong result.

New models join by adding a line to the lists below: `GENERATORS` (models
with `generate`), `CLASSIFIERS` (`classify`), `TRANSLATORS` (`translate`)
and `INFILLERS` (`infill`), each with a tiny config. Models are built once
per module; examples are few and have no deadline.
"""

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import gan_zoo

# Derandomized (the same examples on every run) and not shrunk (a failure is
# reported as drawn: shrinking would re-run models dozens of times).
FEW = settings(
    max_examples=12, deadline=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# (registry name, tiny config): add new models here.
DIAGRAM = {"patch_size": 16, "image_size": 32, "latent_dim": 8, "feature_filters": (4, 4, 8, 8),
           "feature_kernel_size": 3, "extended_filters": (8,) * 6, "extended_strides": (1,) * 6,
           "generator_filters": (8, 8, 4, 4), "generator_kernel_size": 3}
GENERATORS = [
    ("dcgan", {"image_size": 16, "base_filters": 2, "latent_dim": 4}),
    ("dcgan", {"image_size": 16, "base_filters": 2, "latent_dim": 4, "num_classes": 2, "variant": "v3"}),
    ("semi_cgan", {"width": 0.0625, "latent_dim": 8}),
    ("pathology_gan", {"stages": 2, "latent_dim": 8, "mapping_blocks": 1, "base_channels": 4,
                       "initial_channels": 4, "dense_units": 8, "attention_resolution": 14}),
    ("diagram", DIAGRAM),
]
CLASSIFIERS = [
    ("small_cnn", {"image_size": 16, "width": 0.125}),
    ("cruz_roa_cnn", {"image_size": 32}),
    ("semi_cgan", {"width": 0.0625, "latent_dim": 8}),
    ("resnet50_classifier", {"image_size": 32, "backbone_weights": None, "augment": False}),
    ("diagram", DIAGRAM),
]
TRANSLATORS = [
    ("cyclegan", {"image_size": 16, "generator_filters": 4, "discriminator_filters": 4,
                  "residual_blocks": 2, "pool_size": 3}),
]
# ciGAN builds its feature network only to train, so inference needs none.
INFILLERS = [
    ("cigan", {"patch_size": 16, "widths": (4, 4, 4), "discriminator_widths": (4, 4, 4, 4, 4),
               "feature_weights": "random"}),
]

_models = {}


def build(name, config):
    key = (name, tuple(sorted(config.items())))
    if key not in _models:
        _models[key] = gan_zoo.load(name, **config)
    return _models[key]


def _ids(entries):
    names = [entry.values[0] if hasattr(entry, "values") else entry[0] for entry in entries]
    return [f"{name}-{i}" for i, name in enumerate(names)]


# ------------------------------------------------------------------- images

DTYPES = [np.float32, np.float64, np.float16, np.uint8, np.int32]
SCALES = ["unit", "eight_bit", "signed", "nan", "tiny_overshoot"]


@st.composite
def image_arrays(draw, shape):
    """Arrays around `shape` [H, W, C]: right or wrong shape, any dtype and scale."""
    height, width, channels = shape
    n = draw(st.integers(0, 3))
    rank = draw(st.sampled_from([3, 4, 4, 4, 5]))
    h = draw(st.sampled_from([height, height, max(1, height - 3), height + 5]))
    w = h if draw(st.booleans()) else draw(st.sampled_from([width, width + 2]))
    c = draw(st.sampled_from([channels, channels, 1, 4]))
    dims = {3: (h, w, c), 4: (n, h, w, c), 5: (n, 1, h, w, c)}[rank]
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from(SCALES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.random(dims)
    if scale == "eight_bit":
        values = values * 255
    elif scale == "signed":
        values = values * 2 - 1
    elif scale == "nan" and values.size:
        values.flat[0] = np.nan
    elif scale == "tiny_overshoot":
        values = np.clip(values * 1.0005 - 0.0002, -0.0004, 1.0004)
    if np.issubdtype(dtype, np.integer):
        values = np.nan_to_num(np.round(values))
    return values.astype(dtype)


def _valid_image_batch(images, shape):
    """True / False: classify must accept / refuse `images`; None: either.

    One image without its batch axis and an empty batch may be accepted or
    refused (with a ValueError).
    """
    if images.ndim == 3 or (images.ndim == 4 and len(images) == 0):
        return None
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        return False
    if images.dtype == np.uint8:
        return not images.size
    if np.issubdtype(images.dtype, np.floating):
        values = images.astype(np.float64)
        return bool(np.isfinite(values).all() and (values.size == 0 or (values.min() >= -1e-3 and values.max() <= 1 + 1e-3)))
    return bool(images.size == 0 or (images.min() >= 0 and images.max() <= 1))


# ----------------------------------------------------------------- classify


@pytest.mark.parametrize("name, config", CLASSIFIERS, ids=_ids(CLASSIFIERS))
@pytest.mark.slow
def test_classify_works_or_raises_a_value_error(name, config):
    model = build(name, config)
    shape = model.classifier().input_shape[1:] if hasattr(model, "classifier") else model.input_shape[1:]
    outcomes = set()

    @FEW
    @given(images=image_arrays(tuple(shape)))
    @example(images=np.random.default_rng(1).random((2, *shape)).astype(np.float32))
    @example(images=255 * np.random.default_rng(1).random((2, *shape)).astype(np.float32))
    def check(images):
        valid = _valid_image_batch(images, shape)
        try:
            probabilities = model.classify(images)
        except ValueError as error:
            assert valid is not True, f"valid input refused: {error}"
            assert str(error)
            outcomes.add("refused")
            return
        assert valid is not False, f"accepted {images.dtype} {images.shape}"
        outcomes.add("worked")
        n = 1 if images.ndim == 3 else len(images)
        assert probabilities.shape == (n, model.num_classes)
        assert np.isfinite(probabilities).all()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)

    check()
    assert outcomes == {"worked", "refused"}


# ----------------------------------------------------------------- generate

LABELS = st.one_of(
    st.none(),
    st.integers(-1, 3),
    st.lists(st.integers(-1, 3), min_size=0, max_size=4),
    st.lists(st.sampled_from([0.0, 1.0, 0.7]), min_size=1, max_size=3),
)


@pytest.mark.parametrize("name, config", GENERATORS, ids=_ids(GENERATORS))
def test_generate_works_or_raises_a_value_error(name, config):
    model = build(name, config)
    outcomes = set()

    @FEW
    @example(n=2, labels=None, seed=0, z_rows=None, z_width=model.latent_dim)
    @example(n=0, labels=None, seed=0, z_rows=None, z_width=model.latent_dim)
    @given(
        n=st.one_of(st.none(), st.integers(-2, 4), st.sampled_from([2.0, True])),
        labels=LABELS,
        seed=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
        z_rows=st.one_of(st.none(), st.integers(0, 3)),
        z_width=st.sampled_from([model.latent_dim, model.latent_dim + 1]),
    )
    def check(n, labels, seed, z_rows, z_width):
        z = None if z_rows is None else np.random.default_rng(0).normal(size=(z_rows, z_width))
        try:
            images = model.generate(n=n, labels=labels, seed=seed, z=z)
        except ValueError as error:
            assert str(error)
            outcomes.add("refused")
            return
        outcomes.add("worked")
        # Worked: the promised output, for a request that made sense.
        expected_n = z_rows if z is not None else (n if n is not None else len(labels))
        assert isinstance(expected_n, int) and not isinstance(expected_n, bool) and expected_n >= 1
        assert images.shape == (expected_n, *model.image_shape) and images.dtype == np.float32
        assert np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0
        if model.conditional and labels is not None:
            flat = np.atleast_1d(np.asarray(labels, np.float64))
            assert np.all(flat == np.round(flat)) and flat.min() >= 0 and flat.max() < model.num_classes
        if not model.conditional:
            assert labels is None

    check()
    assert outcomes == {"worked", "refused"}


def test_generate_refuses_no_images_and_fractional_labels():
    # n=0, n=-1 and fractional labels (0.7 is not class 0) raise a ValueError naming the problem.
    gan = build(*GENERATORS[1])
    with pytest.raises(ValueError, match=r"^generate\(\): n must be a positive integer, got 0\.$"):
        gan.generate(0)
    with pytest.raises(ValueError, match=r"^generate\(\): n must be a positive integer, got -1\.$"):
        gan.generate(-1)
    with pytest.raises(ValueError, match=r"^labels must be whole class indices, got \[0\.7\]\.$"):
        gan.generate(1, labels=[0.7])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\), got 0\.\.2"):
        gan.generate(labels=[0, 2])


# ------------------------------------------------------- translate, infill


@pytest.mark.parametrize("name, config", TRANSLATORS, ids=_ids(TRANSLATORS))
def test_translate_works_or_raises_a_value_error(name, config):
    model = build(name, config)
    shape = tuple(model.translation_image_shape())

    @FEW
    @given(images=image_arrays(shape))
    def check(images):
        try:
            out = model.translate(images)
        except ValueError as error:
            assert str(error)
            return
        assert out.dtype == np.float32 and np.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0

    check()


@pytest.mark.parametrize("name, config", INFILLERS, ids=_ids(INFILLERS))
def test_infill_works_or_raises_a_value_error(name, config):
    model = build(name, config)
    shape = tuple(model.translation_image_shape())

    @FEW
    @given(images=image_arrays(shape), target=st.integers(-1, 2))
    def check(images, target):
        masks = np.ones(images.shape[:-1] + (1,), np.float32) if images.ndim >= 3 else images
        try:
            out = model.infill(images, masks, target)
        except ValueError as error:
            assert str(error)
            return
        assert out.dtype == np.float32 and np.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0

    check()


# ----------------------------------------------------------------- pipeline

MODES = ["L", "LA", "RGB", "RGBA", "I;16"]


@settings(FEW, max_examples=8)
@given(
    files=st.lists(
        st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from(MODES), st.integers(0, 2**16)),
        min_size=1, max_size=4,
    ),
    size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    channels=st.sampled_from([1, 3]),
    policy=st.sampled_from(["resize", "pad", "crop", "pad_end", "error"]),
    low=st.floats(-2, 1, allow_nan=False),
    span=st.floats(0.01, 300, allow_nan=False),
    batch_size=st.integers(1, 3),
)
def test_the_pipeline_gives_the_promised_images_or_names_the_file(
    files, size, channels, policy, low, span, batch_size
):
    import tensorflow as tf
    from PIL import Image

    from gan_zoo.data.image_folder import ImageRecord
    from gan_zoo.data.pipeline import evaluation_dataset

    high = low + span
    with tempfile.TemporaryDirectory() as folder:
        records = []
        for i, (h, w, mode, seed) in enumerate(files):
            rng = np.random.default_rng(seed)
            if mode == "I;16":
                image = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
            else:
                bands = len(mode)
                pixels = rng.integers(0, 256, (h, w, bands) if bands > 1 else (h, w), dtype=np.uint8)
                image = Image.fromarray(pixels, mode)
            path = f"{folder}/{i}.png"
            image.save(path)
            records.append(ImageRecord(path, label=i % 2))
        off_size = any((h, w) != size for h, w, *_ in files)
        dataset = evaluation_dataset(
            records, batch_size=batch_size, image_size=size, channels=channels,
            value_range=(low, high), size_policy=policy,
        )
        try:
            batches = [(x.numpy(), y.numpy()) for x, y in dataset]
        except tf.errors.InvalidArgumentError as error:
            # The "error" policy names the file and the sizes.
            assert policy == "error" and off_size, error.message
            assert f"{folder}/" in error.message and "but image_size is" in error.message
            return
        assert not (policy == "error" and off_size)
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches])
        assert images.shape == (len(files), *size, channels) and images.dtype == np.float32
        tolerance = 1e-5 * max(1.0, abs(low), abs(high))
        assert images.min() >= low - tolerance and images.max() <= high + tolerance
        assert labels.tolist() == [i % 2 for i in range(len(files))]
