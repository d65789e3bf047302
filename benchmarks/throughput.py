"""Training throughput of the zoo's models at their paper configurations.

For each model (every registered one, or those named by --models) this builds
the model with its registry defaults (+ --set / --sweep overrides), compiles it
with its paper optimizers, feeds one synthetic in-memory batch of the paper
batch size as a repeated tf.data dataset, runs --warmup steps, then times
--steps training steps one by one, materialising each step's logs so that
the clock stops only when the step has really finished.

It also measures the machine's peak in the same run (a large square matmul
per compute dtype) and counts the FLOPs of one training step, so each row
reports achieved GFLOP/s and the fraction of that peak. See
benchmarks/README.md for how to read the numbers.

    python benchmarks/throughput.py --models dcgan --sweep variant=v1,v3 \\
        --sweep image_size=50,64 --precision float32 --precision mixed_bfloat16 \\
        --jit both --json benchmarks/results/cpu-2core.json
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gan_zoo import registry  # noqa: E402
from gan_zoo.arguments import parse_overrides, parse_value, positive_int  # noqa: E402
from gan_zoo.errors import UsageError  # noqa: E402
from gan_zoo.models.gan import GAN  # noqa: E402
from gan_zoo.options import PRECISIONS  # noqa: E402
from gan_zoo.precision import set_precision  # noqa: E402
from gan_zoo.training.distribute import get_strategy  # noqa: E402

FLOP_METHODS = ("profiler", "analytic")
# Op types whose FLOPs are matrix-multiply work (what the matmul peak measures).
MATMUL_OPS = (
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "Conv3D",
    "DepthwiseConv2dNative",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


# ------------------------------------------------------------------ options
# --set and --sweep values are parsed as `gan-zoo train --set` parses them
# (gan_zoo.cli.parse_value: Python literals, true/false/none, else strings).
def parse_assignment(text):
    """"KEY=VALUE" -> (key, value), as one `gan-zoo --set`."""
    try:
        ((key, value),) = parse_overrides([text]).items()
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return key, value


def parse_sweep(text):
    """"KEY=V1,V2,..." -> (key, [values]); each value as a `--set` value."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier() or not values.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2,..., got {text!r}")
    return key, [parse_value(v) for v in values.split(",")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="registry names (default: every registered model)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        type=parse_assignment, metavar="KEY=VALUE",
                        help="config override for every model (repeatable); VALUE "
                             "as in `gan-zoo train --set`: a Python literal, "
                             "true/false/none, else a string")
    parser.add_argument("--sweep", action="append", default=[], type=parse_sweep,
                        metavar="KEY=V1,V2",
                        help="benchmark every value of KEY; several sweeps form a grid")
    parser.add_argument("--batch-size", type=positive_int,
                        help="global batch (default: the model's default_training())")
    parser.add_argument("--precision", action="append", choices=PRECISIONS,
                        help="Keras dtype policy; repeat to compare (default float32)")
    parser.add_argument("--jit", dest="jit", nargs="?", const="on", default="off",
                        choices=("on", "off", "both"),
                        help="XLA-compile the train step: --jit, --jit both")
    parser.add_argument("--no-jit", dest="jit", action="store_const", const="off",
                        help="no XLA (the default)")
    parser.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                        help="tf.distribute strategy of the timed runs")
    parser.add_argument("--warmup", type=positive_int, default=5,
                        help="untimed steps first (at least 2: the first one, through "
                             "fit(), traces and compiles)")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps")
    parser.add_argument("--flops", choices=FLOP_METHODS, default="profiler",
                        help="FLOP counting method; 'profiler' falls back to "
                             "'analytic' when the profiler fails")
    parser.add_argument("--matmul-size", type=positive_int, default=4096,
                        help="side of the square matmul that measures peak")
    parser.add_argument("--matmul-seconds", type=float, default=3.0,
                        help="time to spend timing each peak matmul dtype")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic batch")
    parser.add_argument("--json", type=pathlib.Path, help="write all results here")
    parser.add_argument("--append", action="store_true",
                        help="add this run to an existing --json file")
    parser.add_argument("--keep-going", action="store_true",
                        help="record a configuration that fails (its error, in the run's "
                             "'failures') and go on with the next one, instead of stopping")
    return parser.parse_args(argv)


