"""Aggregates the cross-validation records docs/cv/CANDIDATE/fold-I.json into
docs/cv/summary.json and docs/cv/summary.md: per candidate the per-patient volume Dice over the
folds done (mean, median, worst, spread, share under 0.5, count under 0.3, each fold's mean),
and each candidate against the baseline on the folds both have, judged by the decision rule of
docs/cv/README.md.

    python3 scripts/cv/report.py [docs/cv] [OUT]

OUT (default: the records' folder) is where summary.json and summary.md go.
"""
import glob
import json
import os
import statistics
import sys

BASELINE = "baseline"
FOLDS = 5


def records(root):
    """{candidate: {fold: record}} of the plain records, and {(candidate, variant): {fold:
    record}} of the post-processing variants' (fold-I.VARIANT.json)."""
    plain, variants = {}, {}
    for path in sorted(glob.glob(os.path.join(root, "*", "fold-*.json"))):
        with open(path) as f:
            r = json.load(f)
        if "variant" in r:
            variants.setdefault((r["candidate"], r["variant"]), {})[r["fold"]] = r
        else:
            plain.setdefault(r["candidate"], {})[r["fold"]] = r
    return plain, variants


def r4(x):
    return None if x is None else round(x, 4)


def figures(folds, key="volume_dice"):
    dice = {n: p[key] for r in folds.values() for n, p in r["patients"].items()}
    if not dice:
        return None
    v = sorted(dice.values())
    worst = min(dice, key=dice.get)
    fold_means = {f: statistics.mean(p[key] for p in r["patients"].values())
                  for f, r in sorted(folds.items())}
    return {
        "patients": len(v),
        "mean": r4(statistics.mean(v)),
        "median": r4(statistics.median(v)),
        "worst": r4(dice[worst]),
        "worst_patient": worst,
        "std": r4(statistics.pstdev(v)),
        "under_0_5": sum(x < 0.5 for x in v),
        "share_under_0_5": r4(sum(x < 0.5 for x in v) / len(v)),
        "under_0_3": sum(x < 0.3 for x in v),
        "fold_means": {str(f): r4(m) for f, m in fold_means.items()},
        "fold_mean_spread": r4(statistics.pstdev(fold_means.values())) if len(fold_means) > 1 else None,
    }


def summary(cand, folds):
    brats = {str(f): r["external"]["plain"].get(
        "brats2015/brats_2013_pat0005_1 FLAIR (whole tumour)", {}).get("volume_dice")
        for f, r in sorted(folds.items())}
    return {
        "folds_done": sorted(folds),
        "volume_dice": figures(folds),
        "volume_dice_tta": figures(folds, "volume_dice_tta"),
        "brats_volume_dice_by_fold": brats,
        "training_minutes_by_fold": {str(f): r["training_minutes"] for f, r in sorted(folds.items())},
        "model_bytes": max(r["model_bytes"] for r in folds.values()),
    }


def dice_of(folds, fold_ids):
    """Per-patient volume Dice of the given folds, unrounded."""
    return {n: p["volume_dice"] for f in fold_ids for n, p in folds[f]["patients"].items()}


def mean_over(folds, fold_ids):
    return statistics.mean(dice_of(folds, fold_ids).values())


def paired(a, b):
    """A's per-patient Dice against B's on their common folds (which must have held out the same
    patients): the folds, the mean difference (unrounded), the folds where A's mean is ahead,
    the counts under 0.5 and under 0.3 of A and B, and A's mean."""
    common = sorted(set(a) & set(b))
    for f in common:
        if sorted(a[f]["held_out"]) != sorted(b[f]["held_out"]):
            sys.exit(f"fold {f}: the compared records held out different patients")
    if not common:
        return None
    x, y = dice_of(a, common), dice_of(b, common)
    return {
        "common_folds": common,
        "mean": statistics.mean(x.values()),
        "diff": statistics.mean(x.values()) - statistics.mean(y.values()),
        "ahead": sum(mean_over(a, [f]) > mean_over(b, [f]) for f in common),
        "under": [sum(v < 0.5 for v in x.values()), sum(v < 0.5 for v in y.values())],
        "under3": [sum(v < 0.3 for v in x.values()), sum(v < 0.3 for v in y.values())],
    }


def compare(cand, base):
    """The candidate against the baseline on their common folds, and the rule's verdict
    (docs/cv/README.md): rule 2 on all five folds; rule 3 on the first two common ones."""
    p = paired(cand, base)
    if p is None:
        return {"common_folds": [], "verdict": "no common fold yet"}
    common, diff, ahead, under = p["common_folds"], p["diff"], p["ahead"], p["under"]
    out = {"common_folds": common, "mean_difference": r4(diff), "folds_ahead": ahead,
           "under_0_5": under, "under_0_3": p["under3"]}
    screen = mean_over(cand, common[:2]) - mean_over(base, common[:2]) if len(common) >= 2 else 0
    if len(common) == FOLDS:
        keep = diff >= 0.01 and under[0] <= under[1] and ahead >= 3
        out["verdict"] = "kept (rule 2)" if keep else "not kept (rule 2)"
    elif screen < -0.02:
        out["verdict"] = "screened out (rule 3)"
    else:
        out["verdict"] = f"undecided ({len(common)} of {FOLDS} folds)"
    return out


