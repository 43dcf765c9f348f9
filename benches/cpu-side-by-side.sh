#!/bin/bash
# Side by side: the CPU path of 7c38d67 against today's, one epoch at a time, alternating.
cd "$(dirname "$0")/.."
# OLD: a build of 7c38d67 (git worktree add /tmp/old 7c38d67 && cargo build --release there).
OLD=${OLD:-/tmp/old-target/release/gpu-fmnist}; NEW=target/release/gpu-fmnist
for model in mlp cnn; do
  reps=3; [ $model = cnn ] && reps=2
  for rep in $(seq $reps); do
    for v in old new1 new2; do
      out=/tmp/sbs/$model-$v-$rep; rm -rf $out
      case $v in
        old) $OLD train --model $model --device cpu --epochs 1 --out $out >/dev/null 2>&1;;
        new1) $NEW train --model $model --device cpu --threads 1 --epochs 1 --out $out >/dev/null 2>&1;;
        new2) $NEW train --model $model --device cpu --threads 2 --epochs 1 --out $out >/dev/null 2>&1;;
      esac
      echo "$model $v $rep $(tail -1 $out/history.csv | cut -d, -f6)"
    done
  done
done
