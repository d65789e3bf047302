"""gan_zoo against its PyTorch peers: training images per second, interleaved.

For each model (every one with a peer, or those named by --models) and
precision, this times gan_zoo's training step exactly as
`benchmarks/throughput.py` does (`throughput.time_training`: a fresh
build, the paper optimizers, `--warmup` untimed steps, `--steps` timed
ones) and the model's PyTorch peer (`benchmarks/peers/<name>.py`: the same
architecture, losses, updates per step, optimizers, batch and image size)
the same way, alternating the two `--repeats` times (gan_zoo first in odd
repetitions, the peer first in even ones, so a drift of the machine's load
weighs on both). Both run with the same number of threads (TensorFlow's
intra-op pool and `torch.set_num_threads`: the usable cores, or
`--threads`). It prints one Markdown row per model and precision: the
median images/s of each side, the median of the per-repetition ratios
gan_zoo / peer (above 1: gan_zoo is faster), and each side's fraction of
its own matmul peak (a square matmul timed in TensorFlow for gan_zoo,
in torch for the peer, float32 or bfloat16 as the precision computes),
from the conv / matmul FLOPs of one step (gan_zoo: `throughput.count_flops`;
the peer: torch's FlopCounterMode, averaged over one update cycle).

    pip install -e ".[bench]"        # torch, CPU wheel
    python benchmarks/compare.py --models dcgan --set variant=v3 --set image_size=50 \\
        --precision float32 --precision mixed_bfloat16 --json benchmarks/results/compare.json
    python benchmarks/compare.py --tiny     # every model, tiny sizes: a smoke test
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import throughput  # noqa: E402

from gan_zoo import registry  # noqa: E402
from gan_zoo.arguments import positive_int  # noqa: E402

try:
    import torch
except ImportError:  # torch is the optional "bench" extra
    sys.exit('compare.py needs PyTorch: pip install -e ".[bench]"')

import peers  # noqa: E402
from peers import timing  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
# Offline stand-ins for weights gan_zoo would download; the time of a step
# does not depend on the weights (the peers always start from random ones).
OFFLINE = {
    "cigan": {"feature_weights": "random"},
    "resnet18_classifier": {"backbone_weights": None},
    "resnet50_classifier": {"backbone_weights": None},
}
# --tiny: configurations that build and step in a second or two per side.
TINY = {
    "cigan": {"patch_size": 64, "widths": [8, 8, 8, 8, 8], "discriminator_widths": [4, 4, 4, 4, 4]},
    "cyclegan": {"image_size": 16, "generator_filters": 2, "discriminator_filters": 2, "residual_blocks": 1},
    "dcgan": {"image_size": 16, "base_filters": 4, "latent_dim": 8},
    "diagram": {"patch_size": 16, "image_size": 32, "latent_dim": 8, "feature_filters": (4, 4, 8, 8),
                "feature_kernel_size": 3, "extended_filters": (8,) * 6, "extended_strides": (1,) * 6,
                "generator_filters": (8, 8, 4, 4), "generator_kernel_size": 3},
    "pathology_gan": {"stages": 2, "latent_dim": 8, "mapping_blocks": 1, "base_channels": 4,
                      "initial_channels": 4, "dense_units": 8, "attention_resolution": 14},
    "resnet18_classifier": {"image_size": 32},
    "resnet50_classifier": {"image_size": 32, "augment": False},
    "semi_cgan": {"width": 0.0625, "latent_dim": 8},
    "small_cnn": {"image_size": 16, "width": 0.125},
}
TINY_RUN = {"batch_size": 4, "warmup": 2, "steps": 2, "matmul_size": 256, "matmul_seconds": 0.1}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", metavar="NAME", choices=peers.MODELS,
                        help="registry names (default: every model with a peer)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        type=throughput.parse_assignment, metavar="KEY=VALUE",
                        help="config override for every model (repeatable), as in throughput.py")
    parser.add_argument("--sweep", action="append", default=[], type=throughput.parse_sweep,
                        metavar="KEY=V1,V2", help="compare at every value of KEY; sweeps form a grid")
    parser.add_argument("--precision", action="append", choices=PRECISIONS,
                        help="float32 or mixed_bfloat16 (torch: bfloat16 autocast); repeat for both "
                             "(default float32)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="interleaved repetitions of each side (median reported)")
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps per repetition (at least 2 are run)")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps per repetition")
    parser.add_argument("--batch-size", type=positive_int,
                        help="batch (default: the model's paper batch, as throughput.py)")
    parser.add_argument("--threads", type=positive_int,
                        help="threads of both frameworks (default: the usable cores)")
    parser.add_argument("--flops", choices=throughput.FLOP_METHODS, default="profiler",
                        help="gan_zoo's FLOP counting method (throughput.py's)")
    parser.add_argument("--matmul-size", type=positive_int, default=4096,
                        help="side of the square matmul that measures each framework's peak")
    parser.add_argument("--matmul-seconds", type=float, default=3.0,
                        help="time spent timing each peak matmul")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic batches")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny configurations, batch 4, 2 steps, a 256 matmul: a smoke test")
    parser.add_argument("--json", type=pathlib.Path, help="write all results here")
    parser.add_argument("--append", action="store_true", help="add this run to an existing --json file")
    parser.add_argument("--keep-going", action="store_true",
                        help="record a configuration that fails and go on with the next one")
    if parser.parse_args(argv).tiny:  # tiny defaults; options given explicitly still win
        parser.set_defaults(**TINY_RUN)
    return parser.parse_args(argv)


def set_threads(threads):
    """Gives both frameworks `threads` intra-op threads; returns what each has.

    TensorFlow's pool can only be set before its runtime starts (an
    earlier TensorFlow call in this process, e.g. in a test, fixes it):
    then it keeps its size, recorded as found (0: TensorFlow's default,
    the machine's cores).
    """
    torch.set_num_threads(threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    return {"requested": threads, "torch": torch.get_num_threads(),
            "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tensorflow_inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def configurations(args):
    """(name, task, overrides, config) for every model and sweep point.

    `overrides` are the user's (--set, --sweep), which label the rows;
    `config` also holds the offline stand-ins and, with --tiny, the tiny
    sizes (user values win).
    """
    keys = [k for k, _ in args.sweep]
    for name in args.models or peers.MODELS:
        for values in itertools.product(*[v for _, v in args.sweep]):
            overrides = {**dict(args.overrides), **dict(zip(keys, values))}
            settings = {**OFFLINE.get(name, {}), **(TINY.get(name, {}) if args.tiny else {}), **overrides}
            yield name, registry.get_spec(name).task, overrides, registry.resolve_config(name, **settings)


def conv_matmul_flops(flops):
    """gan_zoo's conv / matmul FLOPs per step from a `throughput.count_flops` result."""
    return flops[flops["used"]]["matmul_flops_per_step"]


def compare_one(args, name, task, config, precision, batch_size):
    """The interleaved repetitions of one model and precision: a list of pairs."""
    repetitions = []
    for repetition in range(args.repeats):
        sides = ("gan_zoo", "peer") if repetition % 2 == 0 else ("peer", "gan_zoo")
        rows = {}
        for side in sides:
            print(f"  repetition {repetition + 1}/{args.repeats}: {side} ...", flush=True)
            if side == "gan_zoo":
                rows[side] = throughput.time_training(name, config, task, precision, False, "default",
                                                      batch_size, args.warmup, args.steps, args.seed)
            else:
                rows[side] = timing.time_peer(name, config, precision, batch_size, args.warmup, args.steps,
                                              args.seed)
        ratio = rows["gan_zoo"]["images_per_s"] / rows["peer"]["images_per_s"]
        repetitions.append({"order": list(sides), **rows, "ratio": ratio})
        print(f"    gan_zoo {rows['gan_zoo']['images_per_s']:.1f} images/s, peer "
              f"{rows['peer']['images_per_s']:.1f}, ratio {ratio:.2f}", flush=True)
    return repetitions


def summarise(name, overrides, config, precision, batch_size, repetitions, flops, peer_flops, peaks):
    """The result row: medians, the ratio, each side's % of its own peak."""
    dtype = COMPUTE_DTYPES[precision]
    zoo_ips = statistics.median(r["gan_zoo"]["images_per_s"] for r in repetitions)
    peer_ips = statistics.median(r["peer"]["images_per_s"] for r in repetitions)
    zoo_flops, torch_flops = conv_matmul_flops(flops), peer_flops["flops_per_step"]
    zoo_gflops = zoo_flops * zoo_ips / batch_size / 1e9
    peer_gflops = torch_flops * peer_ips / batch_size / 1e9
    return {
        "model": name, "overrides": overrides, "config": config, "precision": precision,
        "batch_size": batch_size,
        "gan_zoo_images_per_s": zoo_ips, "peer_images_per_s": peer_ips,
        "ratio": statistics.median(r["ratio"] for r in repetitions),
        "gan_zoo_flops_per_step": zoo_flops, "peer_flops_per_step": torch_flops,
        "gan_zoo_gflops": zoo_gflops, "peer_gflops": peer_gflops,
        "gan_zoo_percent_of_peak": 100 * zoo_gflops / peaks["gan_zoo"][dtype]["best_gflops"],
        "peer_percent_of_peak": 100 * peer_gflops / peaks["peer"][dtype]["best_gflops"],
        "flops": flops, "peer_flops": peer_flops, "repetitions": repetitions,
        "load_average": throughput._load_average(),
    }


# ------------------------------------------------------------------ table
COLUMNS = ("model", "precision", "batch", "gan_zoo images/s", "peer images/s", "ratio",
           "gan_zoo % of peak", "peer % of peak")


def format_table(results):
    """A Markdown table, one row per model and precision."""
    rows = [(throughput.describe(r["model"], r["overrides"]), r["precision"], str(r["batch_size"]),
             f"{r['gan_zoo_images_per_s']:.1f}", f"{r['peer_images_per_s']:.1f}", f"{r['ratio']:.2f}",
             f"{r['gan_zoo_percent_of_peak']:.1f}", f"{r['peer_percent_of_peak']:.1f}") for r in results]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(COLUMNS)]
    numeric = [False, False] + [True] * 6

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(cells, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if n else "-" * (w + 2) for w, n in zip(widths, numeric)) + "|"
    return "\n".join([line(COLUMNS), rule] + [line(r) for r in rows])