# ------------------------------------------------------------- machine info
def machine_info():
    """CPU, memory, GPU and library versions of this machine."""
    cpuinfo = _read_text("/proc/cpuinfo")
    cpu_model, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            cpu_model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    meminfo = _read_text("/proc/meminfo").split()
    memory_gib = None
    if "MemTotal:" in meminfo:
        memory_gib = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(details.get("device_name", device.name))
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "memory_gib": memory_gib,
        "gpus": gpus,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
    }


def _read_text(path):
    try:
        return pathlib.Path(path).read_text()
    except OSError:
        return ""


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------- peak
def measure_matmul_peak(dtype, size=4096, min_seconds=3.0):
    """GFLOP/s of a [size, size] x [size, size] matmul in `dtype`.

    The matmul runs in a tf.function (so TensorFlow's graph rewrites pick the
    oneDNN kernel, as they do for the models' train steps); the result is
    reduced to a scalar and fetched, so each timing covers a finished matmul.
    Repeats after one warm-up call until `min_seconds` have passed (at least 3).
    """
    dtype = tf.as_dtype(dtype)
    generator = tf.random.Generator.from_seed(1)
    # Entries ~ N(0, 1/size): products stay O(1), no overflow in float16.
    a = tf.cast(generator.normal((size, size), stddev=size**-0.5), dtype)
    b = tf.cast(generator.normal((size, size), stddev=size**-0.5), dtype)

    @tf.function
    def matmul_sum(a, b):
        return tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b), tf.float32))

    matmul_sum(a, b).numpy()  # warm-up: tracing, kernel selection
    seconds = []
    while len(seconds) < 3 or sum(seconds) < min_seconds:
        start = time.perf_counter()
        matmul_sum(a, b).numpy()
        seconds.append(time.perf_counter() - start)
    flops = 2.0 * size**3
    return {
        "dtype": dtype.name,
        "size": size,
        "repeats": len(seconds),
        "best_gflops": flops / min(seconds) / 1e9,
        "median_gflops": flops / statistics.median(seconds) / 1e9,
    }


# ------------------------------------------------------------------ inputs
def input_spec(model, task):
    """(image shape, (low, high) pixel range, whether labels are fed)."""
    if task == "classifier":
        return tuple(model.input_shape[1:]), tuple(model.input_range), True
    if isinstance(model, GAN):
        return tuple(model.image_shape), tuple(model.data_range), model.conditional
    raise TypeError(f"Do not know how to feed a {type(model).__name__} ({task}).")


def synthetic_batch(model, task, batch_size, seed=0):
    """One batch: images uniform in the model's range (+ int labels).

    A model whose batches are not (images[, labels]) (several streams,
    masks, ...) gives its own: `model.synthetic_batch(batch_size, seed)`.
    """
    if hasattr(model, "synthetic_batch"):
        return model.synthetic_batch(batch_size, seed)
    shape, (low, high), with_labels = input_spec(model, task)
    rng = np.random.default_rng(seed)
    images = rng.uniform(low, high, (batch_size,) + shape).astype("float32")
    if not with_labels:
        return images
    labels = rng.integers(0, model.num_classes, batch_size).astype("int32")
    return images, labels


def repeated_dataset(batch, batch_size):
    """The batch forever; batched then cached, so each step only hands it out."""
    dataset = tf.data.Dataset.from_tensor_slices(batch)
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat().prefetch(1)


def default_batch_size(model, name):
    if hasattr(model, "training_plan"):
        return int(model.training_plan().batch_size)
    try:
        return int(model.default_training()["batch_size"])
    except (AttributeError, NotImplementedError, KeyError):
        raise ValueError(
            f"{name} has no default_training() batch size; pass --batch-size."
        ) from None


# ------------------------------------------------------------------ FLOPs
def train_step_graph(model, batch):
    """The concrete graph of one `model.train_step` on `batch`."""
    specs = tf.nest.map_structure(lambda a: tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)), batch)

    @tf.function
    def step(data):
        return model.train_step(data)

    return step.get_concrete_function(specs)


