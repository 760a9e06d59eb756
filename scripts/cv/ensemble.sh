#!/usr/bin/env bash
# A per-fold ensemble of two or more cross-validated recipes (docs/cv/README.md, addendum): for
# each fold, the recipes' fold models (trained on the same four folds) averaged into one model
# (`slicewise-train ensemble`) and scored on the fold's held-out patients, which none of them saw.
#
#   scripts/cv/ensemble.sh A+B FOLD...    (run from the repository root, after
#                                          scripts/cross-validate evaluate A FOLD and B FOLD)
# writes runs/cv/A+B/fold-I/ and docs/cv/A+B/fold-I.json; `scripts/cross-validate report`
# judges it against the better of its members (rule 2).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '6,7p' "$0" >&2; exit 2; }
name=$1; shift
IFS=+ read -r -a cands <<< "$name"
[ ${#cands[@]} -ge 2 ] || { echo "$name: name two or more candidates joined by +" >&2; exit 2; }
bin=${SLICEWISE_TRAIN_BIN:-}
if [ -z "$bin" ]; then
  scripts/setup --train >/dev/null
  cargo build --release --quiet -p slicewise-train
  bin=$PWD/target/release/slicewise-train
fi
for fold in "$@"; do
  dir=runs/cv/$name/fold-$fold
  members=() runs=()
  for c in "${cands[@]}"; do
    m=runs/cv/$c/fold-$fold
    [ -f "$m/model.onnx" ] || { echo "$m/model.onnx: evaluate $c fold $fold first" >&2; exit 1; }
    members+=("$m/model.onnx") runs+=("$m")
  done
  # The members must share their split (the ensemble's card keeps it only then): otherwise one
  # may have trained on a patient another held out.
  python3 - "${runs[@]}" <<'PY'
import json, sys
splits = {r: json.load(open(r + "/split.json")) for r in sys.argv[1:]}
if len({json.dumps(s, sort_keys=True) for s in splits.values()}) != 1:
    sys.exit("the members' splits differ: " + ", ".join(splits))
PY
  mkdir -p "$dir"
  cp "${runs[0]}/split.json" "$dir/split.json"
  python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${runs[@]}" > "$dir/members.json"
  "$bin" ensemble --out "$dir/model.onnx" --version "cv-$name-fold-$fold" "${members[@]}" >/dev/null
  scripts/evaluate-model "$dir/model.onnx" > "$dir/heldout.json"
  scripts/evaluate-model "$dir/model.onnx" ../shared/data --tta > "$dir/heldout-tta.json"
  mkdir -p "docs/cv/$name"
  python3 scripts/cv/fold_record.py "$dir" "$name" "$fold" > "docs/cv/$name/fold-$fold.json"
  echo "docs/cv/$name/fold-$fold.json"
done
