"""One cross-validation fold's record, committed as docs/cv/CANDIDATE/fold-I.json: the held-out
patients' scores (from scripts/evaluate-model, no TTA and with --tta), the run's recipe and cost.
A per-fold ensemble's run folder (scripts/cross-validate ensemble) holds members.json instead of a
training run: its recipe and cost are its members'. With --variant, the record of a
post-processing variant (scripts/cross-validate post): the same patients scored with its flags.

    python3 scripts/cv/fold_record.py RUN_DIR CANDIDATE FOLD > docs/cv/CANDIDATE/fold-I.json
    python3 scripts/cv/fold_record.py RUN_DIR CANDIDATE FOLD --variant NAME FLAGS... \
        > docs/cv/CANDIDATE/fold-I.NAME.json
"""
import csv
import hashlib
import json
import os
import subprocess
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def training(run):
    """The run's config and, per trained model, its epochs' rows of metrics.csv: one model, or
    an ensemble's members (members.json), whose configs it lists."""
    members = os.path.join(run, "members.json")
    if not os.path.exists(members):
        with open(os.path.join(run, "metrics.csv")) as f:
            return load(os.path.join(run, "config.json")), [list(csv.DictReader(f))]
    parts = [training(m) for m in load(members)]
    return {"members": [c for c, _ in parts], "data": parts[0][0]["data"]}, \
        [rows for _, runs in parts for rows in runs]


def folders(cfg, names):
    """Which data folder (lgg, lgg-flair) holds each patient."""
    out = {}
    for root in [cfg["data"]["root"]] + cfg["data"]["extra_roots"]:
        for name in names:
            if os.path.isdir(os.path.join(root, name)):
                out[name] = os.path.basename(os.path.normpath(root))
    return out


def main():
    run, candidate, fold = sys.argv[1], sys.argv[2], int(sys.argv[3])
    variant = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--variant" else None
    split = load(os.path.join(run, "split.json"))
    cfg, runs = training(run)
    folder = folders(cfg, split["test"])
    plain = load(os.path.join(run, f"heldout-{variant}.json" if variant else "heldout.json"))
    tta = None if variant else load(os.path.join(run, "heldout-tta.json"))
    patients = {}
    for name, p in plain["test"]["patients"].items():
        patients[name] = {
            "folder": folder.get(name),
            "volume_dice": p["volume_dice"],
            "predicted_over_truth": p["predicted_over_truth"],
            "hd95_mm": p["hd95_mm"],
            "tumour_slice_dice": p["tumour_slice_dice"],
        }
        if tta:
            patients[name]["volume_dice_tta"] = tta["test"]["patients"][name]["volume_dice"]
    with open(os.path.join(run, "model.onnx"), "rb") as f:
        model = f.read()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    record = {
        "candidate": candidate,
        "fold": fold,
        "folds": cfg["data"]["folds"],
        "held_out": sorted(split["test"]),
        "trained_on": len(split["train"]),
        "patients": patients,
    }
    if variant:
        record.update({"variant": variant, "flags": sys.argv[6:], "external": plain["external"]})
    else:
        record.update({
            "external": {"plain": plain["external"], "tta": tta["external"]},
            "epochs": len(runs[0]) if len(runs) == 1 else [len(r) for r in runs],
            "training_minutes": round(sum(float(r["seconds"]) for rs in runs for r in rs) / 60, 1),
            "model_bytes": len(model),
            "config": cfg,
        })
    record.update({"model_sha256": hashlib.sha256(model).hexdigest(), "commit": commit})
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