def executed_op_names(function):
    """Ops of a concrete function that run: ancestors of outputs and side effects.

    Gradient functions create ops nobody uses (e.g. a Conv2D's filter gradient
    when only the input gradient is wanted); TensorFlow prunes them before
    running the function, so they must not be counted.
    """
    graph = function.graph
    pending = [t.op for t in function.outputs] + list(graph.control_outputs)
    seen = set()
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        pending.extend(t.op for t in op.inputs)
        pending.extend(op.control_inputs)
    return seen


def profiler_flops(model, batch):
    """FLOPs of one train step from TensorFlow's profiler (tfprof).

    `tf.compat.v1.profiler.profile` with `float_operation()` gives per-op
    FLOPs (its registry covers convolutions, their two gradients, matmuls and
    most element-wise ops) over the traced train-step graph; only the ops
    that TensorFlow actually runs (see `executed_op_names`) are summed.

    A model with an update schedule traces one step per phase. When every
    phase lasts a fixed number of steps (PathologyGAN's n_critic: four
    critic-only steps, then one of both networks), a step's count is the
    mean over one cycle, which is what the timed steps run; a phase that
    ends on a loss (ciGAN's) makes the cycle unknown, and the count is that
    of the phase a fresh model starts in, where the timed steps are.
    """
    schedule = getattr(model, "update_schedule", None)
    if schedule is None or schedule.is_constant:
        return _profile_step(model, batch)
    per_phase = {}
    for phase in schedule.phases:
        model.active_phase = phase  # train_step reads it while it is traced
        per_phase[phase.name] = _profile_step(model, batch)
    model.active_phase = None
    if all(phase.steps is not None and phase.until_below is None for phase in schedule.phases):
        weights = {phase.name: phase.steps for phase in schedule.phases}
        averaged = "the mean over one cycle of phases"
    else:
        weights = {name: float(name == schedule.phases[0].name) for name in per_phase}
        averaged = f"the phase {schedule.phases[0].name!r}, where a fresh model's timed steps run"
    total = sum(weights.values())
    result = {key: sum(weights[name] * per_phase[name][key] for name in per_phase) / total
              for key in ("flops_per_step", "matmul_flops_per_step", "profiler_flops_unpruned")}
    return {"method": "profiler", **result, "per_phase": per_phase, "phase_steps": weights,
            "counted": averaged}


def _profile_step(model, batch):
    """`profiler_flops` of the step `model.train_step` traces now."""
    function = train_step_graph(model, batch)
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler warns that it is a v1 API
    try:
        profile = tf.compat.v1.profiler.profile(graph=function.graph, options=options)
    finally:
        logger.setLevel(level)
    per_op = {}
    pending = [profile]
    while pending:
        node = pending.pop()
        per_op[node.name] = node.float_ops
        pending.extend(node.children)
    executed = executed_op_names(function)
    total = matmul = 0
    for op in function.graph.get_operations():
        flops = per_op.get(op.name, 0) if op.name in executed else 0
        total += flops
        matmul += flops if op.type in MATMUL_OPS else 0
    return {
        "method": "profiler",
        "flops_per_step": float(total),
        "matmul_flops_per_step": float(matmul),
        "profiler_flops_unpruned": float(profile.total_float_ops),
    }


def layer_forward_flops(layer):
    """2 x multiply-adds of one example through a conv / dense layer; else 0."""
    try:
        in_shape, out_shape = tuple(layer.input.shape), tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return 0
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                          keras.layers.Conv3DTranspose)):
        # Each input pixel scatters a kernel-sized patch into every output channel.
        macs = math.prod(in_shape[1:]) * math.prod(layer.kernel_size) * out_shape[-1]
    elif isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        macs = math.prod(out_shape[1:]) * math.prod(layer.kernel_size)
    elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        macs = math.prod(out_shape[1:]) * math.prod(layer.kernel_size) * in_shape[-1]
        macs //= layer.groups
    elif isinstance(layer, keras.layers.Dense):
        macs = math.prod(in_shape[1:]) * layer.units
    else:
        return 0
    return 2 * macs


def network_flops(network):
    """(forward FLOPs per example, FLOPs of its first compute layer)."""
    flops = list(_compute_layer_flops(network))
    return sum(flops), (flops[0] if flops else 0)