def format_footer(run):
    lines = [f"threads: {run['threads']}; {run['options']['repeats']} interleaved repetitions of "
             f"{run['options']['steps']} timed steps each side; ratio = median of gan_zoo / peer per repetition"]
    for side, label in (("gan_zoo", "TensorFlow"), ("peer", "torch")):
        for peak in run["peak"][side].values():
            lines.append(f"peak {label}: {peak['dtype']} {peak['size']}x{peak['size']} matmul "
                         f"{peak['best_gflops']:.0f} GFLOP/s (best of {peak['repeats']})")
    seen = set()
    for r in run["results"]:
        key = throughput.describe(r["model"], r["overrides"])
        if key not in seen:
            seen.add(key)
            lines.append(f"conv/matmul FLOPs per step {key} (batch {r['batch_size']}): gan_zoo "
                         f"{r['gan_zoo_flops_per_step'] / 1e9:.4g} GFLOP ({r['flops']['used']}), peer "
                         f"{r['peer_flops_per_step'] / 1e9:.4g} GFLOP (FlopCounterMode)")
            cycle = r["peer_flops"]["steps_counted"]
            if cycle > 1:
                gan_zoo_count = ("too, as the profiler's" if r["flops"]["used"] == "profiler"
                                 else "; gan_zoo's analytic count is of one step making every update")
                lines.append(f"  the peer's count is the mean of a {cycle}-step update cycle{gan_zoo_count}")
    return "\n".join(lines)


