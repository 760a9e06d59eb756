"""Independent reference for `slicewise evaluate` (numpy/scipy, MONAI-style formulas).

usage:
  metrics_ref.py eval PRED TRUTH binary|labels   -> per-label volume and per-slice metrics
  metrics_ref.py perturb-lgg PATIENT_DIR OUT.nii.gz   -> LGG truth shifted/eroded, as NIfTI
  metrics_ref.py perturb-nifti LABELS.nii.gz OUT.nii.gz -> per-label eroded + shifted copy
  metrics_ref.py cubes|plates OUT_A.nii.gz OUT_B.nii.gz K -> two cubes / one-voxel-thick plates
                                                          offset by K slices, spacing 0.7×0.9×2.5

Masks: NIfTI (nibabel; array transposed to [z, y, x]) or an LGG patient folder (tifffile; the
`<P>_<n>_mask.tif` slices, sorted by n). Surface = foreground & ~binary_erosion(6-connectivity,
border_value=0); distances from scipy.ndimage.distance_transform_edt(~surface, sampling=spacing).
"""
import os
import re
import sys

import nibabel as nib
import numpy as np
import tifffile
from scipy import ndimage

from common import emit


def read(path):
    """Returns (values [z, y, x] float64, spacing [x, y, z])."""
    if os.path.isdir(path):
        files = []
        for f in os.listdir(path):
            m = re.match(r"^(.*)_(\d+)_mask\.tif$", f)
            if m:
                files.append((int(m.group(2)), os.path.join(path, f)))
        files.sort()
        arr = np.stack([tifffile.imread(p) for _, p in files]).astype(np.float64)
        return arr, [1.0, 1.0, 1.0]
    img = nib.load(path)
    arr = np.asarray(img.dataobj).astype(np.float64)
    arr = arr.reshape(arr.shape[:3]).transpose(2, 1, 0)
    return arr, [float(z) for z in img.header.get_zooms()[:3]]


def surface(mask, structure):
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def ratio(a, b):
    return 0.0 if b == 0 else a / b


def metrics(p, t, sampling, structure):
    tp = int(np.sum(p & t)); fp = int(np.sum(p & ~t)); fn = int(np.sum(~p & t)); tn = int(np.sum(~p & ~t))
    if tp + fp + fn == 0:
        return dict(tp=tp, fp=fp, fn_=fn, tn=tn, dice=1.0, iou=1.0, precision=1.0, recall=1.0,
                    accuracy=tn / (tp + fp + fn + tn), hd95_mm=0.0, assd_mm=0.0, both_empty=True)
    out = dict(tp=tp, fp=fp, fn_=fn, tn=tn, dice=ratio(2 * tp, 2 * tp + fp + fn),
               iou=ratio(tp, tp + fp + fn), precision=ratio(tp, tp + fp), recall=ratio(tp, tp + fn),
               accuracy=(tp + tn) / (tp + fp + fn + tn), hd95_mm=None, assd_mm=None, both_empty=False)
    if p.any() and t.any():
        sp, st = surface(p, structure), surface(t, structure)
        d_pt = ndimage.distance_transform_edt(~st, sampling=sampling)[sp]
        d_tp = ndimage.distance_transform_edt(~sp, sampling=sampling)[st]
        out["hd95_mm"] = float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))
        out["assd_mm"] = float(np.concatenate([d_pt, d_tp]).mean())
    return out


def evaluate(pred, truth, mode):
    pv, _ = read(pred)
    tv, spacing = read(truth)
    assert pv.shape == tv.shape, (pv.shape, tv.shape)
    if mode == "binary":
        labels = [0]
    else:
        labels = sorted(set(np.unique(pv[pv > 0]).astype(int)) | set(np.unique(tv[tv > 0]).astype(int)))
    zyx = [spacing[2], spacing[1], spacing[0]]
    s3 = ndimage.generate_binary_structure(3, 1)
    s2 = ndimage.generate_binary_structure(2, 1)
    res = {}
    for l in labels:
        p = pv > 0 if l == 0 else pv == l
        t = tv > 0 if l == 0 else tv == l
        vol = metrics(p, t, zyx, s3)
        slices = [metrics(p[z], t[z], zyx[1:], s2) for z in range(p.shape[0])]
        res[str(l)] = {"volume": vol, "slices": slices}
    emit({"labels": res, "spacing": spacing, "shape_zyx": list(pv.shape)})


def save(arr_zyx, affine, path, dtype=np.uint8):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr_zyx.transpose(2, 1, 0)).astype(dtype), affine), path)


def main():
    cmd = sys.argv[1]
    if cmd == "eval":
        evaluate(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "perturb-lgg":
        t, _ = read(sys.argv[2])
        p = np.roll(t > 0, shift=(1, 3, -2), axis=(0, 1, 2))
        p = ndimage.binary_erosion(p, iterations=1) | (np.roll(t > 0, 5, axis=2) & (np.arange(t.shape[0]) % 4 == 0)[:, None, None])
        # identity LPS geometry (what an LGG folder has) as a RAS affine
        save(p.astype(np.uint8), np.diag([-1.0, -1.0, 1.0, 1.0]), sys.argv[3])
        emit({"voxels": int(p.sum())})
    elif cmd == "perturb-nifti":
        img = nib.load(sys.argv[2])
        t = np.asarray(img.dataobj).astype(np.int64).transpose(2, 1, 0)
        p = np.zeros_like(t)
        for l in np.unique(t[t > 0]):
            p[ndimage.binary_erosion(t == l)] = l
        p = np.roll(p, 1, axis=1)
        out = nib.Nifti1Image(np.ascontiguousarray(p.transpose(2, 1, 0)).astype(np.uint8), img.affine, img.header)
        out.set_data_dtype(np.uint8)
        nib.save(out, sys.argv[3])
        emit({"voxels": int((p > 0).sum())})
    elif cmd in ("cubes", "plates"):
        k = int(sys.argv[4])
        a = np.zeros((20, 16, 14), np.uint8)
        b = np.zeros_like(a)
        depth = 6 if cmd == "cubes" else 1
        a[3:3 + depth, 4:10, 3:9] = 1
        b[3 + k:3 + k + depth, 4:10, 3:9] = 1
        aff = np.diag([0.7, 0.9, 2.5, 1.0])
        save(a, aff, sys.argv[2])
        save(b, aff, sys.argv[3])
        emit({"ok": True})
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
