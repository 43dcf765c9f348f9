#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (an NVIDIA H100 here): the figures BENCHMARKS.md
# records "on a real GPU". Everything it needs travels with it:
#   .dev/gpu-fmnist   the release binary built on the developers' machine (x86-64)
#   .dev/data/        the four Fashion-MNIST IDX files
#   .gl/*.deb         the Vulkan/EGL loaders (the machine has the NVIDIA driver, not the loader)
# Output: $OUT/log (everything) and $OUT/*.json. Each step has its own time limit so that one
# hang costs that step, not the lease.
#   usage: bash benches/gpu-card.sh [quick]
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
B=.dev/gpu-fmnist
D=.dev/data
step() { local limit=$1; shift; echo "=== $* (limit ${limit}s) $(date +%T)"; timeout "$limit" "$@"; echo "=== rc $? $(date +%T)"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,utilization.gpu --format=csv
nproc
OLD=.dev/gf-before   # optional: an older build, benched beside this one on the same warm card
step 30 $B devices
step 90 $B check --device vulkan
for b in $B $OLD $B $OLD; do
  [ -x "$b" ] || continue
  # This build's bench also times the peers on the CPU; not here (the card is what is measured).
  extra=""; [ "$b" = "$B" ] && extra="--no-peers --plot $OUT/bench.png"
  step 120 $b bench --device vulkan --data-dir $D --reps 5 --threads 16 $extra | tee -a "$OUT/bench.md"
done
# The other kernel arrangement (the one chosen for CPU drivers) on this card, for comparison.
GPU_FMNIST_TUNING=cpu step 60 $B bench --device vulkan --data-dir $D --reps 5 --no-peers --epochs-only | tee -a "$OUT/bench.md"
step 90 $B train --model mlp --device vulkan --data-dir $D --out "$OUT/mlp"
if [ "${1:-}" != quick ]; then
  step 150 $B train --model cnn --device vulkan --data-dir $D --out "$OUT/cnn"
fi
step 90 python3 benches/peers.py --data-dir $D --engine torch --device cuda --model mlp,cnn | tee "$OUT/peers-cuda.json"
cp "$OUT"/mlp/metrics.json "$OUT/mlp-metrics.json" 2>/dev/null
cp "$OUT"/cnn/metrics.json "$OUT/cnn-metrics.json" 2>/dev/null
cp "$OUT"/cnn/history.csv "$OUT/cnn-history.csv" 2>/dev/null
rm -rf "$OUT/mlp" "$OUT/cnn"
nvidia-smi --query-gpu=name,clocks.sm,utilization.gpu --format=csv
