"""Helper of benchmarks/gpu_check.sh: devices, bookkeeping and the result JSON.

`gpu_check.sh` runs the programs (throughput.py once per model, the semi_cgan
recipe) under its time budget; this file records what each one did in the
work folder and rebuilds `gpu_check.json` from those records after every
step, so a check stopped from outside still leaves its finished rows. Only
`devices` imports TensorFlow; the other commands use the standard library.

    python benchmarks/gpu_check.py devices
    python benchmarks/gpu_check.py start WORK OUT --option budget_s=540 ...
    python benchmarks/gpu_check.py model-done WORK OUT MODEL RC SECONDS LIMIT
    python benchmarks/gpu_check.py completed-epochs RUN_FOLDER [--trim]
    python benchmarks/gpu_check.py train-done WORK OUT RUN_FOLDER --record KEY=VALUE ...
    python benchmarks/gpu_check.py report OUT
"""

import argparse
import datetime
import json
import pathlib
import shutil
import statistics
import sys

RESULT = "gpu_check.json"
SWEEP_LOG = "sweep.jsonl"
TRAIN_RECORD = "train.json"
CONTEXT = "context.json"
# What throughput.py leaves per model in the work folder.
THROUGHPUT_JSON = "throughput-{model}.json"
THROUGHPUT_LOG = "throughput-{model}.log"
TIMED_OUT = (124, 137)  # timeout(1)'s exit status; 128 + SIGKILL
ROW_KEYS = ("replicas", "batch_size", "steps", "images_per_s", "ms_per_step", "ms_per_step_median",
            "ms_per_step_min", "first_step_s", "achieved_gflops", "percent_of_peak", "flops_per_step",
            "logs_finite")


# ------------------------------------------------------------------ devices
def devices():
    """Prints TensorFlow's view of the GPUs; then `models=NAME ...` and `gpus=N`."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    print(f"tensorflow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()} "
          f"(CUDA {build.get('cuda_version', '-')}, cuDNN {build.get('cudnn_version', '-')})")
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        print(f"{gpu.name}: {details.get('device_name', '?')}, "
              f"compute capability {details.get('compute_capability', '?')}")
    if not gpus:
        print("TensorFlow sees no GPU: everything runs on the CPU.")
    from gan_zoo import registry

    print(f"models={' '.join(registry.list_models())}")
    print(f"gpus={len(gpus)}")


# ---------------------------------------------------------------- records
def _read_json(path, default=None):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return default


def _write_json(path, data):
    path = pathlib.Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1, default=str) + "\n")
    partial.replace(path)


def _parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "": None}.get(text.lower(), text)


def _pairs(items):
    pairs = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        if key in ("models", "precisions"):
            pairs[key] = value.split()
        else:
            pairs[key] = _parse_value(value)
    return pairs


def start(work, out, options):
    """Records the check's options and start time; writes a first gpu_check.json."""
    work.mkdir(parents=True, exist_ok=True)
    _write_json(work / CONTEXT, {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": options,
    })
    (work / SWEEP_LOG).unlink(missing_ok=True)
    (work / TRAIN_RECORD).unlink(missing_ok=True)
    merge(work, out)


def model_done(work, out, model, returncode, seconds, limit):
    """Records how throughput.py ended for one model (skipped: returncode -1)."""
    with open(work / SWEEP_LOG, "a") as file:
        file.write(json.dumps({"model": model, "returncode": returncode,
                               "seconds": seconds, "limit_s": limit}) + "\n")
    merge(work, out)


def completed_epochs(run_folder, trim=False):
    """Epochs in the cGAN's last backup under `run_folder` (0 if none).

    With `trim`, drops the records of later epochs from the `metrics.jsonl`
    beside the backup: a run stopped after logging an epoch but before its
    backup lost that epoch, and reopening it at the backup's epochs would
    otherwise report the lost epoch as trained.
    """
    done = 0
    for state in pathlib.Path(run_folder).rglob("backup/state.json"):
        record = _read_json(state, {})
        if not isinstance(record, dict):
            continue
        epochs = int(record.get("completed_epochs") or 0)
        done = max(done, epochs)
        log = state.parent.parent / "metrics.jsonl"
        if trim and log.exists():
            lines = log.read_text().splitlines(keepends=True)
            kept = [line for line in lines if _epoch_of(line) <= epochs]
            if len(kept) < len(lines):
                log.write_text("".join(kept))
    return done


