"""Builds the nnU-Net reference models under tests/data/nnunet/ (issue 29), step by step.

Run with the nnU-Net venv (`scripts/setup --nnunet`), from the repository root:

    .venv-nnunet/bin/python scripts/nnunet_reference.py convert-hippocampus WORK
    .venv-nnunet/bin/python scripts/nnunet_reference.py convert-ct WORK
    .venv-nnunet/bin/python scripts/nnunet_reference.py convert-brats WORK
    .venv-nnunet/bin/python scripts/nnunet_reference.py strip RESULTS_FOLDER OUT_FOLDER

WORK holds nnU-Net's three folders (WORK/raw, WORK/preprocessed, WORK/results); planning and
training are nnU-Net's own commands, listed in tests/data/nnunet/README.md. `strip` copies a
results folder with each fold's checkpoint reduced to what inference reads (no optimizer or
grad-scaler state), so the committed folder stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("SLICEWISE_SHARED_DATA", "/work/shared/data"))
REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "nnunet"

# Checkpoint keys nnUNetPredictor reads (predict_from_raw_data.py:80-93); the rest is training state.
KEEP_KEYS = ("network_weights", "init_args", "trainer_name", "inference_allowed_mirroring_axes",
             "current_epoch", "_best_ema")


def heldout_hippocampus() -> list[str]:
    """The volumes training never sees: the test split of the bundled hippocampus model."""
    text = (REFERENCE / "heldout.txt").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def write_dataset_json(folder: Path, channels: dict, labels: dict, n: int, **extra) -> None:
    """nnU-Net's dataset.json for a raw dataset folder."""
    info = {"channel_names": channels, "labels": labels, "numTraining": n,
            "file_ending": ".nii.gz", **extra}
    (folder / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")


def save_like(array: np.ndarray, ref, path: Path, dtype) -> None:
    """Writes `array` (SimpleITK z,y,x order) with the geometry of the SimpleITK image `ref`."""
    import SimpleITK as sitk
    img = sitk.GetImageFromArray(array.astype(dtype))
    img.CopyInformation(ref)
    sitk.WriteImage(img, str(path), useCompression=True)


def convert_hippocampus(work: Path) -> None:
    """Dataset004_Hippocampus from ../shared, without the held-out volumes."""
    import SimpleITK as sitk
    out = work / "raw" / "Dataset004_Hippocampus"
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    held = set(heldout_hippocampus())
    src = SHARED / "msd-hippocampus"
    cases = sorted(p.name[: -len(".nii.gz")] for p in (src / "images").glob("*.nii.gz"))
    train = [c for c in cases if c not in held]
    for case in train:
        shutil.copyfile(src / "images" / f"{case}.nii.gz", out / "imagesTr" / f"{case}_0000.nii.gz")
        # Two label files are float32; nnU-Net wants integer label maps.
        lab = sitk.ReadImage(str(src / "labels" / f"{case}.nii.gz"))
        save_like(np.rint(sitk.GetArrayFromImage(lab)), lab, out / "labelsTr" / f"{case}.nii.gz", np.uint8)
    write_dataset_json(out, {"0": "MRI"}, {"background": 0, "Anterior": 1, "Posterior": 2}, len(train))
    print(f"{len(train)} training cases, {len(held)} held out -> {out}")


def convert_ct(work: Path) -> None:
    """Dataset005_CTProbe: TotalSegmentator's small CT with three of its labels (CTNormalization)."""
    import SimpleITK as sitk
    out = work / "raw" / "Dataset005_CTProbe"
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    ref = SHARED / "totalseg-ref" / "tests" / "reference_files"
    img = sitk.ReadImage(str(ref / "example_ct_sm.nii.gz"))
    seg = sitk.ReadImage(str(ref / "example_seg.nii.gz"))
    s = sitk.GetArrayFromImage(seg)
    keep = [int(v) for v, _ in sorted(zip(*np.unique(s[s > 0], return_counts=True)), key=lambda t: -t[1])[:3]]
    lab = np.zeros(s.shape, np.uint8)
    for i, v in enumerate(keep, 1):
        lab[s == v] = i
    # fold "all" trains on every case; two copies keep nnU-Net's planner and sampler happy.
    for case in ("ctprobe_000", "ctprobe_001"):
        sitk.WriteImage(img, str(out / "imagesTr" / f"{case}_0000.nii.gz"), useCompression=True)
        save_like(lab, seg, out / "labelsTr" / f"{case}.nii.gz", np.uint8)
    labels = {"background": 0, **{f"totalseg_{v}": i for i, v in enumerate(keep, 1)}}
    write_dataset_json(out, {"0": "CT"}, labels, 2)
    print(f"CT probe labels (TotalSegmentator values) {keep} -> {out}")


def convert_brats(work: Path) -> None:
    """Dataset006_BraTSRegions: the BraTS case's FLAIR + T1c, three nested regions."""
    import SimpleITK as sitk
    out = work / "raw" / "Dataset006_BraTSRegions"
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    case_dir = SHARED / "brats2015" / "train" / "brats_2013_pat0005_1"
    seg = sitk.ReadImage(str(case_dir / "OTMultiClass.nii.gz"))
    lab = np.rint(sitk.GetArrayFromImage(seg))
    for case in ("brats_000", "brats_001"):
        for ch, name in enumerate(("Flair", "T1c")):
            shutil.copyfile(case_dir / f"{name}_subtrMeanDivStd.nii.gz",
                            out / "imagesTr" / f"{case}_{ch:04d}.nii.gz")
        save_like(lab, seg, out / "labelsTr" / f"{case}.nii.gz", np.uint8)
    labels = {"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing": [4]}
    write_dataset_json(out, {"0": "FLAIR", "1": "T1c"}, labels, 2, regions_class_order=[1, 2, 3])
    print(f"BraTS region probe -> {out}")


def strip(results: Path, out: Path) -> None:
    """Copies a results folder keeping only what nnUNetPredictor reads from each checkpoint."""
    import torch
    out.mkdir(parents=True, exist_ok=True)
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        shutil.copyfile(results / name, out / name)
    # Finished folds only, and only their final checkpoint (what nnUNetv2_predict uses by default).
    for fold in sorted(p for p in results.glob("fold_*") if (p / "checkpoint_final.pth").exists()):
        (out / fold.name).mkdir(exist_ok=True)
        state = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
        slim = {k: state[k] for k in KEEP_KEYS if k in state}
        torch.save(slim, out / fold.name / "checkpoint_final.pth")
        for log in fold.glob("training_log_*.txt"):
            shutil.copyfile(log, out / fold.name / log.name)
        summary = fold / "validation" / "summary.json"
        if summary.exists():
            shutil.copyfile(summary, out / fold.name / "validation_summary.json")
    print(f"stripped copy -> {out}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("convert-hippocampus", "convert-ct", "convert-brats"):
        sub.add_parser(name).add_argument("work", type=Path)
    s = sub.add_parser("strip")
    s.add_argument("results", type=Path)
    s.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "strip":
        strip(a.results, a.out)
    else:
        {"convert-hippocampus": convert_hippocampus, "convert-ct": convert_ct,
         "convert-brats": convert_brats}[a.cmd](a.work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
