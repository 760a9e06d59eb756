#!/usr/bin/env bash
# Inference cost of tumour-model candidates on one CPU thread: wall seconds of
# `slicewise segment` on a 256 x 256 x 40 LGG patient (best of 3 runs, the process start and the
# model load included), without and with TTA, and the model file's size.
#
#   scripts/cv/cost.sh MODEL.onnx...      (run from the repository root)
set -euo pipefail
PATIENT=${PATIENT:-../shared/data/lgg-flair/TCGA_DU_5851_19950428}
export SLICEWISE_ORT_LIB=${SLICEWISE_ORT_LIB:-$PWD/.cache/onnxruntime/libonnxruntime.so.1.31.1}
cargo build --release --quiet -p slicewise-cli
B=$PWD/target/release/slicewise
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
best() {
  local best=999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$B" segment "$PATIENT" --model "$1" --out "$OUT/$RANDOM" --threads 1 --device cpu "${@:2}" >/dev/null 2>&1
    t1=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $t1 - $t0))")
  done
  printf '%.2f' "$best"
}
printf '%s\t%s\t%s\t%s\n' model bytes seconds seconds_tta
for m in "$@"; do
  printf '%s\t%s\t%s\t%s\n' "$m" "$(stat -c %s "$m")" "$(best "$m")" "$(best "$m" --tta)"
done
