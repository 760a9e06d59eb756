"""Reference for multi-channel input (one volume file per channel), read with nibabel alone.

    channels_ref.py stack OUTDIR FILE...
        -> OUTDIR/vol.f32: the files' voxels stacked as [c, z, y, x] float32 (each file's
           nibabel array (i, j, k) transposed), the input engine_ref.py's `pipeline` takes
    channels_ref.py shift SRC DST MM
        -> DST: SRC with its affine's origin moved by MM mm along x (voxels unchanged)
    channels_ref.py compare MASK LABELS_U8 BACK_F32 S,K,ROWS,COLS
        the mask file (nibabel, (i, j, k)) against the reference labels ([z, y, x]); voxels that
        differ must be ones whose reference top-two probabilities lie within 1e-4
"""
import os
import sys

import nibabel as nib
import numpy as np

from common import dump, emit


def stack(out, files):
    vols = [np.asarray(nib.load(f).dataobj, dtype=np.float32).transpose(2, 1, 0) for f in files]
    vol = np.stack(vols)
    dump(vol, os.path.join(out, "vol.f32"))
    emit({"shape": list(vol.shape), "affine": nib.load(files[0]).affine.tolist()})


def shift(src, dst, mm):
    img = nib.load(src)
    affine = img.affine.copy()
    affine[0, 3] += float(mm)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine, img.header), dst)
    emit({"origin": affine[:3, 3].tolist()})


def compare(mask_path, labels, back, shape):
    s, k, rows, cols = [int(t) for t in shape.split(",")]
    img = nib.load(mask_path)
    mask = np.asarray(img.dataobj).transpose(2, 1, 0)
    ref = np.fromfile(labels, dtype=np.uint8).reshape(mask.shape)
    probs = np.fromfile(back, dtype="<f4").reshape(s, k, rows, cols)
    top2 = np.sort(probs, axis=1)[:, -2:]
    ambiguous = (top2[:, 1] - top2[:, 0]) < 1e-4
    differ = mask != ref
    emit({"voxels": int(mask.size), "differ": int(differ.sum()),
          "differ_unambiguous": int((differ & ~ambiguous).sum()),
          "counts": {int(v): int(n) for v, n in zip(*np.unique(mask, return_counts=True))},
          "affine": img.affine.tolist()})


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "stack":
        stack(args[0], args[1:])
    elif cmd == "shift":
        shift(*args)
    elif cmd == "compare":
        compare(*args)
    else:
        raise SystemExit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