def _compute_layer_flops(network):
    # Functional models list their layers in topological order.
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            yield from _compute_layer_flops(layer)
        elif flops := layer_forward_flops(layer):
            yield flops


def analytic_flops(model, task, batch_size):
    """FLOPs of one train step counted from the conv / dense layer shapes.

    A forward pass costs F = sum of 2 x MACs. Backpropagating through a
    network costs F for the weight gradients (when its weights are trained)
    plus F for the input gradients, minus its first layer's input gradient
    when nothing upstream needs it. One step is:

    - classifier: forward + weight and input gradients of the network;
    - GAN (the alternating step of Goodfellow et al.): the D update runs G
      forward and D forward + backward on the real and the fake batch; each
      of the model's `g_updates_per_d` G updates (DCGAN's default is 2; a
      GAN without that attribute counts as 1) runs G forward + backward and
      D forward + input gradients.

    Element-wise work (batch norm, activations, optimizer updates) is left
    out. A GAN whose train_step differs from this schedule is undercounted:
    a gradient penalty's second backward pass (through D's input gradients)
    is not counted (semi_cgan, batch 128: profiler 175 GFLOP per step,
    analytic 117), nor are extra critic steps. For such models the
    profiler's count is the authoritative one. A model of another shape
    (several networks, phases) counts its own step per example:
    `model.train_step_flops(network_flops)`.
    """
    if hasattr(model, "train_step_flops"):
        per_example = model.train_step_flops(network_flops)
    elif task == "classifier":
        forward, first = network_flops(model)
        per_example = forward + forward + (forward - first)
    elif isinstance(model, GAN):
        g_forward, g_first = network_flops(model.generator)
        d_forward, d_first = network_flops(model.discriminator)
        d_update = g_forward + 2 * (d_forward + d_forward + (d_forward - d_first))
        g_update = g_forward + g_forward + (g_forward - g_first) + 2 * d_forward
        per_example = d_update + getattr(model, "g_updates_per_d", 1) * g_update
    else:
        raise TypeError(f"No analytic FLOP count for {type(model).__name__}.")
    return {"method": "analytic", "flops_per_step": float(per_example * batch_size),
            "matmul_flops_per_step": float(per_example * batch_size)}


def count_flops(name, config, task, batch_size, method):
    """(batch size, FLOPs of one train step) in a fresh float32 session.

    `batch_size` None takes the model's `default_training()` batch. Counting
    in its own session keeps tracing out of the timed models; the count does
    not depend on the dtype policy, XLA or the strategy.
    """
    keras.backend.clear_session()
    model = registry.load(name, **config)
    model.compile()
    batch_size = batch_size or default_batch_size(model, name)
    result = {"analytic": analytic_flops(model, task, batch_size)}
    result["used"] = "analytic"
    if method == "profiler":
        try:
            result["profiler"] = profiler_flops(model, synthetic_batch(model, task, batch_size))
            result["used"] = "profiler"
        except Exception as error:  # noqa: BLE001 - report it, then fall back
            result["profiler_error"] = f"{type(error).__name__}: {error}"
            print(f"  profiler failed ({result['profiler_error']}); counting analytically",
                  flush=True)
    keras.backend.clear_session()
    return batch_size, result


# ----------------------------------------------------------------- timing
def _materialise(logs):
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in logs.items()}


def time_training(name, config, task, precision, jit, strategy_name, batch_size,
                  warmup, steps, seed=0):
    """Builds, compiles and times one model; returns the timing row."""
    keras.backend.clear_session()  # also resets the dtype policy: set it after
    set_precision(precision)
    strategy = get_strategy(strategy_name)
    with strategy.scope():
        model = registry.load(name, **config)
        model.compile(jit_compile=jit)
    batch = synthetic_batch(model, task, batch_size, seed)
    if hasattr(model, "adapt_mean"):  # classifiers that subtract a mean image
        model.adapt_mean(batch[0])
    dataset = repeated_dataset(batch, batch_size)

    # Warm-up: the first step goes through fit(), which builds the metrics
    # and traces (and XLA-compiles) the step; the rest, at least one, go
    # through the iterator the timed steps use, so no retrace is timed.
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    first_step_s = time.perf_counter() - start
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    warmup_steps = 1 + max(1, warmup - 1)
    for _ in range(warmup_steps - 1):
        _materialise(model.train_function(iterator))

    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        logs = _materialise(model.train_function(iterator))
        seconds.append(time.perf_counter() - start)
    total = sum(seconds)
    row = {
        "replicas": strategy.num_replicas_in_sync,
        "first_step_s": first_step_s,
        "warmup_steps": warmup_steps,
        "seconds": total,
        "images_per_s": batch_size * steps / total,
        "ms_per_step": 1000 * total / steps,
        "ms_per_step_median": 1000 * statistics.median(seconds),
        "ms_per_step_min": 1000 * min(seconds),
        "last_logs": logs,
        "logs_finite": all(math.isfinite(v) for v in logs.values()),
    }
    del model, iterator, dataset
    keras.backend.clear_session()
    return row


