"""The PyTorch peers of benchmarks/peers/ and benchmarks/compare.py.

Skipped without torch (the optional "bench" extra). At tiny sizes (the
configurations of `compare.py --tiny`): every registered model has a peer,
each peer holds the Keras model's weights network by network and counts
the same conv / matmul FLOPs per step where checked, one step runs in both
precisions and trains, and compare.py prints its ratio table.
"""

import importlib.util
import math
import pathlib
import re
import sys

import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import peers  # noqa: E402
from peers import timing  # noqa: E402

# Models whose Keras build, or whose peer's first step, takes more than a
# few seconds on the 2-core CPU.
SLOW_BUILDS = {"resnet50_classifier", "resnet18_classifier", "cigan"}
SLOW_STEPS = {"resnet50_classifier"}


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare", BENCHMARKS / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(compare, name):
    from gan_zoo import registry

    return registry.resolve_config(name, **{**compare.OFFLINE.get(name, {}), **compare.TINY.get(name, {})})


def keras_weight_counts(name, config):
    """{network: count_params()} of the gan_zoo model, as the peer names its networks."""
    from gan_zoo import registry

    model = registry.load(name, **config)
    if not hasattr(model, "network_names"):  # a classifier: one functional model
        return {"classifier": model.count_params()}
    counts = {n: model.network(n).count_params() for n in model.network_names}
    if name == "cigan":  # the frozen VGG-19 of the feature loss
        counts["features"] = model.build_feature_network(allow_random_fallback=True).count_params()
    return counts


def marked_slow(names, slow):
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def test_every_registered_model_has_a_peer():
    from gan_zoo import registry

    assert set(peers.MODELS) == set(registry.list_models())
    with pytest.raises(KeyError, match="no PyTorch peer"):
        peers.load("not_a_model")


def test_gan_zoo_never_imports_torch():
    importing = re.compile(r"^\s*(import torch|from torch\b)", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "gan_zoo").rglob("*.py")
                 if importing.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("name", marked_slow(peers.MODELS, SLOW_BUILDS))
def test_peer_has_the_keras_models_weights(compare, name):
    config = tiny_config(compare, name)
    peer = peers.build(name, config, batch_size=2, precision="float32")
    assert peer.params == keras_weight_counts(name, config)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", marked_slow(peers.MODELS, SLOW_STEPS))
def test_one_step_trains_the_weights(compare, name, precision):
    peer = peers.build(name, tiny_config(compare, name), batch_size=2, precision=precision)
    before = {f"{n}.{k}": p.detach().clone() for n, net in peer.networks.items()
              for k, p in net.named_parameters()}
    loss = peer.step()
    after = {f"{n}.{k}": p.detach() for n, net in peer.networks.items() for k, p in net.named_parameters()}
    assert math.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in after.values())
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, f"no weight of the {name} peer changed in one step"


def test_mixed_bfloat16_convolves_in_bfloat16_with_float32_heads(compare):
    peer = peers.build("dcgan", tiny_config(compare, "dcgan"), batch_size=2, precision="mixed_bfloat16")
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            dtypes.setdefault(name, output.dtype)  # returns None: the output stays

        return hook

    for network in peer.networks.values():
        for name, layer in network.named_modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                layer.register_forward_hook(record(name))
    peer.step()
    assert dtypes.pop("logits.layer") == torch.float32  # Keras' float32 logit layer
    assert set(dtypes.values()) == {torch.bfloat16}


def test_dcgan_peer_counts_the_analytic_flops(compare):
    """One peer step does exactly the conv / dense work throughput.py counts for the Keras step."""
    import throughput
    from gan_zoo import registry

    config = tiny_config(compare, "dcgan")
    model = registry.load("dcgan", **config)
    analytic = throughput.analytic_flops(model, "generator", 4)["flops_per_step"]
    assert timing.count_peer_flops("dcgan", config, 4)["flops_per_step"] == analytic


def test_peer_refuses_options_it_does_not_implement(compare):
    from gan_zoo import registry

    config = registry.resolve_config("dcgan", **compare.TINY["dcgan"], augment_policy="translation")
    with pytest.raises(NotImplementedError, match="augment_policy"):
        peers.build("dcgan", config, 2, "float32")


def test_time_peer_and_torch_peak(compare):
    row = timing.time_peer("dcgan", tiny_config(compare, "dcgan"), "float32", batch_size=2, warmup=1, steps=2)
    assert row["warmup_steps"] == 2 and row["images_per_s"] > 0 and row["loss_finite"]
    peak = timing.matmul_peak("bfloat16", size=64, min_seconds=0.01)
    assert peak["dtype"] == "bfloat16" and peak["repeats"] >= 3 and peak["best_gflops"] > 0


def test_tiny_defaults_yield_to_explicit_options(compare):
    args = compare.parse_args(["--tiny", "--steps", "5"])
    assert (args.steps, args.warmup, args.batch_size, args.matmul_size) == (5, 2, 4, 256)
    assert compare.parse_args([]).repeats == 3


@pytest.mark.slow
def test_compare_tiny_prints_the_ratio_table(compare, tmp_path, capsys):
    import json

    path = tmp_path / "compare.json"
    run = compare.main(["--tiny", "--models", "dcgan", "--repeats", "1", "--json", str(path)])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(compare.COLUMNS)
    row = next(line for line in out.splitlines() if line.startswith("| dcgan"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[compare.COLUMNS.index("ratio")]) > 0
    (result,) = run["results"]
    assert result["ratio"] > 0 and result["peer_flops_per_step"] == result["gan_zoo_flops_per_step"]
    assert set(run["peak"]) == {"gan_zoo", "peer"} and run["threads"]["torch"] >= 1
    assert json.loads(path.read_text())["runs"][0]["results"][0]["model"] == "dcgan"
