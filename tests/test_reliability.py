"""Reliability: bad options, files and inputs fail early, in one line.

Models are tiny; nothing here trains for more than a few steps except the
end-to-end recipe tests (marked slow where they train).
"""

import re

import numpy as np
import pytest

import gan_zoo
from gan_zoo import config_checks as check

# --------------------------------------------------------------------- config


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


# ------------------------------------------------------------- pixel range

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
@pytest.mark.slow
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


# ----------------------------------------------------- weights and configs

TINY_DCGAN = {"base_filters": 2, "latent_dim": 4}


def test_dcgan_v1_weights_do_not_load_into_v3(tmp_path):
    from gan_zoo.weights import WeightsMismatchError

    path = tmp_path / "v1.weights.h5"
    gan_zoo.load("dcgan", variant="v1", image_size=16, **TINY_DCGAN).save_weights(path)
    # Same kernel shapes: Keras alone loads them silently.
    with pytest.raises(WeightsMismatchError) as caught:
        gan_zoo.load("dcgan", variant="v3", image_size=16, weights=path, **TINY_DCGAN)
    assert str(caught.value) == (
        f"{path} was saved by a DCGAN with other options: upsampling='transposed' "
        "(this model: 'resize_conv'), variant='v1' (this model: 'v3'); build the model "
        "with the file's options."
    )


def test_50_px_weights_do_not_load_into_a_64_px_model(tmp_path):
    from gan_zoo.weights import WeightsMismatchError

    path = tmp_path / "g.keras"
    gan_zoo.load("dcgan", image_size=50, **TINY_DCGAN).save(path)
    with pytest.raises(WeightsMismatchError, match=r"image_size=50 \(this model: 64\)"):
        gan_zoo.load("dcgan", image_size=64, weights=path, **TINY_DCGAN)
    # Options that do not shape the weights may differ.
    loaded = gan_zoo.load("dcgan", image_size=50, weights=path, real_label=0.8, seed=3, **TINY_DCGAN)
    assert loaded.real_label == 0.8


def test_weights_of_another_model_class_are_refused(tmp_path):
    from gan_zoo.weights import WeightsMismatchError

    path = tmp_path / "semi.weights.h5"
    gan_zoo.load("semi_cgan", width=0.0625, latent_dim=8).save_weights(path)
    with pytest.raises(WeightsMismatchError, match="holds weights of a SemiSupervisedCGAN, not of a DCGAN"):
        gan_zoo.load("dcgan", image_size=50, weights=path, **TINY_DCGAN)
    with pytest.raises(WeightsMismatchError, match=r"generator_spectral_norm=True \(this model: False\)"):
        gan_zoo.load("semi_cgan", width=0.0625, latent_dim=8, generator_spectral_norm=False, weights=path)


def test_plain_keras_weights_load_with_a_warning(tmp_path):
    import keras

    source = gan_zoo.load("dcgan", image_size=16, **TINY_DCGAN)
    path = tmp_path / "plain.weights.h5"
    keras.Model.save_weights(source, str(path))  # no config kept
    with pytest.warns(UserWarning, match="holds no model config"):
        loaded = gan_zoo.load("dcgan", image_size=16, weights=path, **TINY_DCGAN)
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_classifier_weights_keep_their_config(tmp_path):
    from gan_zoo.weights import WeightsMismatchError

    path = tmp_path / "c.weights.h5"
    gan_zoo.load("small_cnn", width=0.125, image_size=16).save_weights(path)
    with pytest.raises(WeightsMismatchError, match=r"image_size=16 \(this model: 24\)"):
        gan_zoo.load("small_cnn", width=0.125, image_size=24, weights=path)
    gan_zoo.load("small_cnn", width=0.125, image_size=16, dropout=0.5, weights=path)


# --------------------------------------------------- broken .keras files


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "dcgan.keras"
    gan_zoo.load("dcgan", image_size=16, **TINY_DCGAN).save(path)
    return path


