"""Fixtures and independent checks for the CLI tests.

usage:
  cli_fixtures.py tiff-stack SRC.nii.gz OUT.tif   -> the NIfTI's voxels as a multi-page uint16 TIFF
  cli_fixtures.py count MASK                       -> non-zero voxels and shape [x, y, z] of a written mask
"""
import sys

import nibabel as nib
import numpy as np
import tifffile

from common import emit


def main():
    cmd = sys.argv[1]
    if cmd == "tiff-stack":
        img = nib.load(sys.argv[2])
        arr = np.asarray(img.dataobj).astype(np.float64)
        arr = arr.transpose(2, 1, 0)  # pages = z
        arr = (arr - arr.min()) / max(arr.max() - arr.min(), 1e-9) * 4000
        tifffile.imwrite(sys.argv[3], arr.astype(np.uint16))
        emit({"shape_zyx": list(arr.shape)})
    elif cmd == "count":
        p = sys.argv[2]
        if p.lower().endswith((".tif", ".tiff")):
            a = tifffile.imread(p)
            if a.ndim == 2:
                a = a[None]
            shape = [a.shape[2], a.shape[1], a.shape[0]]
        else:
            a = np.asarray(nib.load(p).dataobj)
            shape = list(a.shape[:3])
        emit({"voxels": int(np.count_nonzero(a)), "shape": shape})
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