# ------------------------------------------------------------------ table
COLUMNS = ("model", "precision", "xla", "batch", "images/s", "ms/step",
           "achieved GFLOP/s", "% of peak")


def describe(name, overrides):
    if not overrides:
        return name
    return name + " " + " ".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def table_rows(results):
    for r in results:
        yield (
            describe(r["model"], r["overrides"]),
            r["precision"],
            "on" if r["jit_compile"] else "off",
            str(r["batch_size"]),
            f"{r['images_per_s']:.1f}",
            f"{r['ms_per_step']:.0f}",
            f"{r['achieved_gflops']:.1f}",
            f"{r['percent_of_peak']:.1f}",
        )


def format_table(results):
    """A Markdown table of the result rows."""
    rows = list(table_rows(results))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(COLUMNS)]
    numeric = [False, False, False, True, True, True, True, True]

    def line(cells):
        padded = [c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                          for w, n in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(COLUMNS), rule] + [line(r) for r in rows])


def _gflop(flops):
    return f"{flops / 1e9:.4g} GFLOP"


def format_footer(run):
    lines = []
    for peak in run["peak"].values():
        lines.append(
            f"peak: {peak['dtype']} {peak['size']}x{peak['size']} matmul "
            f"{peak['best_gflops']:.0f} GFLOP/s (best of {peak['repeats']}; "
            f"median {peak['median_gflops']:.0f})"
        )
    seen = set()
    for r in run["results"]:
        key = describe(r["model"], r["overrides"])
        if key in seen:
            continue
        seen.add(key)
        flops = r["flops"]
        line = (f"FLOPs/step {key} (batch {r['batch_size']}): "
                f"{_gflop(r['flops_per_step'])} by {flops['used']}")
        if "profiler" in flops:
            line += (f" (conv/matmul ops {_gflop(flops['profiler']['matmul_flops_per_step'])};"
                     f" analytic conv/dense {_gflop(flops['analytic']['flops_per_step'])})")
        elif "profiler_error" in flops:
            line += f" (profiler failed: {flops['profiler_error']})"
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------- main
def configurations(args):
    """(name, task, overrides) for every model and sweep point."""
    names = args.models or registry.list_models()
    keys = [k for k, _ in args.sweep]
    grid = list(itertools.product(*[values for _, values in args.sweep]))
    for name in names:
        spec = registry.get_spec(name)
        for values in grid:
            overrides = dict(args.overrides)
            overrides.update(zip(keys, values, strict=True))
            registry.resolve_config(name, **overrides)  # unknown keys fail early
            yield name, spec.task, overrides


def read_document(path, machine, append):
    """The JSON document this run is added to: a new one, or `path`'s with --append."""
    document = {"machine": machine, "runs": []}
    if append and path.exists():
        document = json.loads(path.read_text())
        if document.get("machine", {}).get("cpu_model") != machine["cpu_model"]:
            print(f"warning: {path} holds runs from another machine", file=sys.stderr)
    return document


def write_json(path, document, run):
    """Writes `document` with `run` as its last run (atomically: a temporary file, renamed).

    Called after every row, so a run stopped from outside (a timeout) keeps
    the rows it finished.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps({**document, "runs": [*document["runs"], run]},
                                  indent=1, default=str) + "\n")
    partial.replace(path)


def failure_row(name, task, overrides, precision, jit, strategy, stage, error):
    """What a configuration that failed leaves in the run's `failures`."""
    return {"model": name, "task": task, "overrides": overrides, "precision": precision,
            "jit_compile": jit, "strategy": strategy, "stage": stage,
            "error": f"{type(error).__name__}: {error}"}


