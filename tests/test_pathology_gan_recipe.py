"""recipes/pathology_gan.py end to end on the procedural demo data (tiny settings)."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from gan_zoo.data.he import PathologyHDF5, PathologyHDF5Writer

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
def test_recipe_trains_scores_and_walks_the_latent_space(tmp_path, demo):
    recipe = load_recipe()
    out = tmp_path / "run"
    metrics = recipe.main([*TINY, "--augment", "translation,cutout", "--out", str(out)])

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

    # Reopened (e.g. to extend it), the run keeps its extractor: one id for all its scores.
    again = recipe.main([*TINY, "--augment", "translation,cutout", "--out", str(out)])
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

    class Run:
        def path(self, *parts):
            path = tmp_path.joinpath("run", *parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

    train, references, summary = recipe.prepare_data(args, Run())
    assert train == tmp_path / "train.h5"
    assert summary["train_tiles"] == 40 and summary["test_tiles"] == 9  # 3 x 3 tiles, no dihedral
    assert references["validation"] is None and references["test"][1] == "test"
    # An HDF5 file without a test split needs a reference.
    args = recipe.parse_args(["--data-dir", str(tmp_path / "train.h5")])
    with pytest.raises(ValueError, match="no test_img split"):
        recipe.prepare_data(args, Run())


@pytest.mark.parametrize("argv,message", [
    (["--data-dir", "/no/such/folder"], "does not exist"),
    (["--ada"], "--ada tunes"),
    (["--augment", "colour"], "augmentation policy"),
    (["--overlap", "1"], "must be below 1"),
    (["--validation-fraction", "0.5", "--test-fraction", "0.5"], "leave no training images"),
    (["--extractor", "nothing.keras"], "--extractor nothing.keras"),
])
def test_recipe_refuses_bad_options_before_any_work(argv, message, capsys):
    recipe = load_recipe()
    assert recipe.main.command_line(argv) == 2
    assert message in capsys.readouterr().err


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
