"""Searching the registry: `gan_zoo.list_models(task=, modality=)` and `gan-zoo list`."""

import pytest

import gan_zoo
from gan_zoo import cli
from gan_zoo.registry import _REGISTRY, CAPABILITIES, MODALITIES, register_model


def listed(capsys, *argv):
    code = cli.main(["list", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def names_in_table(text):
    return [line.split()[0] for line in text.splitlines()[1:] if line.strip()]


def test_filters_by_modality_and_task():
    assert gan_zoo.list_models(modality="mammography") == ["cigan", "diagram", "resnet50_classifier"]
    assert gan_zoo.list_models(task="translate") == ["cyclegan"]
    assert gan_zoo.list_models(task="infill") == ["cigan"]
    assert gan_zoo.list_models(modality="mammography", task="classify") == ["diagram", "resnet50_classifier"]
    assert gan_zoo.list_models(modality="histology", task="generate") == ["dcgan", "pathology_gan", "semi_cgan"]
    assert gan_zoo.list_models(modality="histology", task="classify") == [
        "cruz_roa_cnn", "resnet18_classifier", "semi_cgan", "small_cnn"]
    assert gan_zoo.list_models(modality="mammography", task="translate") == []


def test_the_kinds_still_filter_as_before():
    generators = gan_zoo.list_models(task="generator")
    assert {"dcgan", "cyclegan", "cigan", "semi_cgan"} <= set(generators)
    assert "small_cnn" not in generators
    assert gan_zoo.list_models(task="classifier") == [
        "cruz_roa_cnn", "resnet18_classifier", "resnet50_classifier", "small_cnn"]
    assert sorted(gan_zoo.list_models(task="generator") + gan_zoo.list_models(task="classifier")) == \
        gan_zoo.list_models()


def test_an_unknown_filter_value_lists_the_valid_ones():
    with pytest.raises(ValueError, match="modality must be one of histology, mammography; got 'xray'"):
        gan_zoo.list_models(modality="xray")
    with pytest.raises(ValueError, match="generate, classify, translate, infill"):
        gan_zoo.list_models(task="segment")
    with pytest.raises(TypeError):
        gan_zoo.list_models(dataset="idc")


def test_every_zoo_model_declares_what_its_class_offers():
    from gan_zoo.models.roles import Classifier, ImageTranslator, LatentGenerator

    for name in gan_zoo.list_models():
        spec = gan_zoo.get_spec(name)
        assert spec.modality in MODALITIES, name
        assert spec.inputs and spec.outputs, name
        cls = spec.builder
        assert ("generate" in spec.capabilities) == issubclass(cls, LatentGenerator), name
        assert ("classify" in spec.capabilities) == (issubclass(cls, Classifier) or spec.task == "classifier"), name
        translates = bool({"translate", "infill"} & set(spec.capabilities))
        assert translates == issubclass(cls, ImageTranslator), name
        assert ("infill" in spec.capabilities) == hasattr(cls, "infill"), name


def test_registration_checks_and_defaults_the_metadata():
    def builder(**config):
        return config

    try:
        register_model("toy_generator", builder, {"a": 1}, "toy", "toy")
        spec = gan_zoo.get_spec("toy_generator")
        assert spec.capabilities == ("generate",) and spec.modality is None
        assert "toy_generator" in gan_zoo.list_models(task="generate")
        assert "toy_generator" not in gan_zoo.list_models(modality="histology")
        register_model("toy_painter", builder, {"size": 8}, "toy", "toy", modality="mammography",
                       capabilities=("infill",), inputs="patches [{size}, {size}, 1]", outputs="patches")
        assert gan_zoo.list_models(task="infill", modality="mammography") == ["cigan", "toy_painter"]
        assert gan_zoo.get_spec("toy_painter").interface({"size": 4}) == ("patches [4, 4, 1]", "patches")
        with pytest.raises(ValueError, match="modality must be one of"):
            register_model("toy_bad", builder, {}, "toy", "toy", modality="xray")
        with pytest.raises(ValueError, match="capabilities must be a non-empty subset"):
            register_model("toy_bad", builder, {}, "toy", "toy", capabilities=("segment",))
    finally:
        for name in ("toy_generator", "toy_painter", "toy_bad"):
            _REGISTRY.pop(name, None)
    assert set(CAPABILITIES) == {"generate", "classify", "translate", "infill"}


def test_cli_list_filters(capsys):
    code, out, _ = listed(capsys, "--modality", "mammography", "--task", "classify")
    assert code == 0
    assert names_in_table(out) == ["diagram", "resnet50_classifier"]
    assert out.splitlines()[0].split() == ["NAME", "TASK", "MODALITY", "DOES", "DESCRIPTION"]
    code, out, _ = listed(capsys, "--task", "infill")
    assert names_in_table(out) == ["cigan"] and "mammography" in out and "infill" in out
    code, out, _ = listed(capsys, "--task", "generator")
    assert "cyclegan" in names_in_table(out) and "small_cnn" not in names_in_table(out)
    code, out, _ = listed(capsys, "--modality", "mammography", "--task", "translate")
    assert code == 0 and out.strip() == "No registered models match --task translate --modality mammography."
    code, _, err = listed(capsys, "--modality", "xray")
    assert code == 2 and "invalid choice: 'xray'" in err


def test_cli_list_verbose_shows_paper_inputs_and_outputs(capsys):
    code, out, _ = listed(capsys, "--verbose", "--task", "translate")
    text = " ".join(out.split())
    assert code == 0 and out.startswith("cyclegan (generator; histology; does translate)")
    assert " ".join(gan_zoo.get_spec("cyclegan").citation.split()) in text
    assert "inputs: RGB patches [50, 50, 3] in [0, 1] of one domain" in text
    assert "outputs: patches of the other domain" in text
    code, out, _ = listed(capsys, "--verbose", "--modality", "histology", "--task", "generate")
    text = " ".join(out.split())
    assert "inputs: latent z [100] ~ N(0, 1), and a class label when num_classes > 0" in text
    assert "outputs: RGB patches [64, 64, 3], float32 in [0, 1]" in text
    assert text.count("paper: ") == 3 and text.count("inputs: ") == 3
