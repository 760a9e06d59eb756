"""Reference side of the nnU-Net parity tests (issue 29): the real nnU-Net 2.8.1, run from the
nnU-Net venv (`scripts/setup --nnunet`, `.venv-nnunet/bin/python`). Every command prints one JSON
object on stdout.

usage:
  nnunet_ref.py predict MODEL_FOLDER OUT_DIR CASE... [--folds 0 1] [--disable-tta] [--npp 1] [--nps 1]
                [--checkpoint final|best] [--trainer-dir DIR]
      runs `nnUNetv2_predict -device cpu` on the cases; writes OUT_DIR/<case>.nii.gz; reports the
      wall time and the peak PSS of its whole process tree (sampled from /proc/*/smaps_rollup).
  nnunet_ref.py logits MODEL_FOLDER OUT_DIR CASE... [--folds ...] [--disable-tta] [--checkpoint ...]
      nnU-Net's final logits of each case, through nnUNetPredictor's own functions (preprocess ->
      predict_logits_from_preprocessed_data -> the export's resampling), before argmax, on the
      input's array grid [K, z, y, x] (SimpleITK order; NaN outside the crop box, where nnU-Net
      writes 0), as OUT_DIR/<case>.npy; also the segmentation by nnU-Net's label manager next to
      it (<case>.seg.npy), for a self-check against `predict`. One predictor for all cases.
  nnunet_ref.py respace IN OUT SX SY SZ
      writes IN's voxels with the voxel size SX SY SZ mm (the affine's columns rescaled): the same
      image as a scanner with another resolution would describe it (resampling test inputs).
  nnunet_ref.py crop IN OUT Z0 Z1
      writes slices Z0..Z1 (array axis k of the NIfTI) of IN, its affine moved accordingly.
  nnunet_ref.py compare MASK_A MASK_B [--logits LOGITS.npy] [--output-kind logits|regions]
      per-label Dice, share of identical voxels, and where the masks differ the top-two logit
      margin there (|l_a - l_b| of the two labels' scores; for regions |logit| of the regions that
      differ), from `logits`.

CASE is one file per channel joined by commas (`a_0000.nii.gz,a_0001.nii.gz`), or one file. The
case id is the first file's name without `.nii.gz` and without a trailing `_0000`.

MODEL_FOLDER is nnU-Net's `DatasetXXX_Name/Trainer__Plans__2d`; nnUNet_results points at a temporary
folder linking it (nnUNet_raw and nnUNet_preprocessed at empty temporary folders), so nothing of the
user's nnU-Net set-up is read. Custom trainers are found through nnUNet_extTrainer: --trainer-dir,
default tests/data/nnunet/trainers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from common import emit

HERE = Path(__file__).resolve().parent
DEFAULT_TRAINERS = HERE.parent / "data" / "nnunet" / "trainers"
CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth"}


def case_files(case: str) -> list[Path]:
    """The channel files of one CASE argument."""
    return [Path(p).resolve() for p in case.split(",")]


def case_id(files: list[Path]) -> str:
    """nnU-Net's case id of a case's first channel file."""
    name = files[0].name
    for end in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(end):
            name = name[: -len(end)]
            break
    return name[:-5] if len(name) > 5 and name[-5] == "_" and name[-4:].isdigit() else name


def nnunet_env(model: Path, tmp: Path, trainer_dir: Path) -> dict:
    """Environment for nnU-Net commands: its three folders in `tmp`, the model linked into results."""
    plans = json.loads((model / "plans.json").read_text())
    dataset = plans["dataset_name"]
    for d in ("raw", "preprocessed", f"results/{dataset}"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    link = tmp / "results" / dataset / model.name
    if not link.exists():
        link.symlink_to(model.resolve())
    env = dict(os.environ)
    env.update(nnUNet_raw=str(tmp / "raw"), nnUNet_preprocessed=str(tmp / "preprocessed"),
               nnUNet_results=str(tmp / "results"), nnUNet_extTrainer=str(trainer_dir.resolve()),
               nnUNet_compile="f")
    return env


def tree_pss_kb(root: int) -> int:
    """Sum of PSS (kB) over `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run_measured(cmd: list[str], env: dict) -> tuple[float, int, float]:
    """Runs a command; returns (wall seconds, peak process-tree PSS in kB, CPU seconds of the tree).

    CPU time is reported too because on a shared machine the wall time measures the neighbours.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_pss_kb(proc.pid))
            time.sleep(0.5)  # walking /proc costs CPU on a loaded machine

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    t.join()
    if proc.returncode != 0:
        sys.stderr.write(out[-4000:])
        raise SystemExit(f"nnUNetv2_predict failed with status {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, peak[0], cpu


def predict(a: argparse.Namespace) -> dict:
    """nnUNetv2_predict on the cases, CPU, measured."""
    model, out = Path(a.model), Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    plans = json.loads((model / "plans.json").read_text())
    dataset = json.loads((model / "dataset.json").read_text())
    trainer, plans_name, config = model.name.split("__")
    ending = dataset["file_ending"]
    with tempfile.TemporaryDirectory(prefix="nnunet-ref-") as t:
        tmp = Path(t)
        env = nnunet_env(model, tmp, Path(a.trainer_dir))
        inp = tmp / "input"
        inp.mkdir()
        ids = []
        for case in a.cases:
            files = case_files(case)
            cid = case_id(files)
            ids.append(cid)
            for c, f in enumerate(files):
                (inp / f"{cid}_{c:04d}{ending}").symlink_to(f)
        cmd = [str(Path(sys.executable).parent / "nnUNetv2_predict"), "-i", str(inp), "-o", str(out),
               "-d", plans["dataset_name"], "-tr", trainer, "-p", plans_name, "-c", config,
               "-f", *a.folds, "-chk", CHECKPOINTS[a.checkpoint], "-device", "cpu",
               "-npp", str(a.npp), "-nps", str(a.nps), "--disable_progress_bar"]
        if a.disable_tta:
            cmd.append("--disable_tta")
        wall, pss, cpu = run_measured(cmd, env)
    outputs = [str(out / f"{cid}{ending}") for cid in ids]
    missing = [o for o in outputs if not Path(o).exists()]
    if missing:
        raise SystemExit(f"nnUNetv2_predict wrote no {missing[0]}")
    return {"outputs": outputs, "wall_s": wall, "per_volume_s": wall / len(ids),
            "peak_pss_mb": pss / 1024, "cpu_s": cpu, "command": " ".join(cmd[1:])}


def predictor(model: Path, folds: list, checkpoint: str):
    """nnUNetPredictor on CPU with the model's folds (nnU-Net's own code from here on)."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    # nnU-Net narrates (device notes, its trainer search) on stdout, which carries this script's JSON.
    with contextlib.redirect_stdout(sys.stderr):
        p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                            perform_everything_on_device=False, device=torch.device("cpu"),
                            verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        p.initialize_from_trained_model_folder(str(model), [f if f == "all" else int(f) for f in folds],
                                               CHECKPOINTS[checkpoint])
    return p


def final_logits(p, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(logits [K, z, y, x] float32 with NaN outside the box, nnU-Net's segmentation) of one case."""
    from acvl_utils.cropping_and_padding.bounding_boxes import bounding_box_to_slice

    pm, cm, dj = p.plans_manager, p.configuration_manager, p.dataset_json
    pre = cm.preprocessor_class(verbose=False)
    data, _, props = pre.run_case([str(f) for f in files], None, pm, cm, dj)
    import torch

    logits = p.predict_logits_from_preprocessed_data(torch.from_numpy(data).float()).cpu()
    # The export's resampling, exactly as convert_predicted_logits_to_segmentation_with_correct_shape.
    spacing_t = [props["spacing"][i] for i in pm.transpose_forward]
    current = cm.spacing if len(cm.spacing) == len(props["shape_after_cropping_and_before_resampling"]) \
        else [spacing_t[0], *cm.spacing]
    logits = cm.resampling_fn_probabilities(logits, props["shape_after_cropping_and_before_resampling"],
                                            current, spacing_t)
    logits = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits)
    lm = pm.get_label_manager(dj)
    seg_box = np.asarray(lm.convert_logits_to_segmentation(logits))
    full = np.full((logits.shape[0], *props["shape_before_cropping"]), np.nan, np.float32)
    seg = np.zeros(props["shape_before_cropping"], np.uint8)
    box = bounding_box_to_slice(props["bbox_used_for_cropping"])
    full[(slice(None), *box)] = logits
    seg[box] = seg_box
    back = list(pm.transpose_backward)
    return full.transpose([0] + [i + 1 for i in back]), seg.transpose(back)


def logits(a: argparse.Namespace) -> dict:
    """Writes each case's final logits (and nnU-Net's mask from them) as .npy."""
    os.environ["nnUNet_extTrainer"] = str(Path(a.trainer_dir).resolve())
    p = predictor(Path(a.model), a.folds, a.checkpoint)
    p.use_mirroring = not a.disable_tta
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    start = time.perf_counter()
    for case in a.cases:
        files = case_files(case)
        with contextlib.redirect_stdout(sys.stderr):
            lg, seg = final_logits(p, files)
        cid = case_id(files)
        np.save(out / f"{cid}.npy", lg)
        np.save(out / f"{cid}.seg.npy", seg)
        written[cid] = {"logits": str(out / f"{cid}.npy"), "segmentation": str(out / f"{cid}.seg.npy"),
                        "shape": list(lg.shape)}
    return {"cases": written, "seconds": time.perf_counter() - start,
            "dtype_note": "fp16 values stored as float32"}


def respace(a: argparse.Namespace) -> dict:
    """IN's voxels with another voxel size (the affine's columns rescaled, origin kept)."""
    import nibabel as nib

    img = nib.load(a.input)
    aff = img.affine.copy()
    new = np.array([a.sx, a.sy, a.sz], dtype=np.float64)
    aff[:3, :3] = aff[:3, :3] / np.linalg.norm(aff[:3, :3], axis=0) * new
    out = nib.Nifti1Image(np.asarray(img.dataobj), aff)
    out.header.set_data_dtype(img.get_data_dtype())
    nib.save(out, a.output)
    return {"output": a.output, "zooms": [float(z) for z in out.header.get_zooms()[:3]]}


def crop(a: argparse.Namespace) -> dict:
    """Slices Z0..Z1 of IN (array axis k), the affine's origin moved to the first one kept."""
    import nibabel as nib

    img = nib.load(a.input)
    data = np.asarray(img.dataobj)[:, :, a.z0:a.z1]
    aff = img.affine.copy()
    aff[:3, 3] = aff[:3, :3] @ np.array([0.0, 0.0, a.z0]) + aff[:3, 3]
    out = nib.Nifti1Image(data, aff)
    out.header.set_data_dtype(img.get_data_dtype())
    nib.save(out, a.output)
    return {"output": a.output, "shape": list(data.shape)}


def read_mask(path: str) -> np.ndarray:
    """A mask file (NIfTI/NRRD/... via SimpleITK, [z, y, x]) or a .npy array."""
    if path.endswith(".npy"):
        return np.load(path)
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(path))


def margins(lg: np.ndarray, a: np.ndarray, b: np.ndarray, kind: str, where: np.ndarray) -> np.ndarray:
    """The logit margin deciding each differing voxel between the two masks' choices."""
    if kind == "regions":
        # The deciding quantity is the region logit's distance from 0; take the smallest over regions.
        return np.nanmin(np.abs(lg[:, where]), axis=0)
    idx = np.nonzero(where)
    la = lg[(a[where].astype(int), *idx)]
    lb = lg[(b[where].astype(int), *idx)]
    return np.abs(la - lb)


def compare(a: argparse.Namespace) -> dict:
    """Dice per label, identical share, differing voxels' logit margins."""
    ma, mb = read_mask(a.mask_a), read_mask(a.mask_b)
    if ma.shape != mb.shape:
        raise SystemExit(f"shapes differ: {ma.shape} vs {mb.shape}")
    labels = sorted((set(np.unique(ma).tolist()) | set(np.unique(mb).tolist())) - {0})
    dice = {}
    for v in labels:
        x, y = ma == v, mb == v
        s = int(x.sum() + y.sum())
        dice[str(int(v))] = 1.0 if s == 0 else 2.0 * int((x & y).sum()) / s
    diff = ma != mb
    out = {"shape": list(ma.shape), "voxels": int(ma.size), "differing": int(diff.sum()),
           "identical_share": float(1.0 - diff.mean()), "dice": dice}
    if a.logits and diff.any():
        lg = np.load(a.logits)
        m = margins(lg, ma, mb, a.output_kind, diff)
        out["margins"] = {"max": float(np.nanmax(m)), "median": float(np.nanmedian(m)),
                          "p95": float(np.nanpercentile(m, 95)), "n_nan": int(np.isnan(m).sum())}
        # |logit| where the voxel differs: fp16 carries ~2^-11 relative error per rounding.
        mag = np.nanmax(np.abs(lg[:, diff]), axis=0)
        out["margins"]["max_over_fp16_scale"] = float(np.nanmax(m / np.maximum(mag * 2.0 ** -11, 1e-3)))
    return out


def main(argv: list[str]) -> None:
    """Command dispatch; one JSON object on stdout."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def model_args(s):
        s.add_argument("--folds", nargs="+", default=["0"])
        s.add_argument("--checkpoint", choices=sorted(CHECKPOINTS), default="final")
        s.add_argument("--disable-tta", action="store_true")
        s.add_argument("--trainer-dir", default=str(DEFAULT_TRAINERS))

    s = sub.add_parser("predict")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("cases", nargs="+")
    s.add_argument("--npp", type=int, default=1)
    s.add_argument("--nps", type=int, default=1)
    model_args(s)
    s = sub.add_parser("logits")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("cases", nargs="+")
    model_args(s)
    s = sub.add_parser("respace")
    s.add_argument("input")
    s.add_argument("output")
    for k in ("sx", "sy", "sz"):
        s.add_argument(k, type=float)
    s = sub.add_parser("crop")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("z0", type=int)
    s.add_argument("z1", type=int)
    s = sub.add_parser("compare")
    s.add_argument("mask_a")
    s.add_argument("mask_b")
    s.add_argument("--logits")
    s.add_argument("--output-kind", choices=["logits", "regions"], default="logits")
    a = ap.parse_args(argv)
    emit({"predict": predict, "logits": logits, "compare": compare, "respace": respace,
          "crop": crop}[a.cmd](a))


if __name__ == "__main__":
    main(sys.argv[1:])
