"""Issue 8 (reliability): bad options, files and inputs fail early, in one line.

Each test names the issue item it covers. Models are tiny; nothing here
trains for more than a few steps except the end-to-end recipe tests
(marked slow where they train).
"""

import re

import numpy as np
import pytest

import gan_zoo
from gan_zoo import config_checks as check

# ----------------------------------------------------------------- 8.8 config


@pytest.mark.parametrize(
    "model, overrides, message",
    [
        ("dcgan", {"base_filters": 0}, "base_filters must be an integer >= 1; got 0."),
        ("dcgan", {"image_size": "big"}, "image_size must be an integer >= 16; got 'big'."),
        ("dcgan", {"image_size": 8}, "image_size must be an integer >= 16; got 8."),
        ("dcgan", {"num_classes": -1}, "num_classes must be an integer >= 0; got -1."),
        ("dcgan", {"num_classes": 1}, "num_classes must be 0 (unconditional) or at least 2; got 1."),
        ("dcgan", {"variant": "v4"}, "variant must be one of 'v1', 'v2', 'v3'; got 'v4'."),
        ("dcgan", {"latent_dim": 2.5}, "latent_dim must be an integer >= 1; got 2.5."),
        ("dcgan", {"real_label": 1.5}, "real_label must be None or a number in (0, 1]; got 1.5."),
        ("dcgan", {"synchronized_batch_norm": "false"},
         "synchronized_batch_norm must be True or False; got 'false'."),
        ("dcgan", {"learning_rate": -1e-4}, "learning_rate must be a number > 0; got -0.0001."),
        ("semi_cgan", {"width": 0}, "width must be a number >= 0.0078125; got 0."),
        ("semi_cgan", {"width": -1}, "width must be a number >= 0.0078125; got -1."),
        ("semi_cgan", {"width": "2"}, "width must be a number >= 0.0078125; got '2'."),
        ("semi_cgan", {"image_size": 64}, "image_size must be an integer from 49 to 56; got 64."),
        ("semi_cgan", {"image_size": "big"}, "image_size must be an integer from 49 to 56; got 'big'."),
        ("semi_cgan", {"num_classes": -1}, "num_classes must be an integer >= 2; got -1."),
        ("semi_cgan", {"discriminator_strides": (2, 2)},
         "discriminator_strides must be a sequence of 5 values; got (2, 2)."),
        ("semi_cgan", {"discriminator_strides": (2, 2, 0, 2, 1)},
         "discriminator_strides[2] must be an integer >= 1; got 0."),
        ("semi_cgan", {"class_weights": [1.0]}, "class_weights must be a sequence of 2 values; got [1.0]."),
        ("semi_cgan", {"beta_2": 1.0}, "beta_2 must be a number in [0, 1); got 1.0."),
        ("semi_cgan", {"seed": -3}, "seed must be an integer from 0 to 4294967295; got -3."),
        ("small_cnn", {"width": 0}, "width must be a number >= 0.015625; got 0."),
        ("small_cnn", {"image_size": 0}, "image_size must be an integer >= 1; got 0."),
        ("small_cnn", {"num_classes": 1}, "num_classes must be an integer >= 2; got 1."),
        ("small_cnn", {"dropout": 1}, "dropout must be a number in [0, 1); got 1."),
        ("cruz_roa_cnn", {"crop_size": 64}, "crop_size must be an integer from 1 to 50; got 64."),
        ("cruz_roa_cnn", {"weight_decay": -1}, "weight_decay must be a number >= 0; got -1."),
        ("cruz_roa_cnn", {"augment": 1}, "augment must be True or False; got 1."),
    ],
)
def test_config_values_are_checked_at_load(model, overrides, message):
    with pytest.raises(ValueError) as caught:
        gan_zoo.load(model, **overrides)
    assert str(caught.value) == message
    assert isinstance(caught.value, TypeError)  # ConfigError is both


