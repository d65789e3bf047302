"""ciGAN's patches (lesion / lesion-free, masks with them) and recipes/cigan_ddsm.py on demo data,
interrupted and resumed included."""

import importlib.util
import json
import shutil
import pathlib

import keras
import numpy as np
import pytest
from PIL import Image
from test_recipe_resume import InterruptAtEpochEnd, comparable

from gan_zoo.data.mammography import MammogramRecord, scan_cbis_ddsm
from gan_zoo.data.mammography.lesion_patches import (
    augmentation_masks,
    borrowed_masks,
    lesion_free_corners,
    sample_patches,
    tissue_mask,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _recipe():
    spec = importlib.util.spec_from_file_location("cigan_ddsm", ROOT / "recipes" / "cigan_ddsm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mammogram(tmp_path, name, label, lesions, size=96):
    """A bright half-disc breast with a dark hole, a separate bright marker, square lesions."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.where(np.hypot(yy - size / 2, xx) < size * 0.7, 120, 0).astype(np.uint8)
    image[40:44, 10:14] = 10  # dark fat inside the breast: still tissue
    image[2:6, size - 6 : size - 2] = 250  # a film marker, apart from the breast
    mask = np.zeros((size, size), np.uint8)
    for top, left, side in lesions:
        mask[top : top + side, left : left + side] = 255
        image[top : top + side, left : left + side] = 200
    Image.fromarray(image).save(tmp_path / f"{name}.png")
    Image.fromarray(mask).save(tmp_path / f"{name}_mask.png")
    return MammogramRecord(str(tmp_path / f"{name}.png"), patient_id=name, label=label,
                           mask_path=str(tmp_path / f"{name}_mask.png"))


def test_tissue_is_the_largest_bright_component_with_holes_filled(tmp_path):
    record = mammogram(tmp_path, "a", 1, [])
    image = np.asarray(Image.open(record.path), np.float32) / 255
    tissue = tissue_mask(image)
    yy, xx = np.mgrid[0:96, 0:96]
    np.testing.assert_array_equal(tissue, np.hypot(yy - 48, xx) < 96 * 0.7)  # the whole breast
    assert tissue[42, 12] and image[42, 12] < 0.1  # its dark hole is filled
    assert not tissue[3, 92] and image[3, 92] > 0.9  # the bright marker is not the breast


def test_lesion_free_corners_match_brute_force():
    rng = np.random.default_rng(0)
    tissue = rng.random((20, 24)) < 0.85
    lesions = np.zeros((20, 24), bool)
    lesions[5:8, 9:11] = True
    found = {tuple(c) for c in lesion_free_corners(tissue, lesions, 6, 0.75)}
    expected = {(t, col) for t in range(15) for col in range(19)
                if not lesions[t : t + 6, col : col + 6].any() and tissue[t : t + 6, col : col + 6].mean() > 0.75}
    assert found == expected and found


def test_patches_hold_their_lesion_or_enough_tissue_and_masks_travel(tmp_path):
    squares = {"m": [(30, 10, 8), (60, 30, 5)], "b": [(20, 20, 10)]}
    records = [mammogram(tmp_path, "m", 1, squares["m"]), mammogram(tmp_path, "b", 0, squares["b"])]
    patches = sample_patches(records, patch_size=32, normal_per_image=2, min_lesion_pixels=4, seed=3)
    assert patches.images.dtype == np.uint8 and patches.images.shape[1:] == (32, 32)
    assert patches.has_lesion.sum() == 3 and (~patches.has_lesion).sum() == 4
    for i in range(len(patches)):
        record = records[[r.path for r in records].index(patches.sources[i])]
        full = np.asarray(Image.open(record.mask_path)) > 0
        image = np.asarray(Image.open(record.path))
        top, left = patches.corners[i]
        np.testing.assert_array_equal(patches.masks[i], full[top : top + 32, left : left + 32])
        np.testing.assert_array_equal(patches.images[i], image[top : top + 32, left : left + 32])
        if patches.has_lesion[i]:
            # A whole lesion inside (where the patch falls depends on the file's path, so a
            # neighbour's corner may come along: its pixels are in the mask too, as checked above).
            inside = [top <= t and t + side <= top + 32 and left <= c and c + side <= left + 32
                      for t, c, side in squares[record.patient_id]]
            assert patches.labels[i] == record.label and any(inside)
        else:
            assert patches.labels[i] == 0 and patches.masks[i].sum() == 0
            tissue = tissue_mask(image / 255.0)[top : top + 32, left : left + 32]
            assert tissue.mean() > 0.75
    again = sample_patches(records[::-1], patch_size=32, normal_per_image=2, seed=3)
    assert {tuple(c) for c in again.corners} == {tuple(c) for c in patches.corners}  # per image
    with pytest.raises(ValueError, match="smaller than a 128-px patch"):
        sample_patches(records, patch_size=128)

    masks, targets = augmentation_masks(patches, seed=0)
    malignant = [patches.masks[i] for i in np.flatnonzero(patches.labels == 1)]
    for i in range(len(patches)):
        if patches.labels[i] == 1:  # remove its own lesion
            assert targets[i] == 0 and np.array_equal(masks[i], patches.masks[i])
        else:  # paint a malignant lesion with another malignant lesion's mask
            assert targets[i] == 1 and any(np.array_equal(masks[i], m) for m in malignant)
    lent = borrowed_masks(patches, seed=0)
    assert all(lent[i].sum() > 0 for i in range(len(patches)))


def test_real_cbis_ddsm_patches(shared_data):
    records = scan_cbis_ddsm(shared_data / "cbis_ddsm_mass")[:40]
    patches = sample_patches(records, patch_size=64, seed=0)
    assert patches.has_lesion.sum() >= 40 and (~patches.has_lesion).sum() >= 30
    lesion = patches.masks[patches.has_lesion].reshape(int(patches.has_lesion.sum()), -1).sum(axis=1)
    assert lesion.min() >= 4
    assert set(patches.patients.tolist()) <= {r.patient_id for r in records}


TINY_RUN = ["--patch-size", "32", "--feature-network", "domain", "--backbone-weights", "none",
            "--pretrain-steps", "2", "--gan-steps", "4", "--domain-steps", "4", "--classifier-steps", "4",
            "--eval-every", "2", "--curriculum-every", "1", "--classifier-batch-size", "8"]


def check_table_one_run(recipe, out, metrics, printed):
    """What a finished run printed and wrote: Table 1, Fig. 1, the layer's comparison files."""
    for row in recipe.REGIMES:
        assert f"| {row} | " in printed
    assert "random init (ImageNet weights unavailable)" in printed
    assert "domain substitute" in printed
    assert json.loads((out / "metrics.json").read_text())["table1"] == metrics["table1"]
    assert set(metrics["table1"]) == set(metrics["test_metrics"]) == set(recipe.REGIMES)
    assert len(metrics["delong"]) == 3
    assert all(0 <= v["auroc"] <= 1 for v in metrics["table1"].values())
    # The real-only row is the reference of the layer's paired tests; the table's p-values are these.
    assert metrics["reference"] == "Baseline (no augmentation)"
    for row, test in metrics["delong_vs_reference"].items():
        assert test == metrics["delong"][f"Baseline (no augmentation) vs {row}"]
    assert metrics["test_metrics"]["Traditional augmentation"]["augmentation"] is True
    assert metrics["feature_network"]["kind"] == "domain_classifier"
    assert metrics["cigan"]["steps"] >= 6
    assert metrics["synthetic"]["count"] == metrics["data"]["patches"]["train"]["count"]
    assert set(metrics["data"]["patients"]) == {"train", "validation", "test"}
    assert {"cigan", "classifier-none", "classifier-traditional_cigan"} <= set(metrics["seconds"])
    grid = np.asarray(Image.open(out / "figure1_test_patients.png"))
    assert grid.shape[1] == 3 * 64 + 2  # original, input, synthetic (2x enlarged), 1-px gaps
    for name in ("cigan.weights.h5", "cigan_config.json", "table1.md", "table.md", "scores.npz", "roc_test.png"):
        assert (out / name).is_file()
    scores = np.load(out / "scores.npz")
    assert len(scores["Baseline (no augmentation).test"]) == metrics["table1"]["Baseline (no augmentation)"]["n"]


@pytest.mark.slow
def test_recipe_prints_table_1_and_an_interrupted_run_resumes_to_the_same_metrics(tmp_path, monkeypatch, capsys):
    # One test for both: the uninterrupted run is the reference of the resumed one,
    # and every ResNet-50 trained here costs about a minute on two CPU cores.
    recipe = _recipe()
    metrics = recipe.main(["--out", str(tmp_path / "whole"), *TINY_RUN])
    check_table_one_run(recipe, tmp_path / "whole", metrics, capsys.readouterr().out)

    train_regime, trained = recipe.train_regime, []

    def interrupted_in_the_second_row(regime, *args, **kwargs):
        trained.append(regime)
        stop = [InterruptAtEpochEnd(1)] if regime == "Traditional augmentation" else []
        return train_regime(regime, *args, **kwargs, callbacks=stop)

    monkeypatch.setattr(recipe, "train_regime", interrupted_in_the_second_row)
    # The same run up to its first row: the whole run's folder without the later rows (its ciGAN
    # and feature network are read back, not trained again).
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "whole", resumed)
    for slug in ("traditional", "traditional_cigan"):
        (resumed / "units" / f"classifier-{slug}.json").unlink()
        shutil.rmtree(resumed / f"backup-{slug}")
        for stale in resumed.glob(f"best-{slug}.*"):
            stale.unlink()
    (resumed / "metrics.json").unlink()
    with pytest.raises(KeyboardInterrupt):
        recipe.main(["--out", str(resumed), *TINY_RUN])
    assert not (resumed / "metrics.json").exists()
    assert sorted(p.name for p in (resumed / "units").iterdir()) == ["classifier-none.json"]
    assert any((resumed / "backup-traditional").iterdir())  # its first chunk was kept
    assert trained == ["Traditional augmentation"]  # the first row was read back
    trained.clear()
    monkeypatch.setattr(recipe, "train_regime", lambda regime, *a, **k: trained.append(regime) or train_regime(
        regime, *a, **k))
    recipe.main(["--out", str(resumed), *TINY_RUN])

    assert trained == ["Traditional augmentation", "ciGAN + Traditional aug"]  # the finished row is read back
    whole, again = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed"))
    assert comparable(again) == comparable(whole)


def test_recipe_refuses_bad_options_before_work(tmp_path, capsys):
    main = _recipe().main
    assert main.command_line(["--out", str(tmp_path / "a"), "--fractions", "0.5,0.5"]) == 2
    assert "--fractions must be three positive numbers" in capsys.readouterr().err
    assert main.command_line(["--out", str(tmp_path / "b"), "--split", "official"]) != 0
    assert "official split" in capsys.readouterr().err


def test_a_test_folder_holding_the_training_patients_is_refused(tmp_path, capsys):
    from gan_zoo.data.demo import demo_dir

    folder = str(demo_dir("mammography"))
    argv = ["--out", str(tmp_path / "run"), "--data-dir", folder, "--test-dir", folder]
    assert _recipe().main.command_line(argv) == 2
    assert "Every training patient is also a test patient" in capsys.readouterr().err


TINY_GAN = ["--patch-size", "32", "--pretrain-steps", "2", "--gan-steps", "2", "--eval-every", "2",
            "--gan-only"]


@pytest.mark.slow
def test_random_feature_network_is_described_and_said_to_be_no_result(tmp_path, capsys):
    out = tmp_path / "run"
    _recipe().main(["--out", str(out), "--feature-network", "random", *TINY_GAN])
    assert "RANDOM VGG-19 weights; this is not a result" in capsys.readouterr().out
    info = json.loads((out / "metrics.json").read_text())["feature_network"]
    assert info["kind"] == "vgg19_random" and info["layers"] == ["block1_pool", "block2_pool", "block3_pool"]


@pytest.mark.slow
def test_a_resumed_run_keeps_its_domain_feature_network(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--out", str(out), "--feature-network", "domain", "--domain-steps", "4", *TINY_GAN]
    recipe = _recipe()
    recipe.main(argv)
    first = json.loads((out / "feature_network.json").read_text())
    network = (out / "feature_network.keras").read_bytes()
    capsys.readouterr()
    recipe.main(argv)  # a rerun of the finished run: the same network, not a new one
    assert "trained earlier in this run" in capsys.readouterr().out
    assert (out / "feature_network.keras").read_bytes() == network
    info = json.loads((out / "metrics.json").read_text())["feature_network"]
    assert info["weights_sha256"] == first["weights_sha256"] and info["validation_accuracy"] == first["validation_accuracy"]
    changed = keras.models.load_model(out / "feature_network.keras")  # another network in its place
    changed.set_weights([w + 1 for w in changed.get_weights()])
    changed.save(out / "feature_network.keras")
    assert recipe.main.command_line(argv) == 2
    assert "is not the feature_network this run trained" in capsys.readouterr().err
