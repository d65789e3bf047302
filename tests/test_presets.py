"""Published presets: `gan-zoo publish`, `gan_zoo.load(PRESET_DIR)`, hashes, archives, the model card.

One tiny conditional DCGAN is trained for one epoch with `gan-zoo train` on
the procedural demo data; every test publishes or reads that run.
"""

import contextlib
import io
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gan_zoo
from gan_zoo import cli, presets

TINY = ["--set", "base_filters=4", "--set", "latent_dim=8"]
LABELS = [0, 1, 1, 0, 1, 0]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # Archives extract into $KERAS_HOME; nothing goes to the user's caches.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch `gan-zoo train` run of a tiny DCGAN on the demo data."""
    root = tmp_path_factory.mktemp("presets")
    out = root / "run"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setenv("GAN_ZOO_DEMO_DIR", str(root / "demo"))
        code = cli.main(["train", "dcgan", *TINY, "--conditional", "--epochs", "1",
                         "--batch-size", "64", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def published(trained, tmp_path_factory):
    """The run published once (with its archive) for the tests that only read it."""
    out = tmp_path_factory.mktemp("published") / "dcgan-demo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(out.parent / "keras_home"))
        return presets.publish(trained, out, archive=True)


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_images(run_folder):
    model = gan_zoo.load_model(run_folder / "dcgan.keras", compile=False)
    return model.generate(labels=LABELS, seed=7)


def test_preset_in_a_fresh_process_generates_bit_identical_images(trained, published, tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        import gan_zoo

        by_path = gan_zoo.load({str(published.folder)!r})
        by_name = gan_zoo.load("dcgan", preset_dir={str(published.folder)!r})
        np.save({str(tmp_path / "path.npy")!r}, by_path.generate(labels={LABELS}, seed=7))
        np.save({str(tmp_path / "name.npy")!r}, by_name.generate(labels={LABELS}, seed=7))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = run_images(trained)
    for name in ("path.npy", "name.npy"):
        images = np.load(tmp_path / name)
        assert images.dtype == expected.dtype and images.shape == expected.shape == (6, 50, 50, 3)
        assert images.tobytes() == expected.tobytes()


def test_a_tampered_weights_file_is_refused_by_its_hash(published, tmp_path):
    copy = shutil.copytree(published.folder, tmp_path / "copy")
    weights = copy / presets.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, inside the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(presets.PresetIntegrityError) as info:
        gan_zoo.load(copy)
    message = str(info.value)
    assert str(weights) in message and "SHA-256" in message and "\n" not in message
    with pytest.raises(presets.PresetIntegrityError, match=presets.WEIGHTS_FILE):
        gan_zoo.load("dcgan", preset_dir=copy)
    weights.unlink()
    with pytest.raises(presets.PresetIntegrityError, match="model.weights.h5 is missing"):
        gan_zoo.load(copy)


def test_a_changed_card_or_config_is_refused_too(published, tmp_path):
    for name in (presets.CARD_FILE, presets.CONFIG_FILE):
        copy = shutil.copytree(published.folder, tmp_path / name)
        with open(copy / name, "a") as file:
            file.write("\n")
        with pytest.raises(presets.PresetIntegrityError, match=name):
            gan_zoo.load(copy)


def _formatted(value):
    return presets.format_number(value)


def test_the_model_card_holds_the_runs_recorded_numbers(trained, published):
    metrics = json.loads((trained / "metrics.json").read_text())
    options = json.loads((trained / "config.json").read_text())["options"]
    epochs = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    model = gan_zoo.load_model(trained / "dcgan.keras", compile=False)
    card = (published.folder / presets.CARD_FILE).read_text()
    metadata = published.metadata

    assert card.startswith(f"# {metadata['model_id']}\n")
    assert metadata["model_id"] == f"dcgan-{metadata['files'][presets.WEIGHTS_FILE]['sha256'][:12]}"
    assert "Research use only" in card and "do not use it" in card
    assert " ".join(gan_zoo.get_spec("dcgan").citation.split()) in " ".join(card.split())
    # Measured numbers: the final losses the run recorded, with their protocol.
    for name, value in metrics["final"].items():
        assert f"| {name} | {_formatted(value)} |" in card
    assert "mean over its training batches" in card
    assert "no quality metrics" in card  # gan-zoo train records no FID/KID: none invented
    # Data provenance and budget.
    counts = metrics["data"]["class_counts"]
    assert f"| images | {metrics['data']['images']} |" in card
    assert f"| class counts | {', '.join(f'{k}: {v}' for k, v in counts.items())} |" in card
    assert f"`{options['data_dir']}`" in card and "procedural demo images" in card
    assert f"| epochs | {metrics['epochs']} |" in card
    assert f"| training steps | {int(model.step_counter.numpy())} |" in card
    assert f"| batch size | {options['batch_size']} |" in card
    assert presets.format_seconds(sum(e["seconds"] for e in epochs)) in card
    assert "| hardware | not recorded by the run |" in card
    assert "Options the run set over the paper's defaults: `image_size=50`, `latent_dim=8`, `num_classes=2`, " \
        "`base_filters=4`." in card
    for name, info in metadata["files"].items():
        if name != presets.CARD_FILE:
            assert f"| {name} | `{info['sha256']}` |" in card
    assert 'gan_zoo.load("PRESET_DIR")' in card
    # metadata.json holds the same, as data.
    assert metadata["budget"]["steps"] == int(model.step_counter.numpy())
    assert metadata["training_data"]["recorded"]["class_counts"] == counts
    assert metadata["metrics"] == [{"name": "final", "source": "metrics.json",
                                    "values": metrics["final"], "protocol": presets.FINAL_LOSSES_PROTOCOL}]
    assert metadata["model"]["signatures"] == ["generate(z: float32[N, 8], labels: int32[N])"]


def test_scores_of_the_model_go_into_the_card_with_their_protocol(trained, tmp_path, capsys):
    import keras
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(24):  # reference images, and a small domain feature network
        folder = tmp_path / "reference" / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    inputs = keras.Input((50, 50, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(features)).save(tmp_path / "domain.keras")
    scores = tmp_path / "scores.json"
    code, _, err = run_cli(["score", str(trained), "--reference", str(tmp_path / "reference"),
                            "--extractor", "keras", "--extractor-model", str(tmp_path / "domain.keras"),
                            "--extractor-layer", "gap", "--n", "20", "--metrics", "fid,kid",
                            "--json", str(scores)], capsys)
    assert code == 0, err
    recorded = json.loads(scores.read_text())
    out = tmp_path / "preset"
    code, stdout, err = run_cli(["publish", str(trained), "--out", str(out), "--scores", str(scores),
                                 "--data-licence", "CC0 (test)", "--hardware", "2 CPU cores"], capsys)
    assert code == 0, err
    card = (out / presets.CARD_FILE).read_text()
    assert f"| kid | {_formatted(recorded['kid'])} |" in card
    assert f"| fid | {_formatted(recorded['fid'])} |" in card
    assert f"- feature extractor: {recorded['provenance']['extractor_id']}" in card
    assert f"- real images: {recorded['provenance']['n_real']}" in card
    assert "| licence | CC0 (test) (stated by the publisher) |" in card
    assert "| hardware | 2 CPU cores (stated by the publisher) |" in card
    assert "Metrics in the card: final, scores (scores.json)." in stdout
    # A score file of another model is refused before anything is written.
    other = json.loads(scores.read_text())
    other["provenance"]["fake_source"] = str(tmp_path / "other.keras")
    (tmp_path / "other.json").write_text(json.dumps(other))
    code, _, err = run_cli(["publish", str(trained), "--out", str(tmp_path / "p2"), "--scores",
                            str(tmp_path / "other.json")], capsys)
    assert code == 2 and "not the published model" in err and not (tmp_path / "p2").exists()


def test_the_archive_loads_through_the_weights_url_checked_by_its_sha256(trained, published, tmp_path):
    from gan_zoo.data.download import ChecksumError

    expected = run_images(trained)
    url = published.archive.as_uri()
    model = gan_zoo.load("dcgan", weights=url, weights_sha256=published.archive_sha256)
    assert model.generate(labels=LABELS, seed=7).tobytes() == expected.tobytes()
    assert gan_zoo.load(published.archive).generate(labels=LABELS, seed=7).tobytes() == expected.tobytes()
    with pytest.raises(ChecksumError):
        gan_zoo.load("dcgan", weights=url, weights_sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        gan_zoo.load("dcgan", weights=url)
    with pytest.raises(presets.PresetError, match="holds a 'dcgan' model, not a 'cyclegan'"):
        gan_zoo.load("cyclegan", weights=url, weights_sha256=published.archive_sha256)
    # The archive is reproducible: the same preset gives the same bytes.
    _, again = presets.write_archive(published.folder, tmp_path / "again.tar.gz")
    assert again == published.archive_sha256


def test_publish_replaces_only_a_preset_of_the_same_run(trained, tmp_path, capsys):
    out = tmp_path / "preset"
    assert run_cli(["publish", str(trained), "--out", str(out)], capsys)[0] == 0
    first = json.loads((out / presets.METADATA_FILE).read_text())
    code, stdout, err = run_cli(["publish", str(trained), "--out", str(out)], capsys)
    assert code == 0, err
    assert presets.read_preset(out)["source_run"] == first["source_run"]
    # A preset of another run, or other files: refused with one line, untouched.
    metadata = dict(first, source_run=dict(first["source_run"], folder="/elsewhere/run"))
    (out / presets.METADATA_FILE).write_text(json.dumps(metadata))
    code, _, err = run_cli(["publish", str(trained), "--out", str(out)], capsys)
    assert code == 2 and "a preset of another run (/elsewhere/run)" in err and err.count("\n") == 1
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    code, _, err = run_cli(["publish", str(trained), "--out", str(stray)], capsys)
    assert code == 2 and "is not empty" in err and (stray / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_publish_refuses_unusable_runs_in_one_line(trained, tmp_path, capsys):
    def refused(run, *more):
        code, _, err = run_cli(["publish", str(run), "--out", str(tmp_path / "out"), *more], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()
        return err

    assert "does not exist" in refused(tmp_path / "missing")
    unfinished = shutil.copytree(trained, tmp_path / "unfinished", ignore=shutil.ignore_patterns("backup"))
    (unfinished / "metrics.json").unlink()
    assert "has not finished" in refused(unfinished)
    busy = shutil.copytree(trained, tmp_path / "busy", ignore=shutil.ignore_patterns("backup"))
    (busy / "run.lock").write_text("{}")
    assert "in use by a run" in refused(busy)
    two = shutil.copytree(trained, tmp_path / "two", ignore=shutil.ignore_patterns("backup"))
    shutil.copyfile(two / "dcgan.keras", two / "other.keras")
    (two / "dcgan.keras").rename(two / "first.keras")  # none named after the run's model
    assert "--model-file" in refused(two)
    assert "not found" in refused(trained, "--model-file", "nope.keras")
    assert "inside the run folder" in run_cli(
        ["publish", str(trained), "--out", str(trained / "preset")], capsys)[2]


def test_load_refuses_what_is_not_a_preset(tmp_path):
    with pytest.raises(presets.PresetError, match="no metadata.json"):
        gan_zoo.load(tmp_path)
    with pytest.raises(presets.PresetError, match="does not exist"):
        gan_zoo.load(tmp_path / "nothing" / "here")
    with pytest.raises(KeyError, match="Unknown model 'dcgna'"):
        gan_zoo.load("dcgna")


def test_a_recipes_scores_are_shown_with_their_protocol(published, trained):
    # The shape of recipes/dcgan_idc.py's metrics.json: KID/FID with the
    # extractor's provenance, downstream AUROCs with the protocol beside them.
    provenance = {"extractor_id": "keras:small_cnn/gap", "weights_sha256": "ab" * 32, "mode": "resize",
                  "input_size": [50, 50], "n_real": 80, "n_fake": 80, "reference_source": "records:demo",
                  "reference_split": "validation", "fake_source": "model:dcgan", "seeds": {"sample": 0},
                  "gan_zoo_version": "0.1.0", "notes": []}
    metrics = {
        "model": "dcgan", "epochs": 60, "data": {"patients": {"train": 8, "validation": 2, "test": 2}},
        "generative_validation": {"kid": 0.0024, "kid_std": float("nan"), "provenance": provenance},
        "feature_extractor": {"what": "small_cnn (width 0.5) trained on this run's training patients"},
        "downstream_test": {"real_auroc": 0.9215, "synthetic_auroc": 0.9593},
        "downstream_protocol": "small_cnn width 0.5, 5 epochs; scored on test patients once after training",
        "train_images_per_second": 158.6, "train_images_per_second_method": "train-step time",
        "wall_seconds": 175.1, "seconds": {"gan": 139.6},
    }
    record = presets.RunRecord(trained, {"options": {}}, metrics, [], trained / "dcgan.keras")
    found = {entry["name"]: entry for entry in presets.measured_metrics(record)}
    assert set(found) == {"generative_validation", "downstream_test", "train_images_per_second"}
    assert found["generative_validation"]["values"] == {"kid": 0.0024, "kid_std": None}
    card = presets.model_card(dict(published.metadata, metrics=list(found.values()),
                                   budget=presets.budget(record)))
    assert "| kid | 0.0024 |" in card and "| kid_std | n/a (not computed) |" in card
    assert "- feature extractor: keras:small_cnn/gap" in card and "- reference split: validation" in card
    assert "- extractor trained as: small_cnn (width 0.5) trained on this run's training patients" in card
    assert "| real_auroc | 0.9215 |" in card and "Protocol: small_cnn width 0.5, 5 epochs; scored on test" in card
    assert "| wall time | 175 s (0.05 h): the whole run (metrics.json) |" in card
    assert "no quality metrics" not in card
