#!/usr/bin/env bash
# GPU check (issue 24, item 5): one prepared script that fits in one
# 10-minute command on the lent GPU machine.
#
#   1. prints the machine: nvidia-smi and TensorFlow's GPUs;
#   2. runs benchmarks/throughput.py for every registered model at its paper
#      configuration, float32 and mixed_bfloat16, without and with XLA, on all
#      local GPUs (MirroredStrategy when there are several), one process per
#      model under a per-model time limit; a model that fails or runs out of
#      time is recorded with its reason and the sweep goes on;
#   3. with the time left before the deadline (--budget), trains semi_cgan
#      for the paper's 200 epochs (or as many as fit, recorded) on fold 0 of
#      a k-fold IDC split, and scores it.
#
# Results go to $OUT (the device machine's result folder), else --out, else
# runs/gpu_check-<UTC time>: gpu_check.json (every row, the machine, the
# training part), gpu_check.log (everything printed) and semi_cgan/
# (the recipe's metrics.json, per-epoch metrics.jsonl and config.json).
# See benchmarks/README.md, "gpu_check.sh".
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine
#   bash benchmarks/gpu_check.sh --data-dir ../shared/data/idc --budget 480
#   bash benchmarks/gpu_check.sh --tiny                # CPU smoke test, 1-1.5 minutes

set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

usage() {
    cat <<'EOF'
usage: bash benchmarks/gpu_check.sh [options]

  --budget S          total seconds for the whole check (default 540: leaves a
                      minute of a 10-minute command for start-up and copying)
  --sweep-budget S    seconds of the budget for the throughput sweep
                      (default 55% of --budget); training gets the rest
  --models "A B ..."  registry names to benchmark (default: every registered
                      model; with --tiny: small_cnn); "none" skips the sweep
  --jit on|off|both   XLA in the sweep (default both)
  --warmup N          untimed steps per row (default 2; --tiny 1)
  --steps N           timed steps per row (default 10; --tiny 2)
  --data-dir DIR      IDC patches for the semi_cgan training (default: the
                      recipe's generated demo data)
  --epochs N          semi_cgan epochs to ask for (default 200, the paper's;
                      --tiny 1); fewer are trained when the budget runs out
  --score-margin S    seconds kept after training to score the cGAN when the
                      budget stops it (default 60; --tiny 30)
  --no-train          skip the semi_cgan training
  --tiny              tiny configurations, few steps, 1 epoch: runs on a CPU
                      in 1-1.5 minutes (a smoke test of this script)
  --out DIR           result folder when $OUT is unset
  --python PATH       Python with TensorFlow (default .venv/bin/python if
                      present, else python3)
  --keep-work         keep the work folder (per-model JSON and logs, the
                      recipe's run folder) instead of deleting it
  -h, --help          this text
EOF
}

BUDGET=540
SWEEP_BUDGET=""
MODELS=""
JIT=both
WARMUP=""
STEPS=""
DATA_DIR=""
EPOCHS=""
SCORE_MARGIN=""
TRAIN=1
TINY=0
OUT_OPTION=""
PY=""
KEEP_WORK=0

need_value() {
    if [ $# -lt 2 ]; then
        echo "gpu_check.sh: $1 needs a value" >&2
        exit 2
    fi
}
need_int() {
    case "$2" in
        '' | *[!0-9]*) echo "gpu_check.sh: $1 needs a whole number, got '$2'" >&2; exit 2 ;;
    esac
}

while [ $# -gt 0 ]; do
    case "$1" in
        --budget) need_value "$@"; need_int "$1" "$2"; BUDGET=$2; shift 2 ;;
        --sweep-budget) need_value "$@"; need_int "$1" "$2"; SWEEP_BUDGET=$2; shift 2 ;;
        --models) need_value "$@"; MODELS=$2; shift 2 ;;
        --jit) need_value "$@"; JIT=$2; shift 2 ;;
        --warmup) need_value "$@"; need_int "$1" "$2"; WARMUP=$2; shift 2 ;;
        --steps) need_value "$@"; need_int "$1" "$2"; STEPS=$2; shift 2 ;;
        --data-dir) need_value "$@"; DATA_DIR=$2; shift 2 ;;
        --epochs) need_value "$@"; need_int "$1" "$2"; EPOCHS=$2; shift 2 ;;
        --score-margin) need_value "$@"; need_int "$1" "$2"; SCORE_MARGIN=$2; shift 2 ;;
        --no-train) TRAIN=0; shift ;;
        --tiny) TINY=1; shift ;;
        --out) need_value "$@"; OUT_OPTION=$2; shift 2 ;;
        --python) need_value "$@"; PY=$2; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$JIT" in on | off | both) ;; *) echo "gpu_check.sh: --jit takes on, off or both" >&2; exit 2 ;; esac
