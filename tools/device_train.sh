#!/usr/bin/env bash
# Train the default models on a lent GPU machine in one call and bring back what the run made.
#
#   bash tools/device_train.sh [COUNT] [EPOCHS] [FINETUNE_EPOCHS] [CYCLES]      (arguments of train_default_model.sh)
#
# For the tool library's `device` (a GPU machine with its own python3 holding PyTorch with CUDA, OpenCV, numba and
# ONNX Runtime; no internet, a fresh machine each time, about 10 minutes a command): it checks that PyTorch sees a
# GPU (and stops at once if not: training on that machine's CPU would spend the lease for nothing), runs
# tools/train_default_model.sh with that python3 and data loaders on all but two cores, stops it after BUDGET_S
# seconds (default 500, inside one call's limit), and packs what it made into $OUT (default out/):
#
#   train_results.tgz[.partNN]  results/ (logs, metrics, each run's spec, latest.pth to resume from, held-out
#                               reports) and every file of lanenet_ros/models the run wrote (the new default.onnx,
#                               default_heads.onnx and their logs, metrics, evaluation); split into 15 MiB parts
#                               when larger (join with cat)
#   device_train.log            what the run printed
#
# Exit status: the recipe's, 3 without a GPU, 75 when BUDGET_S stopped it (run it again with results/ carried
# back: each training run resumes from its latest.pth).
#
# Nothing here is adopted by itself: unpack beside the checkout (tar xzf train_results.tgz -C /tmp/new), compare the
# new models with the shipped ones (docs/training.md) and copy them into lanenet_ros/models by hand.
# Smoke test without a GPU: ALLOW_CPU=1 OUT=/tmp/out PYTHON=python3 tools/device_train.sh 30 1 1 0
set -uo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
cd "$(dirname "$0")/.."
OUT="${OUT:-out}" BUDGET_S="${BUDGET_S:-500}" PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
LOG="$OUT/device_train.log"
START=$(mktemp)  # files written after this are the run's
{
  echo "# $(date -u +%FT%TZ) device_train.sh $*: budget ${BUDGET_S} s, python $PYTHON"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "PyTorch ($PYTHON) sees no GPU"
    [ "${ALLOW_CPU:-0}" = 1 ] || exit 3
  fi
  workers=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
  PYTHON="$PYTHON" TRAIN_ARGS="dataset_config.num_workers=$workers ${TRAIN_ARGS:-}" PYTHONUNBUFFERED=1 \
    timeout "$BUDGET_S" bash tools/train_default_model.sh "$@"
  rc=$?
  if [ $rc = 124 ]; then  # timeout's own status, which the device tool reads as its limit: 75 says "go on"
    echo "# stopped after ${BUDGET_S} s (BUDGET_S): carry results/ back and run again to go on"
    rc=75
  else
    echo "# train_default_model.sh ended: exit $rc"
  fi
  exit $rc
} 2>&1 | tr '\r' '\n' | grep --line-buffered -v '^\s*$' > "$LOG"
status=${PIPESTATUS[0]}
mapfile -t made < <(find results -type f \( -name '*.log' -o -name '*.jsonl' -o -name '*.json' -o -name 'spec.txt' \
  -o -name latest.pth \) -newer "$START" 2>/dev/null; find lanenet_ros/models -type f -newer "$START")
if [ ${#made[@]} -gt 0 ]; then
  tar czf "$OUT/train_results.tgz" "${made[@]}"
  if [ "$(stat -c %s "$OUT/train_results.tgz")" -gt $((15 * 1024 * 1024)) ]; then  # 16 MiB a file comes back
    split -b 15M -d "$OUT/train_results.tgz" "$OUT/train_results.tgz.part" && rm "$OUT/train_results.tgz"
  fi
fi
rm -f "$START"
tail -n 40 "$LOG"
ls -la "$OUT"
exit "$status"