def reference(name, recs):
    """What a candidate is judged against: the baseline; for a per-fold ensemble A+B (docs/cv
    addendum), the better of its members on their common folds."""
    members = name.split("+")
    if len(members) < 2:
        return BASELINE
    def member_mean(m):
        p = paired(recs[m], recs[name]) if m in recs else None
        return -1 if p is None else p["mean"]
    return max(members, key=member_mean)


def compare_variant(var, plain):
    """A post-processing variant against its candidate's plain score on the same fold models,
    and the addendum's verdict: kept only with mean >= +0.005 over all 5 folds, ahead in >= 4
    fold means and no more patients under 0.5 (it is chosen on these predictions)."""
    p = paired(var, plain)
    if p is None:
        return {"common_folds": [], "verdict": "no common fold yet"}
    for f in p["common_folds"]:
        if var[f]["model_sha256"] != plain[f]["model_sha256"]:
            sys.exit(f"fold {f}: the variant {var[f]['variant']} scored another model than the "
                     "plain record (run scripts/cross-validate post again after re-exporting the fold)")
    if len(p["common_folds"]) < FOLDS:
        verdict = f"undecided ({len(p['common_folds'])} of {FOLDS} folds)"
    elif p["diff"] >= 0.005 and p["ahead"] >= 4 and p["under"][0] <= p["under"][1]:
        verdict = "kept (addendum; chosen on these predictions)"
    else:
        verdict = "not kept (addendum)"
    return {"common_folds": p["common_folds"], "mean": r4(p["mean"]),
            "mean_difference": r4(p["diff"]), "folds_ahead": p["ahead"],
            "under_0_5": p["under"], "under_0_3": p["under3"], "verdict": verdict}


def markdown(s):
    lines = ["# Cross-validation summary (generated by scripts/cv/report.py)", "",
             "Per-patient volume Dice of the fold model that held each patient out (no TTA; "
             "`tta` with the contract's flips). Rule: docs/cv/README.md.", "",
             "| candidate | folds | patients | mean | median | worst | sd | < 0.5 | < 0.3 | fold means | mean (tta) | BraTS by fold |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in s["candidates"].items():
        f, t = c["volume_dice"], c["volume_dice_tta"]
        lines.append(
            f"| {name} | {','.join(map(str, c['folds_done']))} | {f['patients']} | {f['mean']} | "
            f"{f['median']} | {f['worst']} ({f['worst_patient']}) | {f['std']} | "
            f"{f['under_0_5']} ({f['share_under_0_5']:.0%}) | {f['under_0_3']} | "
            f"{', '.join(f'{k}: {v}' for k, v in f['fold_means'].items())} | {t['mean']} | "
            f"{', '.join(f'{k}: {v}' for k, v in c['brats_volume_dice_by_fold'].items())} |")
    if s["comparisons"]:
        lines += ["", "| candidate | against | common folds | mean difference | folds ahead | < 0.5 (candidate, reference) | < 0.3 | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, c in s["comparisons"].items():
            lines.append(f"| {name} | {c['against']} | {c['common_folds']} | {c.get('mean_difference')} | "
                         f"{c.get('folds_ahead')} | {c.get('under_0_5')} | {c.get('under_0_3')} | {c['verdict']} |")
    if s["post_processing"]:
        lines += ["", "| post-processing (paired with the same models, plain) | common folds | mean | mean difference | folds ahead | < 0.5 (variant, plain) | < 0.3 | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, c in s["post_processing"].items():
            lines.append(f"| {name} | {c['common_folds']} | {c.get('mean')} | "
                         f"{c.get('mean_difference')} | {c.get('folds_ahead')} | "
                         f"{c.get('under_0_5')} | {c.get('under_0_3')} | {c['verdict']} |")
    return "\n".join(lines) + "\n"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "docs/cv"
    out = sys.argv[2] if len(sys.argv) > 2 else root
    recs, variants = records(root)
    s = {"candidates": {n: summary(n, f) for n, f in sorted(recs.items())},
         "comparisons": {},
         "post_processing": {f"{c} {v}": compare_variant(f, recs[c])
                             for (c, v), f in sorted(variants.items()) if c in recs}}
    for n, f in sorted(recs.items()):
        ref = reference(n, recs)
        if n != BASELINE and ref in recs:
            s["comparisons"][n] = dict(compare(f, recs[ref]), against=ref)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(markdown(s))
    print(markdown(s))


if __name__ == "__main__":
    main()