# ------------------------------------------------------------------- main
def measure_peaks(args, precisions):
    peaks = {"gan_zoo": {}, "peer": {}}
    for dtype in dict.fromkeys(COMPUTE_DTYPES[p] for p in precisions):
        peaks["gan_zoo"][dtype] = throughput.measure_matmul_peak(dtype, args.matmul_size, args.matmul_seconds)
        peaks["peer"][dtype] = timing.matmul_peak(dtype, args.matmul_size, args.matmul_seconds)
        print(f"peak {dtype}: TensorFlow {peaks['gan_zoo'][dtype]['best_gflops']:.0f} GFLOP/s, "
              f"torch {peaks['peer'][dtype]['best_gflops']:.0f} GFLOP/s", flush=True)
    return peaks


def main(argv=None):
    """Runs the comparison; returns the run (also written to --json)."""
    args = parse_args(argv)
    precisions = list(dict.fromkeys(args.precision or ["float32"]))
    threads = set_threads(args.threads or len(os.sched_getaffinity(0)))
    original_policy = keras.mixed_precision.global_policy()
    machine = {**throughput.machine_info(), "torch": torch.__version__}
    run = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/compare.py"] + list(argv or sys.argv[1:])),
        "options": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
        "threads": threads, "load_average_start": throughput._load_average(),
        "peak": {}, "results": [], "failures": [],
    }
    document = throughput.read_document(args.json, machine, args.append) if args.json else None

    def save():
        if args.json:
            throughput.write_json(args.json, document, run)

    try:
        run["peak"] = measure_peaks(args, precisions)
        for name, task, overrides, config in configurations(args):
            label = throughput.describe(name, overrides)
            try:
                print(f"counting FLOPs of {label} ...", flush=True)
                batch_size, flops = throughput.count_flops(name, config, task, args.batch_size, args.flops)
                peer_flops = timing.count_peer_flops(name, config, batch_size, args.seed)
                for precision in precisions:
                    print(f"comparing {label} {precision}, batch {batch_size} ...", flush=True)
                    repetitions = compare_one(args, name, task, config, precision, batch_size)
                    run["results"].append(summarise(name, overrides, config, precision, batch_size,
                                                    repetitions, flops, peer_flops, run["peak"]))
                    save()
            except Exception as error:  # noqa: BLE001 - --keep-going records it
                if not args.keep_going:
                    raise
                run["failures"].append({"model": name, "overrides": overrides,
                                        "error": f"{type(error).__name__}: {error}"})
                print(f"  FAILED: {type(error).__name__}: {error}", flush=True)
                save()
    finally:
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(original_policy)
    run["load_average_end"] = throughput._load_average()
    print()
    print(format_table(run["results"]))
    print()
    print(format_footer(run))
    for failure in run["failures"]:
        print(f"failed: {throughput.describe(failure['model'], failure['overrides'])}: {failure['error']}")
    if args.json:
        save()
        print(f"\nwrote {args.json}")
    return {"machine": machine, **run}


if __name__ == "__main__":
    main()
