"""Smoke test of benchmarks/throughput.py on a tiny DCGAN."""

import importlib.util
import json
import math
import pathlib

import keras
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_writes_positive_throughput_and_peak(throughput, tmp_path):
    path = tmp_path / "results.json"
    policy = keras.mixed_precision.global_policy().name
    throughput.main([
        "--models", "dcgan",
        "--set", "image_size=16", "--set", "base_filters=4", "--set", "latent_dim=8",
        "--steps", "2", "--warmup", "1", "--batch-size", "4",
        "--matmul-size", "256", "--matmul-seconds", "0.1",
        "--json", str(path),
    ])
    document = json.loads(path.read_text())
    assert document["machine"]["tensorflow"]
    (run,) = document["runs"]
    assert run["peak"]["float32"]["best_gflops"] > 0
    (row,) = run["results"]
    assert row["model"] == "dcgan" and row["batch_size"] == 4
    assert row["images_per_s"] > 0 and row["ms_per_step"] > 0
    assert row["logs_finite"]
    # The profiler's conv/matmul FLOPs agree with the layer-shape count.
    assert row["flops"]["used"] == "profiler"
    counted = row["flops"]["profiler"]["matmul_flops_per_step"]
    analytic = row["flops"]["analytic"]["flops_per_step"]
    assert math.isclose(counted, analytic, rel_tol=0.02)
    assert row["flops_per_step"] >= counted
    assert keras.mixed_precision.global_policy().name == policy


def test_sweep_and_set_parse_python_literals(throughput):
    args = throughput.parse_args(
        ["--set", "variant=v3", "--set", "seed=None", "--set", "synchronized_batch_norm=false",
         "--sweep", "image_size=50,64", "--sweep", "synchronized_batch_norm=true,False",
         "--jit", "both"]
    )
    assert args.overrides == [("variant", "v3"), ("seed", None),
                              ("synchronized_batch_norm", False)]
    assert args.sweep == [("image_size", [50, 64]), ("synchronized_batch_norm", [True, False])]
    assert args.jit == "both"
    assert throughput.parse_args(["--jit"]).jit == "on"
    assert throughput.parse_args(["--jit", "--no-jit"]).jit == "off"


@pytest.mark.parametrize("argv", [["--set", "image_size"], ["--set", "=1"],
                                  ["--sweep", "image_size"], ["--batch-size", "0"]])
def test_malformed_options_are_usage_errors(throughput, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        throughput.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_set_false_reaches_the_model_as_false(throughput):
    from gan_zoo import registry

    args = throughput.parse_args([
        "--models", "dcgan", "--set", "synchronized_batch_norm=false",
        "--set", "image_size=16", "--set", "base_filters=4", "--set", "latent_dim=8",
    ])
    ((name, _, overrides),) = throughput.configurations(args)
    model = registry.load(name, **registry.resolve_config(name, **overrides))
    assert model.synchronized_batch_norm is False
    norms = [layer for network in (model.generator, model.discriminator)
             for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.synchronized for layer in norms)
    keras.backend.clear_session()


def test_a_scheduled_model_counts_the_mean_step_of_its_cycle(throughput):
    """PathologyGAN's n_critic = 5: 4 critic-only steps and 1 of both networks per cycle."""
    from gan_zoo import registry

    keras.backend.clear_session()
    model = registry.load("pathology_gan", stages=1, latent_dim=8, mapping_blocks=1, base_channels=4,
                          initial_channels=8, dense_units=16, attention_resolution=0)
    model.compile()
    batch = throughput.synthetic_batch(model, "generator", 4)
    counted = throughput.profiler_flops(model, batch)
    critic, both = (counted["per_phase"][name]["flops_per_step"] for name in ("critic", "all"))
    assert counted["phase_steps"] == {"critic": 4, "all": 1}
    assert both > 1.5 * critic  # the generator's update is counted in one step of five only
    assert counted["flops_per_step"] == pytest.approx((4 * critic + both) / 5)
    assert model.active_phase is None
    keras.backend.clear_session()
