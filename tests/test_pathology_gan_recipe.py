"""recipes/pathology_gan.py end to end on the procedural demo data (tiny settings)."""

import hashlib
import importlib.util
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data.he import PathologyHDF5, PathologyHDF5Writer
from gan_zoo.data.he.prepare import prepare_he_data

RECIPE = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "pathology_gan.py"


def load_recipe():
    spec = importlib.util.spec_from_file_location("pathology_gan_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path_factory.getbasetemp() / "demo"))


TINY = ["--stages", "1", "--epochs", "2", "--batch-size", "32", "--n-critic", "1", "--no-dihedral",
        "--latent-dim", "8", "--base-channels", "4", "--initial-channels", "8", "--dense-units", "16",
        "--extractor-steps", "5", "--eval-samples", "48", "--eval-real", "64", "--eval-every", "1"]


@pytest.mark.slow
def test_recipe_trains_scores_and_walks_the_latent_space(tmp_path, demo, monkeypatch):
    import functools

    from test_cell_counts import random_inception_file

    recipe = load_recipe()
    out = tmp_path / "run"
    weights = random_inception_file(tmp_path / "inception.weights.h5")
    # The paper's 299-pixel Inception at 75 pixels: the same code, seconds instead of a minute.
    monkeypatch.setattr(recipe.study, "inception_extractor",
                        functools.partial(recipe.study.inception_extractor, input_size=75))
    options = [*TINY, "--augment", "translation,cutout", "--inception-weights", str(weights), "--out", str(out)]
    metrics = recipe.main(options)

    assert metrics["image_size"] == 14 and metrics["epochs"] == 2
    assert metrics["config"]["augment_policy"] == "translation,cutout"
    # Tiled demo patches: whole patients held out for validation and test.
    tiling = metrics["data"]["tiling"]
    groups = tiling["groups"]
    assert set(groups) == {"train", "valid", "test"}
    assert not set(groups["train"]) & set(groups["valid"]) and not set(groups["train"]) & set(groups["test"])
    assert sum(tiling["tiles"].values()) == tiling["kept_before_augmentation"]
    with PathologyHDF5(out / "data" / "tiles.h5", "test") as reference:
        assert len(reference) == metrics["data"]["test_tiles"] > 0
        assert reference.image_shape == (50, 50, 3)  # a demo patch is a tile
    # Validation KID after each epoch (FID needs more images than the 128
    # feature dimensions), test KID / FID once, all with one extractor.
    assert [e["epoch"] for e in metrics["kid_fid_validation"]] == [1, 2]
    assert all(np.isfinite(e["kid"]) for e in metrics["kid_fid_validation"])
    assert np.isfinite(metrics["kid_fid_test"]["kid"])
    records = [json.loads(line) for line in (out / "kid_fid_validation.jsonl").read_text().splitlines()]
    assert records[-1]["provenance"]["extractor_id"] == metrics["extractor"]["id"]
    assert records[-1]["provenance"]["reference_split"] == "valid"  # the HDF5 split
    assert records[-1]["provenance"]["n_fake"] == 48
    test = json.loads((out / "kid_fid_test.json").read_text())
    assert test["provenance"]["extractor_id"] == metrics["extractor"]["id"]
    assert test["provenance"]["n_real"] == min(64, metrics["data"]["test_tiles"])
    assert metrics["extractor"]["kind"].startswith("small_cnn")
    assert 0.0 <= metrics["extractor"]["validation_auroc"] <= 1.0
    # Samples, strips and the model.
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [
        "samples-epoch-0001.png", "samples-epoch-0002.png"]
    for name in ("interpolation_z.png", "interpolation_w.png", "w_vector_class1.png"):
        image = np.asarray(Image.open(out / name))
        assert image.ndim == 3 and image.shape[0] > 14, name
    assert (out / "pathology_gan.keras").is_file() and (out / "extractor.keras").is_file()
    assert metrics["train_images_per_second"] > 0
    # The paper's two other scores: Inception FID (None below 2,049 tiles, with the reason) and the cell-count FID.
    inception = metrics["inception_fid_test"]
    assert inception["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert inception["extractor_id"].startswith("inception_v3-pool3/legacy/75x75/sha256-")
    assert (inception["real"], inception["generated"]) == (test["provenance"]["n_real"], 48)
    assert inception["fid"] is None and "2049" in inception["fid_note"] and np.isfinite(inception["kid"])
    cells = metrics["cell_fid_test"]
    assert (cells["real"], cells["generated"], cells["scale"]) == (inception["real"], 48, 14 / 50)
    assert cells["fid"] is not None and cells["fid"] >= 0 and cells["detector"]["threshold"] == "otsu"
    assert set(cells["real_mean"]) == {"cancer_cells", "other_cells", "cancer_cell_density"}

    # Reopened (e.g. to extend it), the run keeps its extractor: one id for all its scores.
    again = recipe.main(options)
    assert again["extractor"] == metrics["extractor"]


def test_recipe_data_from_hdf5_and_a_reference_folder(tmp_path, demo):
    recipe = load_recipe()
    rng = np.random.default_rng(0)
    with PathologyHDF5Writer(tmp_path / "train.h5", (28, 28, 3)) as writer:
        writer.add("train", rng.integers(0, 200, (40, 28, 28, 3), dtype=np.uint8))
    folder = tmp_path / "reference"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 200, (56, 56, 3), dtype=np.uint8)).save(folder / "a.png")
    args = recipe.parse_args(["--data-dir", str(tmp_path / "train.h5"), "--reference-dir", str(folder),
                              "--stages", "2", "--tile-size", "28"])
    assert (args.latent_dim, args.dense_units) == (200, 1024)  # the paper's widths with real data

    data = prepare_he_data(args.data_dir, tmp_path / "run" / "data", tile_size=args.tile_size, overlap=args.overlap,
                           dihedral=not args.no_dihedral, reference=args.reference_dir, batch_size=40)  # one batch: enough
    assert data.train == tmp_path / "train.h5"
    assert data.summary["train_tiles"] == 40 and data.summary["test_tiles"] == 9  # 3 x 3 tiles, no dihedral
    assert data.references["validation"] is None and data.references["test"][1] == "test"
    assert data.counts_line() == "Tiles: 40 train, 9 test"
    # An HDF5 file without a test split needs a reference.
    with pytest.raises(ValueError, match="no test_img split"):
        prepare_he_data(tmp_path / "train.h5", tmp_path / "run" / "data", tile_size=28, overlap=0.5)


