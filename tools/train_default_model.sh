#!/usr/bin/env bash
# Make the embedded default model (lanenet_ros/models/default.onnx) with the project's own pipeline:
# synthetic data -> canonical layout -> class weights -> LaneNet training -> verified ONNX export ->
# evaluation on a held-out synthetic split made with another seed. Beside the model it leaves the
# spec, the training log and the evaluation report.
#
#   tools/train_default_model.sh [COUNT] [EPOCHS]     (defaults 2000 frames, 4 epochs)
#
# On this project's 2-core CPU machines this takes over an hour; on one GPU a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-2000}" EPOCHS="${2:-4}"
PY=.venv/bin
OUT=lanenet_ros/models
mkdir -p data results "$OUT"
[ -f data/tusimple_synth/dataset.json ] || {
  $PY/lanenet-train synth --format tusimple --out data/raw_train --count "$COUNT" --seed 1 --val-fraction 0.05
  $PY/lanenet-train convert --format tusimple --input data/raw_train --output data/tusimple_synth --lane-width 8
  $PY/lanenet-train stats --dataset data/tusimple_synth
}
[ -f data/tusimple_heldout/dataset.json ] || {
  $PY/lanenet-train synth --format tusimple --out data/raw_heldout --count 200 --seed 777 --val-fraction 0
  $PY/lanenet-train convert --format tusimple --input data/raw_heldout --output data/tusimple_heldout \
    --lane-width 8 --val-fraction 0
}
$PY/lanenet-train train -e config/specs/lanenet_tusimple.txt -r results/default_model "train_config.epochs=$EPOCHS" \
  2>&1 | tee results/default_model.train.log
$PY/lanenet-train export -m results/default_model/latest.pth -o "$OUT/default.onnx"
$PY/lanenet-train evaluate -e config/specs/lanenet_tusimple.txt -m "$OUT/default.onnx" \
  dataset_config.validation_data_sources.dataset_root=data/tusimple_heldout \
  dataset_config.validation_data_sources.split=train | tee results/default_model.eval.log
cp config/specs/lanenet_tusimple.txt "$OUT/default.spec.txt"
cp results/default_model.train.log "$OUT/default.train.log"
cp results/default_model.eval.log "$OUT/default.eval.log"
