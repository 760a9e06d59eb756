#!/usr/bin/env bash
# A post-processing variant of a cross-validated recipe (docs/cv/README.md, addendum): the same
# fold models' held-out patients scored again with the variant's `slicewise segment` flags
# (scripts/cv/post/VARIANT.flags), paired with the plain score patient by patient.
#
#   scripts/cv/post.sh CANDIDATE VARIANT FOLD...    (run from the repository root, after
#                                                     scripts/cross-validate evaluate CANDIDATE FOLD)
# writes runs/cv/CANDIDATE/fold-I/heldout-VARIANT.json and docs/cv/CANDIDATE/fold-I.VARIANT.json.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '6,8p' "$0" >&2; exit 2; }
cand=$1 variant=$2; shift 2
# heldout.json and heldout-tta.json are the plain records' scores.
[ "$variant" != tta ] || { echo "a variant may not be named tta" >&2; exit 2; }
flags_file=scripts/cv/post/$variant.flags
[ -f "$flags_file" ] || { echo "no post-processing variant $variant (no $flags_file)" >&2; exit 2; }
mapfile -t flags < <(grep -v '^#' "$flags_file" | tr ' ' '\n' | grep -v '^$')
for fold in "$@"; do
  dir=runs/cv/$cand/fold-$fold
  [ -f "$dir/model.onnx" ] || { echo "$dir/model.onnx: evaluate the fold first" >&2; exit 1; }
  scripts/evaluate-model "$dir/model.onnx" ../shared/data "${flags[@]}" > "$dir/heldout-$variant.json"
  python3 scripts/cv/fold_record.py "$dir" "$cand" "$fold" --variant "$variant" "${flags[@]}" \
    > "docs/cv/$cand/fold-$fold.$variant.json"
  echo "docs/cv/$cand/fold-$fold.$variant.json"
done
