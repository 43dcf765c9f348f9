#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (an NVIDIA H100 here): the figures BENCHMARKS.md
# records "on a real GPU". Everything it needs travels with it:
#   .dev/gpu-fmnist   the release binary built on the developers' machine (x86-64)
#   .dev/gf-before    optional: an older build, benched beside this one on the same warm card
#   .dev/data/        the four Fashion-MNIST IDX files
#   .gl/*.deb         the Vulkan/EGL loaders (the machine has the NVIDIA driver, not the loader)
# Output: $OUT/log (everything), $OUT/bench.md, $OUT/bench.png and $OUT/runs.tar (each run's
# history, metrics and pictures). Each step has its own time limit, cut to what is left of
# BUDGET seconds, so that one hang costs that step, not the lease; a training run stopped by its
# limit checkpoints (SIGTERM) and keeps its history.
#   usage: bash benches/gpu-card.sh [quick|strong]
#     quick   the MLP's full run only (no CNN, no PyTorch)
#     strong  also the strong preset's full runs, seeds 1, 2, 3 while time is left (no PyTorch)
set -u
OUT=${OUT:-/tmp/out}
BUDGET=${BUDGET:-520}
MODE=${1:-}
T0=$(date +%s)
mkdir -p "$OUT/runs"
exec > >(tee "$OUT/log") 2>&1
. benches/gpu-loaders.sh
B=.dev/gpu-fmnist
OLD=.dev/gf-before
D=.dev/data
step() {
  local limit=$1; shift
  local left=$((BUDGET - ($(date +%s) - T0)))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 5 ]; then echo "=== skipped, no time left: $*"; return; fi
  echo "=== $* (limit ${limit}s) $(date +%T)"; timeout "$limit" "$@"; echo "=== rc $? $(date +%T)"
}
nproc
step 30 $B devices
step 90 $B check --device vulkan
for b in $B $OLD $B $OLD; do
  [ -x "$b" ] || continue
  # This build's bench also times the peers on the CPU; not here (the card is what is measured).
  extra=""; [ "$b" = "$B" ] && extra="--no-peers --plot $OUT/bench.png"
  step 120 $b bench --device vulkan --data-dir $D --reps 5 --threads 16 $extra | tee -a "$OUT/bench.md"
done
if [ "$MODE" = strong ]; then
  step 300 $B train --model strong --device vulkan --data-dir $D --seed 1 --out "$OUT/runs/strong-s1"
fi
# The other kernel arrangement (the one chosen for CPU drivers) on this card, for comparison.
GPU_FMNIST_TUNING=cpu step 60 $B bench --device vulkan --data-dir $D --reps 5 --no-peers --epochs-only | tee -a "$OUT/bench.md"
step 90 $B train --model mlp --device vulkan --data-dir $D --out "$OUT/runs/mlp"
if [ "$MODE" != quick ]; then
  step 150 $B train --model cnn --device vulkan --data-dir $D --out "$OUT/runs/cnn"
fi
if [ "$MODE" = strong ]; then
  for s in 2 3; do
    step 300 $B train --model strong --device vulkan --data-dir $D --seed $s --out "$OUT/runs/strong-s$s"
  done
else
  step 90 python3 benches/peers.py --data-dir $D --engine torch --device cuda --model mlp,cnn | tee "$OUT/peers-cuda.json"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,utilization.gpu --format=csv
# One file back for all runs (the tool returns few files); the first strong seed keeps its
# weights so that its test accuracy can be re-measured on the CPU path at home.
(cd "$OUT/runs" && find . -name model.safetensors ! -path './strong-s1/*' -delete; \
  find . -name 'best.safetensors' -delete; tar cf "$OUT/runs.tar" .) && rm -rf "$OUT/runs"
echo "=== done $(date +%T), $(( $(date +%s) - T0 )) s"