def test_config_checks_convert_and_accept_valid_values():
    assert check.positive_int("n", np.int64(3)) == 3 and type(check.positive_int("n", 3)) is int
    assert check.number_in_range("p", 1, 0, 1) == 1.0
    assert check.optional(check.positive_int, "n", None) is None
    assert check.sequence_of(check.positive_int, "s", [1, 2], length=2) == (1, 2)
    assert check.boolean("b", np.bool_(True)) is True
    assert check.one_of("v", "a", ("a", "b")) == "a"
    assert check.seed("seed", 2**32 - 1) == 2**32 - 1
    for bad in (True, 1.0, "1", None, float("nan")):
        with pytest.raises(check.ConfigError, match=r"^n must be an integer >= 1; got "):
            check.positive_int("n", bad)
    with pytest.raises(check.ConfigError, match=r"x must be a number > 0; got nan"):
        check.positive_number("x", float("nan"))
    with pytest.raises(check.ConfigError, match=r"s must be a sequence; got 'ab'"):
        check.sequence_of(check.positive_int, "s", "ab")


def test_the_command_line_names_the_option(capsys, tmp_path, monkeypatch):
    from gan_zoo import cli

    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "demo"))
    code = cli.main(["train", "semi_cgan", "--set", "width=0", "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "gan-zoo: error: Cannot build 'semi_cgan' with this config: "
        "width must be a number >= 0.0078125; got 0."
    ]


# --------------------------------------------------------- 8.9 pixel range

EIGHT_BIT = re.escape("expects float images in [0, 1]; got values in [0, 255] (divide 8-bit pixels by 255).")


def _eight_bit_patches(size, n=2):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, size, size, 3)).astype(np.float32)
    pixels[0, 0, 0, 0], pixels[0, 0, 0, 1] = 0, 255
    return pixels


@pytest.mark.parametrize(
    "model, overrides, size",
    [("small_cnn", {"width": 0.125, "image_size": 16}, 16),
     ("cruz_roa_cnn", {"image_size": 32}, 32)],
)
def test_zoo_classifiers_refuse_0_255_pixels(model, overrides, size):
    classifier = gan_zoo.load(model, **overrides)
    pixels = _eight_bit_patches(size)
    with pytest.raises(ValueError, match=f"^{model}.predict {EIGHT_BIT}$"):
        classifier.predict(pixels, verbose=0)
    assert classifier.predict(pixels / 255.0, verbose=0).shape == (2, 2)


def test_semi_cgan_classifier_refuses_0_255_pixels():
    classifier = gan_zoo.load("semi_cgan", width=0.0625, latent_dim=8).classifier()
    pixels = _eight_bit_patches(50)
    with pytest.raises(ValueError, match=f"^semi_cgan_classifier.predict {EIGHT_BIT}$"):
        classifier.predict(pixels, verbose=0)
    with pytest.raises(ValueError, match="got uint8 pixels"):
        classifier.predict(pixels.astype(np.uint8), verbose=0)
    probabilities = classifier.predict(pixels / 255.0, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_exported_classify_signature_asserts_the_range(tmp_path):
    import tensorflow as tf

    classifier = gan_zoo.load("small_cnn", width=0.125, image_size=16)
    classifier.predict(np.zeros((1, 16, 16, 3), np.float32), verbose=0)
    gan_zoo.export(classifier, tmp_path / "exported")
    served = tf.saved_model.load(str(tmp_path / "exported"))
    pixels = _eight_bit_patches(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"classify expects float32 images in \[0, 1\]"):
        served.signatures["classify"](images=tf.constant(pixels))
    nan = np.full((1, 16, 16, 3), np.nan, np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="classify expects"):
        served.signatures["classify"](images=tf.constant(nan))
    out = served.signatures["classify"](images=tf.constant(pixels / 255.0))["probabilities"]
    np.testing.assert_allclose(out.numpy(), classifier.predict(pixels / 255.0, verbose=0), atol=1e-6)
