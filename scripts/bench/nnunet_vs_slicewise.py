#!/usr/bin/env python3
"""Side-by-side benchmark (not a timed test): nnUNetv2_predict and `slicewise segment` on the same
nnU-Net 2d model and the same volumes, on CPU, with and without test-time mirroring.

    .venv-nnunet/bin/python scripts/bench/nnunet_vs_slicewise.py RESULTS_FOLDER MODEL.onnx \
        IMAGES_DIR [--folds 0] [--bin target/release/slicewise] [--runs nnunet,nnunet-1,slicewise]

RESULTS_FOLDER is nnU-Net's `DatasetXXX/Trainer__Plans__2d`, MODEL.onnx what
`python -m slicewise.nnunet export` made of it with the same folds, IMAGES_DIR a folder of
`CASE_0000.nii.gz` files. Each tool runs once per configuration over the whole folder (as a user
runs it; nnUNetv2_predict's 13-24 s start-up is part of its figure), and reports wall seconds per
volume and the peak memory of its whole process tree (the sum of PSS over the process and its
descendants, sampled every 50 ms: nnUNetv2_predict spreads over worker processes). nnU-Net
runs at its defaults (`-npp 3 -nps 3`) and with `-npp 1 -nps 1`, always `-device cpu` with the
folds given. slicewise's in-model share comes from its report's timings. The masks of the two are
compared (per-label Dice, identical voxels) so that a speed figure never hides a different answer.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def children_map():
    """{ppid: [pid, ...]} over every process now running."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_mib(root):
    kids = children_map()
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        total += pss_kib(pid)
        todo.extend(kids.get(pid, []))
    return total / 1024.0


def measured(cmd, env):
    """Runs cmd; returns (wall seconds, peak tree PSS in MiB). Fails loudly on a non-zero exit."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while p.poll() is None:
        peak = max(peak, tree_pss_mib(p.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{err[-3000:]}")
    return wall, peak


def nnunet_env(results_folder, scratch):
    env = dict(os.environ)
    # nnU-Net insists on these three; predicting from a model folder reads none of them.
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        env.setdefault(k, os.path.join(scratch, k))
    ext = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(results_folder))), "trainers")
    if os.path.isdir(ext):
        env.setdefault("nnUNet_extTrainer", ext)
    return env


def run_nnunet(args, tta, workers, out, scratch):
    exe = os.path.join(os.path.dirname(sys.executable), "nnUNetv2_predict_from_modelfolder")
    cmd = [exe, "-i", args.images, "-o", out, "-m", args.results, "-f", *args.folds,
           "-device", "cpu", "-npp", str(workers), "-nps", str(workers), "--disable_progress_bar"]
    if not tta:
        cmd.append("--disable_tta")
    return measured(cmd, nnunet_env(args.results, scratch))


def run_slicewise(args, tta, out):
    cmd = [args.bin, "segment", "--model", args.model, "--device", "cpu", "--out", out,
           "--report", os.path.join(out, "report.json"), "--batch-size", str(args.batch_size), *sorted(glob.glob(os.path.join(args.images, "*.nii.gz")))]
    if tta:
        cmd.append("--tta")
    wall, peak = measured(cmd, dict(os.environ))
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    jobs = report.get("jobs", [])
    model_s = sum((j.get("timings") or {}).get("inference", 0.0) for j in jobs)
    return wall, peak, model_s


def case_of(path):
    name = os.path.basename(path)
    for suffix in ("_0000.nii.gz", ".nii.gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def compare(a_dir, b_dir):
    """Mean per-label Dice and the share of identical voxels between two folders of masks."""
    dices, same, total = [], 0, 0
    for a in sorted(glob.glob(os.path.join(a_dir, "*.nii.gz"))):
        case = case_of(a)
        b = [p for p in glob.glob(os.path.join(b_dir, "*.nii.gz")) if case_of(p).startswith(case)]
        if not b:
            continue
        x = np.asarray(nib.load(a).dataobj).astype(np.int64)
        y = np.asarray(nib.load(b[0]).dataobj).astype(np.int64)
        same += int((x == y).sum())
        total += x.size
        for lab in sorted(set(np.unique(x)) | set(np.unique(y)) - {0}):
            s = int((x == lab).sum() + (y == lab).sum())
            dices.append(1.0 if s == 0 else 2.0 * int(((x == lab) & (y == lab)).sum()) / s)
    return (float(np.mean(dices)) if dices else float("nan")), (same / total if total else float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("model")
    ap.add_argument("images")
    ap.add_argument("--folds", nargs="+", default=["0"])
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/slicewise"))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--runs", default="nnunet,nnunet-1,slicewise")
    args = ap.parse_args()
    n = len(glob.glob(os.path.join(args.images, "*.nii.gz")))
    runs = args.runs.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for tta in (True, False):
            outs = {}
            if "nnunet" in runs:
                outs["nnunet"] = os.path.join(scratch, f"nn-{tta}")
                wall, peak = run_nnunet(args, tta, 3, outs["nnunet"], scratch)
                rows.append(("nnUNetv2_predict (-npp 3 -nps 3)", tta, wall / n, peak, None))
            if "nnunet-1" in runs:
                out = os.path.join(scratch, f"nn1-{tta}")
                wall, peak = run_nnunet(args, tta, 1, out, scratch)
                outs.setdefault("nnunet", out)
                rows.append(("nnUNetv2_predict (-npp 1 -nps 1)", tta, wall / n, peak, None))
            if "slicewise" in runs:
                outs["slicewise"] = os.path.join(scratch, f"sw-{tta}")
                wall, peak, model_s = run_slicewise(args, tta, outs["slicewise"])
                rows.append(("slicewise segment", tta, wall / n, peak, model_s / wall))
            if "nnunet" in outs and "slicewise" in outs:
                dice, same = compare(outs["nnunet"], outs["slicewise"])
                print(f"TTA {'on' if tta else 'off'}: masks mean per-label Dice {dice:.4f}, "
                      f"identical voxels {100 * same:.3f} %", flush=True)
    print(f"\n{n} volumes, CPU ({os.cpu_count()} cores)")
    print(f"{'tool':34} {'TTA':4} {'s/volume':>9} {'peak PSS MiB':>13} {'in model':>9}")
    for tool, tta, per, peak, share in rows:
        s = "" if share is None else f"{100 * share:.0f} %"
        print(f"{tool:34} {'on' if tta else 'off':4} {per:9.3f} {peak:13.0f} {s:>9}")


if __name__ == "__main__":
    main()
