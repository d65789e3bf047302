"""`gan-zoo synthesize` and `gan_zoo.synthesis`: synthetic datasets the loaders read back."""

import contextlib
import hashlib
import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

import gan_zoo
from gan_zoo import cli
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.idc import IDC_SIZE_POLICY, scan_idc
from gan_zoo.data.mammography import scan_cbis_ddsm
from gan_zoo.data.mammography.pixels import load_grayscale
from gan_zoo.synthesis import (
    HDF5_NAME,
    MANIFEST,
    SynthesisError,
    image_seed,
    prepare,
    regenerate,
    synthesize,
)


@pytest.fixture(scope="module")
def histology(tmp_path_factory):
    """The demo IDC-layout histology patches, in a private folder."""
    return demo_dir("histology", tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def mammography(tmp_path_factory):
    """The demo CBIS-DDSM-like mammograms with lesion masks, in a private folder."""
    return demo_dir("mammography", tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def idc_run(tmp_path_factory, histology):
    """A tiny conditional DCGAN trained one short epoch on the demo IDC patches by `gan-zoo train`."""
    out = tmp_path_factory.mktemp("runs") / "dcgan"
    argv = ["train", "dcgan", "--data-dir", str(histology), "--layout", "idc", "--conditional",
            "--set", "base_filters=4", "--set", "latent_dim=8", "--epochs", "1", "--batch-size", "64",
            "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def idc_synthetic(tmp_path_factory, idc_run):
    """1,000 labelled patches of the tiny DCGAN, written by the command line."""
    out = tmp_path_factory.mktemp("synthetic") / "idc"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["synthesize", str(idc_run), "--n", "1000", "--labels", "0:500,1:500",
                         "--out", str(out), "--seed", "7", "--batch-size", "250"])
    assert code == 0
    return out


def _files(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_refuses_to_write_into_a_data_folder(idc_run, histology, mammography, capsys):
    data = histology
    before = _files(data)
    code = cli.main(["synthesize", str(idc_run), "--n", "10", "--labels", "1:10", "--out", str(data)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "is not a gan-zoo synthesize output" in err
    assert _files(data) == before

    inside = mammography / "synthetic"
    with pytest.raises(SynthesisError, match="inside"):
        prepare(idc_run, out=inside, n=4, masks=mammography)
    assert not inside.exists()


def test_user_errors_are_one_line_before_generation(idc_run, tmp_path, capsys):
    out, other = tmp_path / "out", tmp_path / "other"
    other.mkdir()
    for argv, text in [
        (["--n", "10", "--labels", "0:5,1:6"], "labels count 11 images but --n is 10"),
        (["--n", "10", "--labels", "0:5,2:5"], "not classes"),
        (["--n", "10", "--labels", "a:b"], "LABEL:COUNT"),
        (["--n", "10", "--masks", str(other)], "--masks applies only to ciGAN"),
        (["--n", "10", "--direction", "a_to_b"], "only with --translate"),
        (["--n", "10", "--layout", "cbis_ddsm"], "ciGAN"),
    ]:
        assert cli.main(["synthesize", str(idc_run), "--out", str(out), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, (argv, err)
        assert not out.exists()


def test_idc_generator_writes_1000_labelled_patches_the_idc_loader_reads(idc_run, idc_synthetic):
    dataset = scan_idc(idc_synthetic, verify=True)
    assert len(dataset) == 1000
    assert dataset.class_counts == {0: 500, 1: 500}
    assert dataset.patients == ("synthetic",)
    assert {p.size for p in dataset.patches} == {(50, 50)}
    manifest = json.loads((idc_synthetic / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["count"] == 1000
    assert manifest["gan_zoo_version"] == gan_zoo.__version__
    model = manifest["model"]
    assert model["id"] == "dcgan" and len(model["weights_sha256"]) == 64
    assert model["source"].endswith("dcgan.keras") and len(model["source_sha256"]) == 64
    assert "histology" in json.dumps(model["run_config"])  # what the generator was trained on
    images = manifest["images"]
    assert [e["index"] for e in images] == list(range(1000))
    assert [e["seed"] for e in images[:3]] == [image_seed(7, i) for i in range(3)]
    assert [e["label"] for e in images] == [0] * 500 + [1] * 500
    for entry in (images[0], images[999]):
        path = idc_synthetic / entry["file"]
        assert path.is_file() and f"class{entry['label']}" in path.name
    assert not list(idc_synthetic.rglob(".*"))  # no progress or partial files left


def test_synthetic_patches_train_the_downstream_cnn(idc_synthetic):
    from gan_zoo.training.classify import predict_scores, train_classifier

    records = scan_idc(idc_synthetic).records()
    chosen = [r for r in records if r.label == 0][:32] + [r for r in records if r.label == 1][:32]
    keras.utils.set_random_seed(0)
    cnn = gan_zoo.load("small_cnn", width=0.125, seed=0)
    history = train_classifier(cnn, chosen, epochs=1, batch_size=32, size_policy=IDC_SIZE_POLICY, verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    scores = predict_scores(cnn, chosen[:8], size_policy=IDC_SIZE_POLICY)
    assert scores.shape == (8,) and np.all((scores >= 0) & (scores <= 1))


def test_any_image_is_regenerated_alone(idc_run, idc_synthetic):
    manifest = json.loads((idc_synthetic / MANIFEST).read_text())
    for index in (3, 777):
        entry = manifest["images"][index]
        alone = np.round(regenerate(idc_run, idc_synthetic, index) * 255).astype(int)
        written = np.asarray(Image.open(idc_synthetic / entry["file"]), int)
        assert np.abs(alone - written).max() <= 1  # the same image, up to the last bit's rounding


def test_rerun_continues_or_refuses_other_arguments(idc_run, idc_synthetic, capsys):
    before = _files(idc_synthetic)
    assert cli.main(["synthesize", str(idc_run), "--n", "1000", "--labels", "0:500,1:500",
                     "--out", str(idc_synthetic), "--seed", "7", "--batch-size", "250"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert cli.main(["synthesize", str(idc_run), "--n", "1000", "--labels", "0:500,1:500",
                     "--out", str(idc_synthetic), "--seed", "8", "--batch-size", "250"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other arguments" in err and "seed: 7 there, 8 now" in err
    assert _files(idc_synthetic) == before


def test_resume_after_an_interruption_gives_identical_files(idc_run, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    options = dict(n=90, labels="0:40,1:50", seed=3, batch_size=20, progress=False)
    synthesize(idc_run, out=whole, **options)

    job = prepare(idc_run, out=resumed, **{k: v for k, v in options.items() if k != "progress"})
    write, calls = job.layout.write, []

    def interrupted_write(entries, images, plan):
        calls.append(len(entries))
        write(entries, images, plan)  # files of the third batch written, its entries not yet recorded
        if len(calls) == 3:
            raise KeyboardInterrupt

    job.layout.write = interrupted_write
    with pytest.raises(KeyboardInterrupt):
        job.run(progress=False)
    partial = json.loads((resumed / MANIFEST).read_text())
    assert partial["status"] == "incomplete" and "images" not in partial

    result = synthesize(idc_run, out=resumed, **options)
    assert (result.resumed_from, result.generated, result.count) == (40, 50, 90)
    assert _files(resumed) == _files(whole)


def test_a_published_preset_synthesizes_what_its_run_does_and_a_tampered_one_is_refused(idc_run, tmp_path):
    preset = tmp_path / "preset"
    gan_zoo.publish(idc_run, preset)
    options = dict(n=20, labels="0:10,1:10", seed=3, batch_size=10, progress=False)
    synthesize(idc_run, out=tmp_path / "from_run", **options)
    synthesize(preset, out=tmp_path / "from_preset", **options)
    images = {name: [np.asarray(Image.open(p)) for p in sorted((tmp_path / name).rglob("*.png"))]
              for name in ("from_run", "from_preset")}
    assert len(images["from_preset"]) == 20
    np.testing.assert_array_equal(np.stack(images["from_run"]), np.stack(images["from_preset"]))
    manifests = [json.loads((tmp_path / name / MANIFEST).read_text()) for name in ("from_run", "from_preset")]
    assert manifests[0]["model"]["weights_sha256"] == manifests[1]["model"]["weights_sha256"]

    weights = next(preset.glob("*.weights.h5"))
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    with pytest.raises(SynthesisError, match="SHA-256"):
        synthesize(preset, out=tmp_path / "tampered", **options)


def test_a_second_writer_into_the_same_folder_is_refused(idc_run, tmp_path):
    import fcntl

    from gan_zoo.synthesis.dataset import LOCK

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / LOCK, "w") as held:  # as another synthesize process would hold it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SynthesisError, match="Another process is writing"):
            synthesize(idc_run, out=out, n=4, labels="1:4", progress=False)
    assert not (out / MANIFEST).exists()


@pytest.fixture(scope="module")
def cigan_run(tmp_path_factory):
    """A run folder holding a tiny ciGAN for 64-px patches (random weights, no training)."""
    run = tmp_path_factory.mktemp("runs") / "cigan"
    run.mkdir()
    keras.utils.set_random_seed(0)
    gan = gan_zoo.load("cigan", patch_size=64, widths=[8, 8, 8, 8, 8], discriminator_widths=[4, 4, 4, 4, 4],
                       feature_weights="random", pretrain_steps=1)
    gan.save(run / "cigan.keras")
    return run


def test_cigan_paints_lesions_the_cbis_ddsm_loader_reads_with_masks(cigan_run, mammography, tmp_path):
    masks_dir = mammography
    out = tmp_path / "painted"
    result = synthesize(cigan_run, out=out, labels={1: 6, 0: 4}, seed=5, batch_size=4, masks=masks_dir,
                        progress=False)
    assert result.layout == "cbis_ddsm" and result.count == 10
    records = scan_cbis_ddsm(out)
    assert len(records) == 10
    assert sorted(r.label for r in records) == [0] * 4 + [1] * 6
    manifest = json.loads((out / MANIFEST).read_text())
    real_patients = {r.patient_id for r in scan_cbis_ddsm(masks_dir)}
    by_image = {str(out / e["file"]): e for e in manifest["images"]}
    for record in records:
        entry = by_image[record.path]
        assert record.patient_id == entry["context_patient"] in real_patients
        assert entry["mask_patient"] in real_patients and entry["mask_source"].startswith(str(masks_dir))
        image = np.round(load_grayscale(record.path) * 255).astype(np.uint8)
        mask = load_grayscale(record.mask_path) > 0.5
        assert image.shape == mask.shape == (64, 64) and mask.any()
        # Outside the mask the patch is the lesion-free context, pixel for pixel.
        top, left = entry["context_corner"]
        context = np.round(load_grayscale(entry["context_source"]) * 255).astype(np.uint8)
        np.testing.assert_array_equal(image[~mask], context[top : top + 64, left : left + 64][~mask])
    alone = regenerate(cigan_run, out, 7)
    written = np.asarray(Image.open(out / manifest["images"][7]["file"]), int)
    assert np.abs(np.round(alone[..., 0] * 255) - written).max() <= 1


def test_cigan_needs_masks(cigan_run, tmp_path):
    with pytest.raises(SynthesisError, match="--masks FROM_DIR"):
        prepare(cigan_run, out=tmp_path / "x", n=4)


def test_he_generator_writes_hdf5_and_png_tiles(tmp_path):
    from gan_zoo.data.he import PathologyHDF5, scan_he_images

    keras.utils.set_random_seed(0)
    generator = gan_zoo.load("dcgan", image_size=16, base_filters=4, latent_dim=8)
    result = synthesize(generator, out=tmp_path / "h5", n=10, layout="hdf5", batch_size=4, progress=False)
    with PathologyHDF5(tmp_path / "h5" / HDF5_NAME, "train") as tiles:
        assert len(tiles) == 10 and tiles.image_shape == (16, 16, 3)
        stored = tiles.read(np.arange(10))
    assert result.layout == "hdf5"
    synthesize(generator, out=tmp_path / "png", n=10, batch_size=4, progress=False)
    sources = scan_he_images(tmp_path / "png")
    assert len(sources) == 10
    first = np.asarray(Image.open(sources[0].path))
    np.testing.assert_array_equal(first, stored[0])  # same seeds, same images, either layout


def test_cyclegan_translates_one_class_of_an_idc_folder(histology, tmp_path):
    keras.utils.set_random_seed(0)
    translator = gan_zoo.load("cyclegan", generator_filters=2, discriminator_filters=2, residual_blocks=1)
    out = tmp_path / "translated"
    result = synthesize(translator, out=out, n=12, translate=histology, direction="a_to_b",
                        batch_size=5, progress=False)
    assert result.layout == "idc"
    translated = scan_idc(out, verify=True)
    real = scan_idc(histology)
    assert len(translated) == 12 and translated.class_counts == {0: 0, 1: 12}
    sources = {(p.patient, p.x, p.y) for p in real.patches if p.label == 0}
    assert {(p.patient, p.x, p.y) for p in translated.patches} <= sources
    with pytest.raises(SynthesisError, match="--direction"):
        prepare(translator, out=tmp_path / "x", translate=histology)


def test_pathology_gan_with_inference_noise_makes_each_image_alone(tmp_path):
    from gan_zoo.data.he import PathologyHDF5

    keras.utils.set_random_seed(0)
    gan = gan_zoo.load("pathology_gan", stages=2, latent_dim=8, mapping_blocks=1, base_channels=8,
                       initial_channels=8, dense_units=8, attention_resolution=14, noise_at_inference=True)
    out = tmp_path / "he"
    synthesize(gan, out=out, n=6, layout="hdf5", batch_size=4, seed=2, progress=False)
    with PathologyHDF5(out / HDF5_NAME, "train") as tiles:
        stored = tiles.read(np.arange(6))
    assert stored.shape == (6, 28, 28, 3)
    # Each image's noise comes from its own seed, not from its batch.
    for index in (1, 5):
        np.testing.assert_array_equal(np.round(regenerate(gan, out, index) * 255), stored[index])
