#!/usr/bin/env bash
# Every built-in study's trials on this machine's CPU path, in the background, over as many
# sessions as it takes: the MLP studies' rounds, then each CNN study's first round (5 seeds),
# then the CNN second rounds. Two trials at a time, niced so that work beside it keeps the
# machine. Safe to kill at any moment and to start again: a trial resumes from its last epoch's
# checkpoint, a finished trial is a record in docs/experiments/<study>/trials/ (commit them), and
# a study's second round starts by itself once its first round is recorded.
#   usage: nohup bash benches/cpu-studies.sh > runs/studies.log 2>&1 &
#   env:   B (the binary, default target/release/gpu-fmnist; copy it elsewhere first if you
#          will rebuild while this runs), WORK (run directories, default runs/experiments)
set -u
cd "$(dirname "$0")/.."
B=${B:-target/release/gpu-fmnist}
WORK=${WORK:-runs/experiments}
MLP="mlp-activation mlp-widths mlp-depth mlp-lr mlp-lr-text mlp-l2 mlp-dropout mlp-overfitting mlp-batchnorm mlp-epochs"
CNN="cnn-padding cnn-pooling cnn-dense cnn-vs-mlp confusion cnn-dropout cnn-activation cnn-optimizer cnn-filters cnn-epochs"
run() { nice -n 10 "$B" experiment "$@" --device cpu --jobs 2 --work "$WORK" || echo "FAILED $*"; }
for s in $MLP; do run "$s"; done
for s in $CNN; do run "$s" --seeds 5; done
for s in $CNN; do run "$s"; done
echo "every study is as far as its seeds rule takes it"