if [ -n "$DATA_DIR" ] && [ ! -d "$DATA_DIR" ]; then
    echo "gpu_check.sh: --data-dir $DATA_DIR is not a folder" >&2
    exit 2
fi

if [ "$TINY" = 1 ]; then
    : "${MODELS:=small_cnn}" "${WARMUP:=1}" "${STEPS:=2}" "${EPOCHS:=1}" "${SCORE_MARGIN:=30}"
    MATMUL=(--matmul-size 256 --matmul-seconds 0.1 --batch-size 8)
    MIN_MODEL_S=10
else
    : "${WARMUP:=2}" "${STEPS:=10}" "${EPOCHS:=200}" "${SCORE_MARGIN:=60}"
    MATMUL=(--matmul-size 4096 --matmul-seconds 1)
    MIN_MODEL_S=20
fi
: "${SWEEP_BUDGET:=$((BUDGET * 55 / 100))}"

if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
HELPER=("$PY" "$ROOT/benchmarks/gpu_check.py")

START=$(date +%s)
DEADLINE=$((START + BUDGET))
SWEEP_DEADLINE=$((START + SWEEP_BUDGET))

RESULTS=${OUT:-${OUT_OPTION:-runs/gpu_check-$(date -u +%Y%m%d-%H%M%S)}}
mkdir -p "$RESULTS" || exit 2
RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
cleanup() {
    if [ "$KEEP_WORK" = 1 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
exec > >(tee -a "$RESULTS/gpu_check.log") 2>&1

elapsed() { echo $(( $(date +%s) - START )); }
section() { echo; echo "== [$(elapsed) s] $*"; }

# ----------------------------------------------------------------- 1. machine
section "machine"
date -u
uname -a
echo "cpus: $(nproc), python: $PY ($("$PY" --version 2>&1))"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi 2>&1 | tee "$WORK/nvidia-smi.txt"
else
    echo "nvidia-smi: not found (no NVIDIA driver on this machine)" | tee "$WORK/nvidia-smi.txt"
fi
"$PY" "$ROOT/benchmarks/gpu_check.py" devices >"$WORK/devices.txt"  # its stderr: the log only
cat "$WORK/devices.txt"
GPUS=$(sed -n 's/^gpus=//p' "$WORK/devices.txt" | tail -n 1)
if [ "${GPUS:-0}" -gt 1 ]; then STRATEGY=mirrored; else STRATEGY=default; fi
if [ "$MODELS" = none ]; then
    MODELS=""
elif [ -z "$MODELS" ]; then
    MODELS=$(sed -n 's/^models=//p' "$WORK/devices.txt" | tail -n 1)
fi

FAILED=()
[ -n "$GPUS" ] || FAILED=(--option "error=TensorFlow did not start with $PY")
"${HELPER[@]}" start "$WORK" "$RESULTS" \
    --option "budget_s=$BUDGET" --option "sweep_budget_s=$SWEEP_BUDGET" --option "models=$MODELS" \
    --option "precisions=float32 mixed_bfloat16" --option "jit=$JIT" --option "warmup=$WARMUP" \
    --option "steps=$STEPS" --option "strategy=$STRATEGY" --option "gpus=${GPUS:-}" \
    --option "tiny=$([ "$TINY" = 1 ] && echo true || echo false)" --option "epochs=$EPOCHS" \
    --option "data_dir=${DATA_DIR:-demo}" --option "score_margin_s=$SCORE_MARGIN" \
    --option "python=$PY" "${FAILED[@]}" || exit 2
if [ -z "$GPUS" ]; then
    echo "gpu_check.sh: TensorFlow did not start with $PY (see above); nothing was measured." >&2
    echo "(The lent device's image holds PyTorch and JAX but no TensorFlow: see benchmarks/README.md.)" >&2
    exit 3
fi

# ------------------------------------------------------------------- 2. sweep
# Per-model overrides. Paper configurations offline: the pretrained weights
# (ImageNet VGG-19, ResNets) would be downloaded; random ones cost the same time.
model_sets() {
    SETS=()
    case "$1" in
        cigan) SETS=(--set feature_weights=random) ;;
        resnet18_classifier | resnet50_classifier) SETS=(--set backbone_weights=None) ;;
    esac
    [ "$TINY" = 1 ] || return 0
    case "$1" in
        cigan) SETS+=(--set patch_size=64 --set "widths=[8, 8, 8, 8, 8]"
                      --set "discriminator_widths=[4, 4, 4, 4, 4]") ;;
        cyclegan) SETS+=(--set image_size=16 --set generator_filters=2 --set discriminator_filters=2
                         --set residual_blocks=1) ;;
        dcgan) SETS+=(--set image_size=16 --set base_filters=4 --set latent_dim=8) ;;
        diagram) SETS+=(--set patch_size=16 --set image_size=32 --set latent_dim=8
                        --set "feature_filters=(4, 4, 8, 8)" --set feature_kernel_size=3
                        --set "extended_filters=(8, 8, 8, 8, 8, 8)"
                        --set "extended_strides=(1, 1, 1, 1, 1, 1)"
                        --set "generator_filters=(8, 8, 4, 4)" --set generator_kernel_size=3) ;;
        pathology_gan) SETS+=(--set stages=2 --set latent_dim=8 --set mapping_blocks=1 --set base_channels=4
                              --set initial_channels=4 --set dense_units=8 --set attention_resolution=14) ;;
        resnet18_classifier) SETS+=(--set image_size=32) ;;
        resnet50_classifier) SETS+=(--set image_size=32 --set augment=False) ;;
        semi_cgan) SETS+=(--set width=0.0625 --set latent_dim=8) ;;
        small_cnn) SETS+=(--set image_size=16 --set width=0.125) ;;
    esac
}

