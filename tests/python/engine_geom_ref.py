"""nibabel's view of a segmentation mask next to its input: shapes, affines, orientation.

    engine_geom_ref.py INPUT.nii.gz MASK.nii.gz [OUT.u8]

With OUT.u8, the mask's voxels as nibabel reads them are also dumped there in slicewise's
[z, y, x] order (nibabel's array is indexed [i, j, k] = [x, y, z]).
"""
import sys

import nibabel as nib
import numpy as np

from common import dump, emit


def main():
    a = nib.load(sys.argv[1])
    m = nib.load(sys.argv[2])
    data = np.asanyarray(m.dataobj)
    if len(sys.argv) > 3:
        dump(np.transpose(data, (2, 1, 0)), sys.argv[3], dtype="u1")
    emit({
        "input_shape": list(a.shape[:3]),
        "mask_shape": list(m.shape),
        "input_affine": a.affine,
        "mask_affine": m.affine,
        "mask_dtype": str(data.dtype),
        "mask_sum": int(data.astype(np.uint64).sum()),
        "orientation": "".join(nib.aff2axcodes(a.affine)),
    })


if __name__ == "__main__":
    main()