def _epoch_of(line):
    try:
        return int(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return 0  # a partial line: the training loop drops it itself


def train_done(work, out, run_folder, record):
    """Copies the recipe's metrics into OUT/semi_cgan/ and records the training part."""
    run_folder = pathlib.Path(run_folder)
    target = out / "semi_cgan"
    target.mkdir(parents=True, exist_ok=True)
    copied = {}
    # --only-folds 0 of a k-fold run: metrics.json at the top, the cGAN's epoch log in fold0/.
    for name in ("metrics.json", "metrics.jsonl", "config.json"):
        found = sorted(run_folder.rglob(name), key=lambda p: len(p.parts))
        if found:
            shutil.copyfile(found[0], target / name)
            copied[name] = f"semi_cgan/{name}"
    epochs = _epoch_records(target / "metrics.jsonl")
    seconds = [e["seconds"] for e in epochs[1:] if isinstance(e.get("seconds"), (int, float))]
    record.update({
        "run_folder": str(run_folder),
        "files": copied,
        "metrics_written": "metrics.json" in copied,
        "epochs_logged": len(epochs),
        "epoch_seconds_median": statistics.median(seconds) if seconds else None,
        "first_epoch_seconds": epochs[0].get("seconds") if epochs else None,
    })
    _write_json(work / TRAIN_RECORD, record)
    merge(work, out)


def _epoch_records(path):
    records = []
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


# ------------------------------------------------------------------ merge
def _log_tail(path, lines=3):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _summary_row(row):
    return {"model": row["model"], "overrides": row.get("overrides", {}), "precision": row["precision"],
            "jit_compile": row["jit_compile"], "strategy": row.get("strategy"),
            **{k: row[k] for k in ROW_KEYS if k in row}}


def model_rows(work, model, ended, combinations):
    """One row per (precision, XLA) of `model`: its numbers, or why there are none."""
    document = _read_json(work / THROUGHPUT_JSON.format(model=model), {})
    runs = document.get("runs") or [{}]
    results, failures = runs[-1].get("results", []), runs[-1].get("failures", [])
    returncode, limit = ended["returncode"], ended["limit_s"]
    if returncode == -1:
        why = f"not started: the sweep's time budget was spent ({ended['seconds']} s left for it)"
    elif returncode in TIMED_OUT:
        why = f"not measured: the per-model time limit ({limit} s) stopped throughput.py"
    elif returncode != 0:
        tail = _log_tail(work / THROUGHPUT_LOG.format(model=model))
        why = f"throughput.py exited with status {returncode}: {tail}"
    else:
        why = "not measured (throughput.py ended without this row)"
    rows = []
    for precision, jit in combinations:
        found = [r for r in results if r["precision"] == precision and r["jit_compile"] == jit]
        failed = [f for f in failures if f["precision"] == precision and f["jit_compile"] == jit]
        if found:
            rows.append(_summary_row(found[-1]))
        elif failed:
            rows.append({"model": model, "precision": precision, "jit_compile": jit,
                         "error": f"{failed[-1]['stage']}: {failed[-1]['error']}"})
        else:
            rows.append({"model": model, "precision": precision, "jit_compile": jit, "error": why})
    return rows, runs[-1] if runs[-1] else None, document.get("machine")


def merge(work, out):
    """Rebuilds OUT/gpu_check.json from the records in WORK."""
    context = _read_json(work / CONTEXT, {})
    options = context.get("options", {})
    jits = {"on": [True], "off": [False], "both": [False, True]}[options.get("jit", "both")]
    precisions = options.get("precisions") or ["float32", "mixed_bfloat16"]
    combinations = [(p, j) for j in jits for p in precisions]
    rows, runs, machine = [], [], None
    for line in (work / SWEEP_LOG).read_text().splitlines() if (work / SWEEP_LOG).exists() else ():
        ended = json.loads(line)
        model_rows_, run, model_machine = model_rows(work, ended["model"], ended, combinations)
        rows += model_rows_
        machine = machine or model_machine
        runs += [{"model": ended["model"], **ended, "run": run}]
    nvidia_smi = work / "nvidia-smi.txt"
    document = {
        "started": context.get("started"),
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": options,
        "machine": machine,
        "nvidia_smi": nvidia_smi.read_text().splitlines() if nvidia_smi.exists() else None,
        "devices": (work / "devices.txt").read_text().splitlines()
        if (work / "devices.txt").exists() else None,
        "rows": rows,
        "semi_cgan": _read_json(work / TRAIN_RECORD),
        "throughput_runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / RESULT, document)


def report(out):
    """Prints gpu_check.json's rows and the training part as plain text."""
    document = _read_json(out / RESULT, {})
    print(f"{'model':<22} {'precision':<15} {'xla':<4} {'batch':>5} {'images/s':>10} "
          f"{'ms/step':>9} {'% of peak':>9}")
    for row in document.get("rows", []):
        xla = "on" if row["jit_compile"] else "off"
        if "error" in row:
            print(f"{row['model']:<22} {row['precision']:<15} {xla:<4} FAILED {row['error'][:160]}")
            continue
        print(f"{row['model']:<22} {row['precision']:<15} {xla:<4} {row['batch_size']:>5} "
              f"{row['images_per_s']:>10.1f} {row['ms_per_step']:>9.1f} {row['percent_of_peak']:>9.1f}")
    train = document.get("semi_cgan") or {}
    if train:
        median = train.get("epoch_seconds_median")
        print(f"semi_cgan: {train.get('status')}; {train.get('epochs_trained')} epochs trained of "
              f"{train.get('epochs_asked')} asked (paper: {train.get('epochs_paper')}) in "
              f"{train.get('seconds')} s, median epoch {'-' if median is None else f'{median:.2f}'} s; "
              f"metrics.json {'written' if train.get('metrics_written') else 'NOT written'}")


# ------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("devices", help="print TensorFlow's GPUs, then models=... and gpus=N")
    command = commands.add_parser("start", help="record the options, write a first gpu_check.json")
    command.add_argument("work", type=pathlib.Path)
    command.add_argument("out", type=pathlib.Path)
    command.add_argument("--option", action="append", metavar="KEY=VALUE")
    command = commands.add_parser("model-done", help="record how throughput.py ended for a model")
    command.add_argument("work", type=pathlib.Path)
    command.add_argument("out", type=pathlib.Path)
    command.add_argument("model")
    command.add_argument("returncode", type=int, help="its exit status; -1: not started")
    command.add_argument("seconds", type=int)
    command.add_argument("limit", type=int)
    command = commands.add_parser("completed-epochs", help="epochs in a run folder's cGAN backup")
    command.add_argument("run_folder", type=pathlib.Path)
    command.add_argument("--trim", action="store_true",
                         help="drop later epochs from the metrics.jsonl beside the backup")
    command = commands.add_parser("train-done", help="copy the recipe's metrics, record the training")
    command.add_argument("work", type=pathlib.Path)
    command.add_argument("out", type=pathlib.Path)
    command.add_argument("run_folder", type=pathlib.Path)
    command.add_argument("--record", action="append", metavar="KEY=VALUE")
    command = commands.add_parser("merge", help="rebuild gpu_check.json")
    command.add_argument("work", type=pathlib.Path)
    command.add_argument("out", type=pathlib.Path)
    command = commands.add_parser("report", help="print gpu_check.json as a table")
    command.add_argument("out", type=pathlib.Path)
    args = parser.parse_args(argv)

    if args.command == "devices":
        devices()
    elif args.command == "start":
        start(args.work, args.out, _pairs(args.option))
    elif args.command == "model-done":
        model_done(args.work, args.out, args.model, args.returncode, args.seconds, args.limit)
    elif args.command == "completed-epochs":
        print(completed_epochs(args.run_folder, args.trim))
    elif args.command == "train-done":
        train_done(args.work, args.out, args.run_folder, _pairs(args.record))
    elif args.command == "report":
        report(args.out)
    else:
        merge(args.work, args.out)


if __name__ == "__main__":
    sys.exit(main())
