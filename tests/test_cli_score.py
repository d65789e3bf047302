"""`gan-zoo score`: scores with provenance, and clear errors."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from gan_zoo import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    from gan_zoo.models.dcgan import DCGAN

    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    for i in range(24):
        folder = root / "reference" / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    gan = DCGAN(image_size=16, base_filters=4, latent_dim=8)
    (root / "run").mkdir()
    gan.save(root / "run" / "dcgan.keras")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(features)).save(root / "domain.keras")
    return root


def _score(files, *extra):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([
            "score", str(files / "run"), "--reference", str(files / "reference"),
            "--extractor", "keras", "--extractor-model", str(files / "domain.keras"),
            "--extractor-layer", "gap", "--n", "20", "--json", str(files / "scores.json"), *extra,
        ])
    return code, out.getvalue()


def test_scores_a_run_folder_with_provenance(files):
    code, printed = _score(files, "--cache", str(files / "reference.npz"))
    assert code == 0
    scores = json.loads((files / "scores.json").read_text())
    assert {"fid", "kid", "precision", "recall", "density", "coverage"} <= set(scores)
    provenance = scores["provenance"]
    assert provenance["n_fake"] == 20 and provenance["n_real"] == 24
    assert provenance["reference_split"] == "validation"
    assert "fid" in printed and "extractor_id" in printed
    # The cache is reused: same scores.
    assert _score(files, "--cache", str(files / "reference.npz"))[0] == 0
    assert json.loads((files / "scores.json").read_text())["fid"] == pytest.approx(scores["fid"])


def test_clear_errors(files, capsys):
    assert cli.main(["score", str(files / "run"), "--reference", str(files / "nowhere")]) == 2
    assert "--reference" in capsys.readouterr().err
    assert cli.main(["score", str(files / "run"), "--reference", str(files / "reference"),
                     "--extractor", "keras"]) == 2
    assert "--extractor-model" in capsys.readouterr().err
    assert cli.main(["score", str(files / "run"), "--reference", str(files / "reference"),
                     "--extractor", "keras", "--extractor-model", str(files / "domain.keras"),
                     "--metrics", "fid,nope"]) == 2
    assert "--metrics" in capsys.readouterr().err


def test_grayscale_references_for_an_rgb_generator_need_a_flag(files, capsys):
    from PIL import Image

    gray = files / "gray"
    gray.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(gray / f"{i}.png")

    def score(*extra):
        with contextlib.redirect_stdout(io.StringIO()):
            return cli.main(["score", str(files / "run"), "--reference", str(gray), "--extractor", "keras",
                             "--extractor-model", str(files / "domain.keras"), "--extractor-layer", "gap",
                             "--n", "20", "--json", str(files / "gray.json"), *extra])

    assert score() == 2
    assert ("Channel mismatch: the reference images have 1 channel(s), the generated ones 3"
            in capsys.readouterr().err)
    assert score("--allow-channel-mismatch") == 0
    scores = json.loads((files / "gray.json").read_text())
    assert any(note.startswith("Channel mismatch") for note in scores["provenance"]["notes"])