read -r -a MODEL_LIST <<<"$MODELS"
section "throughput sweep: ${#MODEL_LIST[@]} models, float32 + mixed_bfloat16, jit $JIT, strategy $STRATEGY," \
    "until $((SWEEP_DEADLINE - START)) s"
for index in "${!MODEL_LIST[@]}"; do
    model=${MODEL_LIST[$index]}
    # Up to twice an even share of what is left, keeping MIN_MODEL_S for each
    # model after it: a model that ends early leaves its time to the others.
    left=$((SWEEP_DEADLINE - $(date +%s)))
    remaining=$((${#MODEL_LIST[@]} - index))
    limit=$((2 * left / remaining))
    reserve=$((left - MIN_MODEL_S * (remaining - 1)))
    [ "$limit" -gt "$reserve" ] && limit=$reserve
    if [ "$limit" -lt "$MIN_MODEL_S" ]; then
        echo "-- $model: skipped (${left} s left for the sweep)"
        "${HELPER[@]}" model-done "$WORK" "$RESULTS" "$model" -1 "$left" 0
        continue
    fi
    model_sets "$model"
    section "$model (limit $limit s)"
    began=$(date +%s)
    timeout -k 10 "$limit" "$PY" benchmarks/throughput.py --models "$model" "${SETS[@]}" \
        --precision float32 --precision mixed_bfloat16 --jit "$JIT" --strategy "$STRATEGY" \
        --warmup "$WARMUP" --steps "$STEPS" "${MATMUL[@]}" --keep-going \
        --json "$WORK/throughput-$model.json" 2>&1 | tee "$WORK/throughput-$model.log"
    status=${PIPESTATUS[0]}
    [ "$status" = 0 ] || echo "-- $model: throughput.py ended with status $status"
    "${HELPER[@]}" model-done "$WORK" "$RESULTS" "$model" "$status" "$(($(date +%s) - began))" "$limit"
done

# ---------------------------------------------------------- 3. semi_cgan training
train_record() {
    "${HELPER[@]}" train-done "$WORK" "$RESULTS" "$RUN" --record "epochs_paper=200" \
        --record "epochs_asked=$EPOCHS" --record "data_dir=${DATA_DIR:-demo}" "$@"
}
RUN="$WORK/semi_cgan_run"
RECIPE=(recipes/semi_cgan_idc.py --split kfold --only-folds 0 --baselines "" --out "$RUN")
[ -n "$DATA_DIR" ] && RECIPE+=(--data-dir "$DATA_DIR")
[ "$TINY" = 1 ] && RECIPE+=(--width 0.0625 --set latent_dim=8 --batch-size 32)
left=$((DEADLINE - SCORE_MARGIN - $(date +%s)))
if [ "$TRAIN" = 0 ]; then
    section "semi_cgan training: skipped (--no-train)"
elif [ "$left" -lt 30 ]; then
    section "semi_cgan training: skipped (${left} s left before the scoring margin)"
    train_record --record "status=skipped: ${left} s left" --record "epochs_trained=0"
else
    section "semi_cgan: $EPOCHS epochs asked, $left s to train (deadline at $BUDGET s)"
    began=$(date +%s)
    timeout -k 15 "$left" "$PY" "${RECIPE[@]}" --epochs "$EPOCHS" 2>&1 | tee "$WORK/semi_cgan.log"
    status=${PIPESTATUS[0]}
    rescore_status=""
    case "$status" in
        124 | 137)
            done_epochs=$("${HELPER[@]}" completed-epochs --trim "$RUN")
            if [ "$done_epochs" -gt 0 ]; then
                # The budget stopped it: reopen the run at the epochs it finished, which
                # trains nothing and scores the cGAN (metrics.json). It may use the last
                # minute of the command beyond the budget.
                section "semi_cgan: the budget stopped it after $done_epochs epochs; scoring those"
                rescore=$((DEADLINE + 45 - $(date +%s)))
                [ "$rescore" -lt 30 ] && rescore=30
                timeout -k 10 "$rescore" "$PY" "${RECIPE[@]}" --epochs "$done_epochs" 2>&1 \
                    | tee -a "$WORK/semi_cgan.log"
                rescore_status=${PIPESTATUS[0]}
                state="stopped by the time budget after $done_epochs epochs"
                [ "$rescore_status" = 0 ] || state="$state; scoring them failed (status $rescore_status)"
            else
                state="stopped by the time budget before its first epoch ended"
            fi
            ;;
        0)
            done_epochs=$("${HELPER[@]}" completed-epochs "$RUN")
            state="finished"
            ;;
        *)
            done_epochs=$("${HELPER[@]}" completed-epochs "$RUN")
            state="failed (status $status): $(grep -v '^[[:space:]]*$' "$WORK/semi_cgan.log" | tail -n 1)"
            ;;
    esac
    train_record --record "status=$state" --record "epochs_trained=$done_epochs" \
        --record "returncode=$status" --record "rescore_returncode=$rescore_status" \
        --record "seconds=$(($(date +%s) - began))" --record "train_limit_s=$left"
fi

section "results in $RESULTS"
"${HELPER[@]}" report "$RESULTS"
echo "total $(elapsed) s (budget $BUDGET s)"
