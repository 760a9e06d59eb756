"""Writes the cross-validated figures of the bundled tumour model's recipe into its card
(`cross_validation` in models/lgg-flair-small.card.json), from docs/cv/summary.json: the honest
estimate for a model trained that way, beside the card's figures of one 13-patient split.
Only the card's JSON changes, never the model file.

    python3 scripts/cv/card.py [docs/cv] [models/lgg-flair-small.card.json]

Run scripts/cross-validate report first. tests/integration/bundled_model.rs recomputes these
figures from the fold records.
"""
import json
import os
import sys

RECIPE = "baseline"
ENSEMBLE = "baseline+darkcore"
BAR_MEAN, BAR_WORST = 0.85, 0.3


def flags(variant):
    """The `slicewise segment` options of post-processing variant VARIANT."""
    with open(f"scripts/cv/post/{variant}.flags") as f:
        return " ".join(line.strip() for line in f if line.strip() and not line.startswith("#"))


def block(summary):
    base = summary["candidates"][RECIPE]
    f = base["volume_dice"]
    out = {
        "what": ("5-fold cross-validation by patient over all 91 patients of lgg/ and lgg-flair/ "
                 "(docs/cv/README.md): every patient scored by a fold model that never saw it, "
                 "trained on the other folds with the recipe of this model's first member (version "
                 "4), last epoch, no choice made on the held-out patients: the estimate for a model "
                 "trained that way (ensemble_like_this_model, where present, estimates this "
                 "model's two-member structure on the folds it has). The test "
                 "and validation figures elsewhere in this card are of one 13-patient split and "
                 "have been optimistic."),
        "recipe": (f"{RECIPE}: version 4's recipe (scripts/cv/candidates/{RECIPE}.args), the "
                   "first member of this model"),
        "folds": 5,
        "folds_done": base["folds_done"],
        "volume_dice": f,
        "volume_dice_tta": base["volume_dice_tta"],
        "brats_volume_dice_by_fold": base["brats_volume_dice_by_fold"],
        "issue_bar": {"mean_at_least": BAR_MEAN, "no_patient_below": BAR_WORST,
                      "met": f["mean"] >= BAR_MEAN and f["worst"] >= BAR_WORST},
        "reproduce": ("scripts/cross-validate train baseline 0 1 2 3 4 (two at a time on 2 cores, "
                      "~75 min a fold); scripts/cross-validate evaluate baseline 0 1 2 3 4; "
                      "scripts/cross-validate report; python3 scripts/cv/card.py"),
    }
    post = {}
    for name, v in summary["post_processing"].items():
        cand, variant = name.split(" ", 1)
        if cand == RECIPE:
            post[variant] = dict(v, flags=flags(variant))
    if post:
        out["post_processing"] = {
            "what": ("the same fold models' predictions cleaned with a `slicewise segment` option "
                     "(scripts/cv/post/VARIANT.flags), paired patient by patient with the plain "
                     "figures; chosen on these predictions, so kept only with the margin of the "
                     "addendum in docs/cv/README.md. A kept cleanup is recommended here, never "
                     "applied by default: the output without options stays the model's own"),
            "variants": post,
        }
        for name, v in post.items():
            worse, before = v["under_0_3"]
            if v["verdict"].startswith("kept") and worse > before:
                out["post_processing"]["caution"] = (
                    f"{name} ({v['flags']}) is kept by the addendum's rule, which counts the "
                    f"patients under 0.5, but it takes those under 0.3 from {before} to {worse}: "
                    "where the largest component is a false positive, the lesion is dropped. Use it "
                    "where a stray false positive costs more than a missed lesion")
    ens = summary["candidates"].get(ENSEMBLE)
    if ens:
        out["ensemble_like_this_model"] = {
            "what": (f"{ENSEMBLE}: per fold, the mean of a {RECIPE} model and a dark-core model "
                     "trained on the same folds (this model's structure; its second member "
                     "continued a run with the dark core instead of starting from scratch)"),
            "folds_done": ens["folds_done"],
            "volume_dice": ens["volume_dice"],
            "comparison": summary["comparisons"].get(ENSEMBLE),
        }
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "docs/cv"
    card_path = sys.argv[2] if len(sys.argv) > 2 else "models/lgg-flair-small.card.json"
    with open(os.path.join(root, "summary.json")) as f:
        summary = json.load(f)
    with open(card_path) as f:
        card = json.load(f)
    card["cross_validation"] = block(summary)
    with open(card_path + ".part", "w") as f:
        json.dump(card, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(card_path + ".part", card_path)
    print(json.dumps(card["cross_validation"]["volume_dice"], indent=1))


if __name__ == "__main__":
    main()
