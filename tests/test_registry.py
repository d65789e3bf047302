import keras
import pytest

import gan_zoo


def test_list_models_has_dcgan():
    assert "dcgan" in gan_zoo.list_models()
    assert "dcgan" in gan_zoo.list_models(task="generator")
    assert "dcgan" not in gan_zoo.list_models(task="classifier")


def test_unknown_model_lists_valid_names():
    with pytest.raises(KeyError) as info:
        gan_zoo.load("dcgna")
    message = str(info.value)
    assert "Unknown model 'dcgna'" in message
    assert "Did you mean 'dcgan'" in message
    assert "dcgan" in message.split("Registered models:")[1]


def test_unknown_override_lists_valid_options():
    with pytest.raises(TypeError) as info:
        gan_zoo.load("dcgan", image_sise=50)
    message = str(info.value)
    assert "image_sise" in message
    assert "image_size=64" in message  # the paper default is shown


def test_spec_carries_citation_and_paper_defaults():
    spec = gan_zoo.get_spec("dcgan")
    assert "Radford" in spec.citation and "Chi" in spec.citation
    assert spec.config["latent_dim"] == 100
    assert spec.config["learning_rate"] == 2e-4
    with pytest.raises(TypeError):
        spec.config["latent_dim"] = 3  # read-only


def test_load_with_local_weights(tmp_path):
    source = gan_zoo.load("dcgan", image_size=16, base_filters=4)
    path = tmp_path / "g.weights.h5"
    source.save_weights(path)
    loaded = gan_zoo.load("dcgan", weights=path, image_size=16, base_filters=4)
    for a, b in zip(source.weights, loaded.weights):
        assert (a.numpy() == b.numpy()).all()


def test_load_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        gan_zoo.load("dcgan", weights=tmp_path / "missing.weights.h5", image_size=16)
    with pytest.raises(ValueError, match="sha256"):
        gan_zoo.load("dcgan", weights="https://example.org/w.weights.h5")
    other = gan_zoo.load("dcgan", image_size=16, base_filters=4)
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(ValueError, match=r"other options: base_filters=4 \(this model: 8\)"):
        gan_zoo.load("dcgan", weights=path, image_size=16, base_filters=8)
    # Weights without a stored config: Keras' own shape check still applies.
    plain = tmp_path / "plain.weights.h5"
    keras.Model.save_weights(other, str(plain))
    with pytest.warns(UserWarning, match="holds no model config"), pytest.raises(ValueError, match="do not fit"):
        gan_zoo.load("dcgan", weights=plain, image_size=16, base_filters=8)


def test_load_weights_from_url_checks_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    from gan_zoo.data.download import ChecksumError, sha256_of

    source = gan_zoo.load("dcgan", image_size=16, base_filters=4)
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    url = path.as_uri()
    loaded = gan_zoo.load(
        "dcgan", weights=url, weights_sha256=sha256_of(path), image_size=16, base_filters=4
    )
    assert (loaded.weights[0].numpy() == source.weights[0].numpy()).all()
    with pytest.raises(ChecksumError):
        gan_zoo.load("dcgan", weights=url, weights_sha256="0" * 64, image_size=16, base_filters=4)


@pytest.mark.slow
def test_load_model_in_a_fresh_session(tmp_path):
    # A fresh interpreter: Keras knows the zoo's classes only once they are
    # imported, which gan_zoo.load_model does.
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "semi_cgan.keras"
    gan_zoo.load("semi_cgan", width=0.125).save(path)
    script = textwrap.dedent(f"""
        import gan_zoo
        print(type(gan_zoo.load_model({str(path)!r})).__name__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("SemiSupervisedCGAN")


def test_presets_sit_between_paper_defaults_and_overrides():
    from gan_zoo.registry import _REGISTRY, register_model, resolve_config

    def builder(**config):
        return config

    register_model("toy_with_presets", builder, {"a": 1, "b": 2}, "toy", "toy",
                   presets={"tuned": {"a": 10}})
    try:
        assert resolve_config("toy_with_presets") == {"a": 1, "b": 2}
        assert gan_zoo.load("toy_with_presets", preset="tuned") == {"a": 10, "b": 2}
        assert gan_zoo.load("toy_with_presets", preset="tuned", a=3, b=4) == {"a": 3, "b": 4}
        with pytest.raises(KeyError, match="Unknown preset 'tund' for model 'toy_with_presets'; "
                           "its presets: tuned"):
            gan_zoo.load("toy_with_presets", preset="tund")
        with pytest.raises(TypeError):
            gan_zoo.get_spec("toy_with_presets").presets["tuned"]["a"] = 5  # read-only
        with pytest.raises(ValueError, match=r"Preset 'bad' of 'toy_bad' sets unknown options \['c'\]"):
            register_model("toy_bad", builder, {"a": 1}, "toy", "toy", presets={"bad": {"c": 1}})
    finally:
        _REGISTRY.pop("toy_with_presets", None)
    assert "toy_bad" not in _REGISTRY
