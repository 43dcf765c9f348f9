#!/bin/bash
# Side by side: the GPU path of an older build against today's on one adapter (lavapipe here),
# one training epoch at a time, the two binaries alternating; prints "model build round seconds
# dispatches/step" (seconds: history.csv's, training plus validation).
#   OLD=/path/to/old/gpu-fmnist ROUNDS=1 MODELS="mlp cnn" benches/gpu-side-by-side.sh
cd "$(dirname "$0")/.."
OLD=${OLD:-/tmp/old7c-target/release/gpu-fmnist}; NEW=${NEW:-target/release/gpu-fmnist}
for model in ${MODELS:-mlp cnn}; do
  for round in $(seq "${ROUNDS:-1}"); do
    for v in old new; do
      out=/tmp/gsbs/$model-$v-$round; rm -rf $out
      bin=$OLD; [ $v = new ] && bin=$NEW
      $bin train --model $model --device vulkan --epochs 1 --out $out >/dev/null 2>&1
      echo "$model $v $round $(tail -1 $out/history.csv | cut -d, -f6) $(grep -o '"dispatches_per_step": [0-9]*' $out/metrics.json | grep -o '[0-9]*$')"
    done
  done
done