def test_a_folder_of_two_images_holds_out_validation_images_only_beside_a_reference(tmp_path):
    rng = np.random.default_rng(0)
    for folder, names in (("images", ("a", "b")), ("reference", ("c",))):
        (tmp_path / folder).mkdir()
        for name in names:
            Image.fromarray(rng.integers(0, 200, (56, 56, 3), dtype=np.uint8)).save(tmp_path / folder / f"{name}.png")
    options = dict(tile_size=28, overlap=0.5, dihedral=False)
    with pytest.raises(ValueError, match=r"holds 2 image group\(s\): too few to hold out valid and test"):
        prepare_he_data(tmp_path / "images", tmp_path / "run", **options)
    data = prepare_he_data(tmp_path / "images", tmp_path / "run", reference=tmp_path / "reference", **options)
    groups = data.summary["tiling"]["groups"]
    assert sorted(groups) == ["train", "valid"] and sorted(groups["train"] + groups["valid"]) == ["a", "b"]
    assert data.counts_line() == "Tiles: 9 train, 9 validation, 9 test"
    assert data.references["test"] == (tmp_path / "run" / "reference.h5", "test")


@pytest.mark.parametrize("argv,message", [
    (["--data-dir", "/no/such/folder"], "does not exist"),
    (["--ada"], "--ada tunes"),
    (["--augment", "colour"], "augmentation policy"),
    (["--overlap", "1"], "must be below 1"),
    (["--validation-fraction", "0.5", "--test-fraction", "0.5"], "leave no training images"),
    (["--extractor", "nothing.keras"], "--extractor nothing.keras"),
    (["--inception-weights", "nothing.h5"], "--inception-weights nothing.h5: no such file"),
])
def test_recipe_refuses_bad_options_before_any_work(argv, message, capsys):
    recipe = load_recipe()
    assert recipe.main.command_line(argv) == 2
    assert message in capsys.readouterr().err


