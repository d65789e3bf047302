"""The example recipe of docs/ARCHITECTURE.md is the file, is short, and runs."""

import json
import pathlib

import pytest

from test_recipes import load_recipe

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAME = "compare_classifiers_idc"


def test_the_documented_recipe_is_the_file_and_about_100_lines():
    document = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    block = document.split("## A new recipe", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    source = (ROOT / "recipes" / f"{NAME}.py").read_text()
    assert block == source
    assert len(source.splitlines()) <= 100


@pytest.mark.slow
def test_the_example_recipe_cross_validates_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "demo"))
    recipe = load_recipe(NAME)
    out = tmp_path / "run"
    argv = ["--classifiers", "small_cnn,cruz_roa_cnn", "--split", "kfold", "--folds", "2", "--epochs", "1",
            "--batch-size", "32", "--operating-point", "argmax", "--out", str(out)]
    metrics = recipe.main(argv)
    assert sorted(metrics["cross_validation"]) == ["cruz_roa_cnn", "small_cnn"]
    assert list(metrics["paired_vs_reference"]) == ["small_cnn - cruz_roa_cnn"]
    for fold in metrics["folds"]:
        assert fold["results"]["small_cnn"]["threshold"] == 0.5  # argmax, as asked
    assert (out / "fold1" / "confusion_cruz_roa_cnn.png").is_file()
    (out / "units" / "fold0.json").unlink()  # as if fold0 was interrupted after training
    again = recipe.main(argv)
    assert again["cross_validation"] == json.loads(json.dumps(metrics["cross_validation"]))
