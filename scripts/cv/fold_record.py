"""One cross-validation fold's record, committed as docs/cv/CANDIDATE/fold-I.json: the held-out
patients' scores (from scripts/evaluate-model, no TTA and with --tta), the run's recipe and cost.

    python3 scripts/cv/fold_record.py RUN_DIR CANDIDATE FOLD > docs/cv/CANDIDATE/fold-I.json
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


def main():
    run, candidate, fold = sys.argv[1], sys.argv[2], int(sys.argv[3])
    split = load(os.path.join(run, "split.json"))
    cfg = load(os.path.join(run, "config.json"))
    plain = load(os.path.join(run, "heldout.json"))
    tta = load(os.path.join(run, "heldout-tta.json"))
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    folder = {}
    for root in [cfg["data"]["root"]] + cfg["data"]["extra_roots"]:
        for name in split["test"]:
            if os.path.isdir(os.path.join(root, name)):
                folder[name] = os.path.basename(os.path.normpath(root))
    patients = {}
    for name, p in plain["test"]["patients"].items():
        patients[name] = {
            "folder": folder.get(name),
            "volume_dice": p["volume_dice"],
            "volume_dice_tta": tta["test"]["patients"][name]["volume_dice"],
            "predicted_over_truth": p["predicted_over_truth"],
            "hd95_mm": p["hd95_mm"],
            "tumour_slice_dice": p["tumour_slice_dice"],
        }
    with open(os.path.join(run, "model.onnx"), "rb") as f:
        model = f.read()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(json.dumps({
        "candidate": candidate,
        "fold": fold,
        "folds": cfg["data"]["folds"],
        "held_out": sorted(split["test"]),
        "trained_on": len(split["train"]),
        "patients": patients,
        "external": {"plain": plain["external"], "tta": tta["external"]},
        "epochs": len(rows),
        "training_minutes": round(sum(float(r["seconds"]) for r in rows) / 60, 1),
        "model_bytes": len(model),
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "commit": commit,
        "config": cfg,
    }, indent=1))


if __name__ == "__main__":
    main()