def _broken(keras_file, tmp_path, kind):
    data = keras_file.read_bytes()
    path = tmp_path / f"{kind}.keras"
    if kind == "empty":
        data = b""
    elif kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "text":
        data = b"not a model\n"
    elif kind == "bitflip":
        import zipfile

        with zipfile.ZipFile(keras_file) as archive:
            info = archive.getinfo("model.weights.h5")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
        data = bytearray(data)
        data[offset] ^= 0xFF
        data = bytes(data)
    path.write_bytes(data)
    return path


BROKEN = {
    "empty": "is empty (0 bytes): not a .keras model file.",
    "truncated": "is not a .keras model file: not a zip archive",
    "text": "is not a .keras model file: not a zip archive (12 bytes",
    "bitflip": "is a corrupt .keras model file: its member model.weights.h5 fails its CRC check.",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_keras_files_name_the_path(keras_file, tmp_path, kind, capsys):
    from gan_zoo import cli
    from gan_zoo.weights import ModelFileError

    path = _broken(keras_file, tmp_path, kind)
    expected = f"{path} {BROKEN[kind]}"
    with pytest.raises(ModelFileError) as caught:
        gan_zoo.load_model(path)
    assert str(caught.value).startswith(expected)
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        gan_zoo.load("dcgan", image_size=16, weights=path, **TINY_DCGAN)
    assert cli.main(["sample", str(path), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gan-zoo: error: {expected}"), err


def test_a_missing_keras_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"Model file {tmp_path / 'no.keras'} does not exist.")):
        gan_zoo.load_model(tmp_path / "no.keras")


# ---------------------------------------------------------- safe loading


def test_keras_files_with_code_load_only_in_unsafe_mode(tmp_path):
    import keras

    images = keras.Input((4,))
    model = keras.Model(images, keras.layers.Lambda(lambda x: x * 2.0)(images))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        gan_zoo.load_model(path)
    loaded = gan_zoo.load_model(path, safe_mode=False)  # the caller trusts this file
    np.testing.assert_allclose(loaded.predict(np.ones((1, 4)), verbose=0), 2.0)


# ------------- data sets and recipes: tiny IDC folders written by the tests


def write_idc(root, patients=8, per_label=6, labels=(0, 1), size=50, seed=0):
    """A tiny IDC folder <patient>/<label>/<patient>_idx5_x_y_class<label>.png."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for p in range(patients):
        patient = str(10000 + p)
        for label in labels:
            folder = root / patient / str(label)
            folder.mkdir(parents=True)
            for i in range(per_label):
                base = 60 + 120 * label
                pixels = np.clip(rng.normal(base, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{patient}_idx5_x{50 * i}_y0_class{label}.png")
    return root


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def load_recipe(name):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "recipes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line_status(capsys, recipe, argv):
    status = load_recipe(recipe).main.command_line(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return status, err.strip()


TRUNCATED = "truncated PNG: the IEND chunk that ends a PNG file is missing"


@pytest.mark.parametrize("recipe", ["dcgan_idc", "semi_cgan_idc"])
def test_recipes_name_a_corrupt_png_before_training(capsys, tmp_path, recipe):
    # A corrupt PNG: one line naming the file and an option the user has; no training.
    data = write_idc(tmp_path / "idc", patients=3, per_label=2)
    bad = truncate(data / "10001" / "1" / "10001_idx5_x50_y0_class1.png")
    out = tmp_path / "run"
    status, err = one_line_status(capsys, recipe, ["--data-dir", str(data), "--out", str(out)])
    assert status == 2
    assert err == (
        f"python recipes/{recipe}.py: error: {bad}: unreadable image: {TRUNCATED}; "
        "pass --on-error skip to leave it out."
    )
    assert not (out / "backup").exists()


@pytest.mark.parametrize("recipe", ["dcgan_idc", "semi_cgan_idc"])
def test_recipes_refuse_one_class_data_before_training(capsys, tmp_path, recipe):
    # Data with patches of one class only is refused before training, not after it.
    data = write_idc(tmp_path / "idc", patients=4, per_label=20, labels=(0,))
    out = tmp_path / "run"
    status, err = one_line_status(capsys, recipe, ["--data-dir", str(data), "--out", str(out)])
    assert status == 2
    assert re.search(r"The (labelled )?training patients( \(split seed 0\))? have no (labelled )?"
                     r"(patches|images) of class 1 \(idc\)", err), err
    assert "both classes" in err
    assert not any(out.glob("backup*"))


def test_dcgan_recipe_with_fewer_patches_than_the_downstream_batch(capsys, tmp_path):
    # Too few patches for one downstream batch is refused before the GAN trains.
    data = write_idc(tmp_path / "idc", patients=7, per_label=3)
    out = tmp_path / "run"
    status, err = one_line_status(
        capsys, "dcgan_idc", ["--data-dir", str(data), "--out", str(out), "--batch-size", "8"])
    assert status == 2
    assert re.fullmatch(
        r"python recipes/dcgan_idc.py: error: The training patients have \d+ images, fewer than "
        r"the downstream classifier's batch size 64: not one full batch. Lower "
        r"--eval-batch-size or use more data.", err), err
    assert not (out / "backup").exists()


def test_semi_cgan_recipe_checks_the_baselines_batches(capsys, tmp_path):
    data = write_idc(tmp_path / "idc", patients=7, per_label=6)
    status, err = one_line_status(
        capsys, "semi_cgan_idc",
        ["--data-dir", str(data), "--out", str(tmp_path / "run"), "--batch-size", "8"])
    assert status == 2 and "The baseline cruz_roa_cnn trains with batch size 128" in err, err
    status, err = one_line_status(
        capsys, "semi_cgan_idc",
        ["--data-dir", str(data), "--out", str(tmp_path / "run2"), "--baselines", "dcgan"])
    assert status == 2 and err.endswith("--baselines: 'dcgan' is a generator, not a classifier."), err


def test_cli_refuses_a_conditional_gan_without_images_of_a_class(capsys, tmp_path):
    # A conditional GAN needs images of every class: refused before any work.
    from gan_zoo import cli

    data = write_idc(tmp_path / "idc", patients=2, per_label=4, labels=(0,))
    code = cli.main(["train", "dcgan", "--data-dir", str(data), "--layout", "idc", "--conditional",
                     "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        f"gan-zoo: error: {data} has no images of class 'idc' (label 1): a conditional GAN "
        "needs images of every class (train without --conditional, or add images)."
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_finds_a_corrupt_png_before_training_and_can_skip_it(capsys, tmp_path):
    # An image folder is decoded while scanning; --on-error skip leaves the bad file out and counts it.
    import json

    from PIL import Image

    from gan_zoo import cli

    rng = np.random.default_rng(0)
    for name in ("benign", "malignant"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    bad = truncate(tmp_path / "data" / "malignant" / "3.png")
    argv = ["train", "dcgan", "--data-dir", str(tmp_path / "data"), "--set", "image_size=16",
            "--set", "base_filters=2", "--set", "latent_dim=4", "--epochs", "1",
            "--batch-size", "4", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gan-zoo: error: {bad}: {TRUNCATED}; pass --on-error skip to leave it out."
    assert not (tmp_path / "run").exists()  # found before any work
    assert cli.main([*argv, "--on-error", "skip"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["skipped_files"] == 1 and metrics["data"]["images"] == 15
    assert metrics["data"]["skipped_examples"] == [f"{bad}: {TRUNCATED}"]


@pytest.mark.slow
def test_dcgan_recipe_same_seed_same_run_validation_per_epoch_saved_before_evaluation(
    tmp_path, monkeypatch
):
    # The same --seed gives identical weights and samples (CPU);
    # the per-epoch downstream scores are validation scores only;
    # the model is saved before the downstream evaluation;
    # --on-error skip leaves a truncated patch out and counts it.
    # The downstream classifiers are not trained here (their training is
    # tested in test_recipes.py); the GAN is, twice.
    import json

    import keras

    from gan_zoo.training.downstream import AugmentationEvaluation

    def untrained(self, images, labels):
        return gan_zoo.load(self.classifier, **self.classifier_options)

    monkeypatch.setattr(AugmentationEvaluation, "_fit", untrained)
    data = write_idc(tmp_path / "idc", patients=8, per_label=6)
    bad = truncate(data / "10002" / "0" / "10002_idx5_x100_y0_class0.png")
    recipe = load_recipe("dcgan_idc")

    def argv(out):
        return ["--data-dir", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "16",
                "--base-filters", "4", "--eval-every", "1", "--eval-width", "0.125",
                "--eval-batch-size", "16", "--on-error", "skip", "--seed", "7"]

    first = recipe.main(argv(tmp_path / "a"))
    assert first["data"]["skipped_files"] == 1
    assert first["data"]["skipped_examples"] == [f"{bad}: unreadable image: {TRUNCATED}"]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["data"]["skipped_files"] == 1
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert {"eval_synthetic_validation_auroc", "eval_augmented_validation_auroc"} <= set(logged[-1])
    assert not [key for record in logged for key in record if "test" in key]

    # The second run fails in the test-patient evaluation: the model is saved.
    def failing(self, gan):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(AugmentationEvaluation, "test_metrics", failing)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        recipe.main(argv(tmp_path / "b"))
    assert (tmp_path / "b" / "dcgan.keras").is_file()

    a = gan_zoo.load_model(tmp_path / "a" / "dcgan.keras", compile=False)
    b = gan_zoo.load_model(tmp_path / "b" / "dcgan.keras", compile=False)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), x.path)
    grids = sorted(p.name for p in (tmp_path / "a" / "samples").glob("*.png"))
    assert grids == ["samples-epoch-0001.png"]
    for name in grids:
        assert (tmp_path / "a" / "samples" / name).read_bytes() == (tmp_path / "b" / "samples" / name).read_bytes()
    np.testing.assert_array_equal(a.generate(4, seed=1), b.generate(4, seed=1))


# ------------------------------------------------- damaged run folders resume


def _image_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("benign", "malignant"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _cli_train(data, out, epochs):
    from gan_zoo import cli

    return cli.main(["train", "dcgan", "--data-dir", str(data), "--set", "image_size=16",
                     "--set", "base_filters=2", "--set", "latent_dim=4", "--epochs", str(epochs),
                     "--batch-size", "4", "--out", str(out)])


@pytest.mark.slow
def test_a_partial_last_metrics_line_is_dropped_on_resume(tmp_path, caplog):
    # A kill or full disk during the append leaves half a line; the resume
    # drops it, trains to the end and writes the model.
    import json

    data, out = _image_folder(tmp_path / "data"), tmp_path / "run"
    assert _cli_train(data, out, 1) == 0
    log = out / "metrics.jsonl"
    with log.open("a") as file:
        file.write('{"epoch": 2, "d_loss": 0.6')  # the append of epoch 2, cut off
    assert _cli_train(data, out, 2) == 0
    assert "Dropping an incomplete line" in caplog.text
    lines = log.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    assert (out / "dcgan.keras").is_file()


def test_an_epoch_logged_after_the_last_backup_is_not_counted(tmp_path, caplog):
    # A kill between an epoch's log line and its backup: the record is of
    # an epoch the restored model has not trained.
    import json

    data, out = _image_folder(tmp_path / "data"), tmp_path / "run"
    assert _cli_train(data, out, 1) == 0
    log = out / "metrics.jsonl"
    with log.open("a") as file:
        file.write(json.dumps({"epoch": 2, "d_loss": 0.5, "g_loss": 0.5}) + "\n")
    assert _cli_train(data, out, 1) == 0  # the run reopened at the epochs its backup holds
    assert "Dropping the record of epoch 2" in caplog.text
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1


@pytest.mark.slow
def test_a_garbage_state_file_resumes_from_the_weight_files(tmp_path, caplog, capsys):
    # The backup's weight files are intact; only state.json is garbage.
    import json

    data, out = _image_folder(tmp_path / "data"), tmp_path / "run"
    assert _cli_train(data, out, 1) == 0
    (out / "backup" / "state.json").write_text("\x00garbage{")
    capsys.readouterr()
    assert _cli_train(data, out, 2) == 0
    assert "Ignoring the unreadable" in caplog.text and "resuming from the weight files" in caplog.text
    assert "Resuming" in capsys.readouterr().out
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in logged] == [1, 2]  # epoch 1 was not trained again
    assert json.loads((out / "backup" / "state.json").read_text())["completed_epochs"] == 2