def main(argv=None):
    """Runs the benchmark; returns the run's results (also written to --json)."""
    args = parse_args(argv)
    precisions = list(dict.fromkeys(args.precision or ["float32"]))
    jits = {"on": [True], "off": [False], "both": [False, True]}[args.jit]
    original_policy = keras.mixed_precision.global_policy()
    machine = machine_info()
    run = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/throughput.py"] + list(argv or sys.argv[1:])),
        "options": {k: (str(v) if isinstance(v, pathlib.Path) else v)
                    for k, v in vars(args).items()},
        "load_average_start": _load_average(),
        "peak": {},
        "results": [],
        "failures": [],
    }
    document = read_document(args.json, machine, args.append) if args.json else None

    def save():
        if args.json:
            write_json(args.json, document, run)

    def fail(name, task, overrides, combinations, stage, error):
        if not args.keep_going:
            raise error
        for precision, jit in combinations:
            run["failures"].append(failure_row(name, task, overrides, precision, jit,
                                               args.strategy, stage, error))
        print(f"  FAILED ({stage}): {type(error).__name__}: {error}", flush=True)
        save()

    try:
        for precision in precisions:
            dtype = keras.DTypePolicy(precision).compute_dtype
            if dtype not in run["peak"]:
                run["peak"][dtype] = measure_matmul_peak(
                    dtype, args.matmul_size, args.matmul_seconds)
                peak = run["peak"][dtype]
                print(f"peak {dtype}: {peak['best_gflops']:.0f} GFLOP/s", flush=True)

        # XLA last: its rows (slow to compile, the likeliest to fail) come after
        # every precision's plain row, so a run stopped early keeps those.
        combinations = [(precision, jit) for jit, precision in itertools.product(jits, precisions)]
        for name, task, overrides in configurations(args):
            config = registry.resolve_config(name, **overrides)
            try:
                batch_size, flops = count_flops(name, config, task, args.batch_size, args.flops)
            except Exception as error:  # noqa: BLE001 - --keep-going records it
                fail(name, task, overrides, combinations, "build", error)
                continue
            flops_per_step = flops[flops["used"]]["flops_per_step"]
            for precision, jit in combinations:
                label = f"{describe(name, overrides)} {precision} xla={'on' if jit else 'off'}"
                print(f"running {label} ...", flush=True)
                try:
                    row = time_training(name, config, task, precision, jit, args.strategy,
                                        batch_size, args.warmup, args.steps, args.seed)
                except Exception as error:  # noqa: BLE001 - --keep-going records it
                    fail(name, task, overrides, [(precision, jit)], "training", error)
                    continue
                achieved = flops_per_step * args.steps / row["seconds"] / 1e9
                peak = run["peak"][keras.DTypePolicy(precision).compute_dtype]
                row = {
                    "model": name,
                    "task": task,
                    "overrides": overrides,
                    "config": config,
                    "precision": precision,
                    "jit_compile": jit,
                    "strategy": args.strategy,
                    "batch_size": batch_size,
                    "steps": args.steps,
                    **row,
                    "flops_per_step": flops_per_step,
                    "flops": flops,
                    "achieved_gflops": achieved,
                    "percent_of_peak": 100 * achieved / peak["best_gflops"],
                    "load_average": _load_average(),
                }
                run["results"].append(row)
                print(f"  {row['images_per_s']:.1f} images/s, {row['ms_per_step']:.0f} ms/step,"
                      f" {achieved:.1f} GFLOP/s", flush=True)
                save()
    finally:
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(original_policy)
    run["load_average_end"] = _load_average()

    print()
    print(format_table(run["results"]))
    print()
    print(format_footer(run))
    for failure in run["failures"]:
        print(f"failed: {describe(failure['model'], failure['overrides'])} {failure['precision']} "
              f"xla={'on' if failure['jit_compile'] else 'off'} ({failure['stage']}): "
              f"{failure['error']}")
    if args.json:
        write_json(args.json, document, run)
        print(f"\nwrote {args.json}")
    return {"machine": machine, **run}


if __name__ == "__main__":
    main()
