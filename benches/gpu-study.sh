#!/usr/bin/env bash
# A study's trials on a lent GPU machine (what `experiment` takes hours for on the 2-core CPU
# path), LANES trials at a time in the order given, each cut to what is left of BUDGET seconds;
# a trial with under a minute left is not started (a cut trial checkpoints, but the machine is
# given back). Travels like benches/gpu-card.sh: .dev/gpu-fmnist, .dev/data/, .gl/*.deb.
# Output: $OUT/log and $OUT/study.tar (every trial's files but its weights, and the study's
# report); unpack it under runs/ here and `experiment STUDY --report` redraws the report.
#   usage: bash benches/gpu-study.sh STUDY.toml [TRIAL...]   (default: every trial, in order)
#   env:   BUDGET (s, default 500), LANES (default 2), DEVICE (default vulkan), EXTRA (more args)
set -u
OUT=${OUT:-/tmp/out}
export T0=$(date +%s) BUDGET=${BUDGET:-500} DEVICE=${DEVICE:-vulkan} EXTRA=${EXTRA:-}
export STUDY=$1 B=.dev/gpu-fmnist D=.dev/data X="$OUT/exp"
shift
mkdir -p "$X"
exec > >(tee "$OUT/log") 2>&1
. benches/gpu-loaders.sh
trials=("$@")
[ ${#trials[@]} -eq 0 ] && mapfile -t trials < <($B experiment "$STUDY" --trials | cut -f1)
one() {
  local left=$((BUDGET - ($(date +%s) - T0)))
  if [ "$left" -lt 60 ]; then echo "=== trial $1 not started: ${left}s left"; return; fi
  echo "=== trial $1 (limit ${left}s) $(date +%T)"
  # shellcheck disable=SC2086
  timeout "$left" $B experiment "$STUDY" --trial "$1" --device "$DEVICE" --data-dir "$D" --out "$X" $EXTRA
  echo "=== trial $1 rc $? $(date +%T)"
}
export -f one
printf '%s\n' "${trials[@]}" | xargs -P "${LANES:-2}" -I{} bash -c 'one {}'
# shellcheck disable=SC2086
$B experiment "$STUDY" --report --device "$DEVICE" --data-dir "$D" --out "$X" $EXTRA
find "$X" -name '*.safetensors' -delete
tar cf "$OUT/study.tar" -C "$X" . && rm -rf "$X"
echo "=== done $(date +%T), $(( $(date +%s) - T0 )) s"
