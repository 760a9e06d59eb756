"""Per-label voxel counts of a NIfTI label mask, read by nibabel.

usage: mask_labels.py MASK.nii[.gz] [OUT.u8]

Prints {"counts": {value: voxels} for every non-zero value, "voxel_ml": the product of the
header's zooms / 1000, "shape": [x, y, z]}; with OUT.u8, also writes the labels there as raw
uint8 in [z, y, x] C order (x fastest), the order of libslicewise's mask buffer.
"""
import sys

import nibabel as nib
import numpy as np

from common import dump, emit


def main():
    img = nib.load(sys.argv[1])
    data = np.asarray(img.dataobj)
    if not np.array_equal(data, np.rint(data)) or data.min() < 0 or data.max() > 255:
        raise SystemExit(f"{sys.argv[1]}: not a uint8 label mask")
    data = data.astype(np.uint8).reshape(data.shape[:3])
    values, counts = np.unique(data, return_counts=True)
    if len(sys.argv) > 2:
        dump(data.transpose(2, 1, 0), sys.argv[2], dtype="u1")
    emit({
        "counts": {str(int(v)): int(n) for v, n in zip(values, counts) if v != 0},
        "voxel_ml": float(np.prod(img.header.get_zooms()[:3])) / 1000.0,
        "shape": list(data.shape),
    })


if __name__ == "__main__":
    main()