def test_recipe_refuses_a_bad_inception_weights_file_in_one_line_before_training(tmp_path, capsys):
    bad = tmp_path / "inception.h5"
    bad.write_text("not weights")
    argv = ["--inception-weights", str(bad), "--out", str(tmp_path / "run")]
    assert load_recipe().main.command_line(argv) == 2
    err = capsys.readouterr().err
    assert f"--inception-weights {bad}: not an HDF5 file" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()  # refused before the run folder, the data and any training


def _hdf5(path, **datasets):
    import h5py

    with h5py.File(path, "w") as handle:
        for name, array in datasets.items():
            handle.create_dataset(name, data=array)
    return str(path)


@pytest.mark.parametrize("datasets, message", [
    ({"train_img": np.zeros((80, 28, 28, 3), np.float32), "test_img": np.zeros((8, 28, 28, 3), np.uint8)},
     "train_img must be uint8 [N, H, W, 3], got float32"),
    ({"train_img": np.zeros((80, 28, 28, 3), np.uint8)}, "has no test_img split to score against"),
    ({"train_img": np.zeros((2, 28, 28, 3), np.uint8), "test_img": np.zeros((8, 28, 28, 3), np.uint8)},
     "gives 2 training tiles, fewer than one batch of 64"),
])
def test_recipe_data_problems_are_one_line(tmp_path, capsys, datasets, message):
    data = _hdf5(tmp_path / "tiles.h5", **datasets)
    assert load_recipe().main.command_line(["--data-dir", data, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_images_smaller_than_a_tile_are_named(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    for patient in ("a", "b", "c"):
        (folder / patient).mkdir(parents=True)
        Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(folder / patient / "x.png")
    argv = ["--data-dir", str(folder), "--tile-size", "224", "--out", str(tmp_path / "run")]
    assert load_recipe().main.command_line(argv) == 2
    err = capsys.readouterr().err
    assert "3 of the 3 images are smaller than one 224-pixel tile" in err and "(40x40)" in err
    assert "--tile-size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_recipe_interrupted_in_training_resumes_to_the_same_metrics(tmp_path, demo, monkeypatch):
    from test_recipe_resume import InterruptAtEpochEnd, comparable

    recipe = load_recipe()
    recipe.main([*TINY, "--out", str(tmp_path / "whole")])

    train_gan = recipe.train_gan
    monkeypatch.setattr(recipe, "train_gan", lambda *a, callbacks=(), **k: train_gan(
        *a, **k, callbacks=[*callbacks, InterruptAtEpochEnd(1)]))
    with pytest.raises(KeyboardInterrupt):
        recipe.main([*TINY, "--out", str(tmp_path / "resumed")])
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    extractor = tmp_path / "resumed" / "extractor.keras"
    trained_first = extractor.read_bytes()
    monkeypatch.setattr(recipe, "train_gan", train_gan)
    recipe.main([*TINY, "--out", str(tmp_path / "resumed")])

    # The resumed run scored in the extractor its first invocation trained, and ends as the whole run.
    assert extractor.read_bytes() == trained_first

    def same_parts(name):  # without times and with the run folder's paths made alike
        text = json.dumps(comparable(json.loads((tmp_path / name / "metrics.json").read_text())))
        document = json.loads(text.replace(str(tmp_path / name), "RUN"))
        assert len(document.pop("epoch_seconds")) == 2
        # Keras numbers the models of one process (pathology_gan_2, ...); a command's is always pathology_gan.
        assert document["config"].pop("name").startswith("pathology_gan")
        return document

    assert same_parts("resumed") == same_parts("whole")


def test_kid_fid_default_to_the_papers_equal_counts_and_say_when_the_data_is_short():
    from gan_zoo.training.pathology_gan_study import paper_counts_note

    assert paper_counts_note("test", 5000, None) == (
        "KID / FID on test: 5000 generated vs 5000 real tiles, as in the paper.")
    assert paper_counts_note("test", 64, None) == (
        "KID / FID on test: 64 generated vs 64 real tiles (the paper: 5000 vs 5000; the data holds fewer).")
    assert "as asked" in paper_counts_note("validation", 5000, 1000)
    recipe = load_recipe()
    assert recipe.parse_args([]).eval_samples is None and recipe.parse_args([]).eval_real == 5000
