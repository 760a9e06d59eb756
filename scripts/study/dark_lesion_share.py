#!/usr/bin/env python3
"""How much of each lesion is darker than the patient's normal tissue on FLAIR: the 91 LGG
patients of DATA/lgg and DATA/lgg-flair against the BraTS 2015 case, and (with --pred) how much of
each BraTS label a predicted mask finds. The study behind the trainer's `--dark-core`
(models/README.md, "The failure studied").

A lesion voxel counts as dark when its intensity, measured from the volume's minimum, is below the
median of the normal tissue (LGG: voxels above 10% of the 99th percentile, outside the lesion;
BraTS: the brain mask, outside the tumour); "half" when below half of that.

    .venv/bin/python scripts/study/dark_lesion_share.py ../shared/data [--pred BRATS_MASK.nii.gz]
"""
import argparse
import json
import os
import re

import nibabel as nib
import numpy as np
import tifffile

BRATS = "brats2015/train/brats_2013_pat0005_1"


def lgg_volume(folder):
    """FLAIR (channel 1 of RGB slices, or the grey slice) and mask of one LGG patient folder."""
    names = [f for f in os.listdir(folder) if f.endswith(".tif") and not f.endswith("_mask.tif")]
    names.sort(key=lambda f: int(re.findall(r"_(\d+)\.tif$", f)[0]))
    image, mask = [], []
    for f in names:
        a = tifffile.imread(os.path.join(folder, f))
        image.append((a[..., 1] if a.ndim == 3 else a).astype(np.float32))
        mask.append(tifffile.imread(os.path.join(folder, f[:-4] + "_mask.tif")) > 0)
    return np.stack(image), np.stack(mask)


def dark_shares(image, lesion, tissue):
    low = image.min()
    median = np.median(image[tissue & ~lesion])
    ratio = (image[lesion] - low) / (median - low)
    return float((ratio < 1.0).mean()), float((ratio < 0.5).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--pred", help="a predicted mask of the BraTS case's FLAIR")
    a = ap.parse_args()
    shares = {}
    for sub in ("lgg", "lgg-flair"):
        root = os.path.join(a.data, sub)
        for p in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, p)):
                image, lesion = lgg_volume(os.path.join(root, p))
                if lesion.any():
                    tissue = image > image.min() + 0.1 * (np.percentile(image, 99) - image.min())
                    shares[p] = dark_shares(image, lesion, tissue)
    dark = np.array([v[0] for v in shares.values()])
    case = os.path.join(a.data, BRATS)
    image = nib.load(os.path.join(case, "Flair_subtrMeanDivStd.nii.gz")).get_fdata()
    labels = nib.load(os.path.join(case, "OTMultiClass.nii.gz")).get_fdata()
    brain = nib.load(os.path.join(case, "brainmask.nii.gz")).get_fdata() > 0
    out = {
        "lgg_patients": len(dark),
        "lgg_dark_share": {"median": round(float(np.median(dark)), 4), "mean": round(float(dark.mean()), 4),
                           "max": round(float(dark.max()), 4), "patients_over_0.10": int((dark > 0.1).sum())},
        "brats_dark_share": [round(v, 4) for v in dark_shares(image, labels > 0, brain)],
        "per_patient": {p: round(v[0], 4) for p, v in shares.items()},
    }
    if a.pred:
        pred = nib.load(a.pred).get_fdata() > 0
        truth = labels > 0
        tp = float((pred & truth).sum())
        out["brats_prediction"] = {
            "dice": round(2 * tp / (pred.sum() + truth.sum()), 4),
            "precision": round(tp / max(pred.sum(), 1), 4),
            "recall": round(tp / truth.sum(), 4),
            "recall_by_label": {str(l): round(float(pred[labels == l].mean()), 4) for l in (1, 2, 3, 4)},
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
