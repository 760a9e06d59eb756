"""nibabel's view of a segmentation mask next to its input: shapes, affines, orientation.

    engine_geom_ref.py INPUT.nii.gz MASK.nii.gz
"""
import sys

import nibabel as nib
import numpy as np

from common import emit


def main():
    a = nib.load(sys.argv[1])
    m = nib.load(sys.argv[2])
    data = np.asanyarray(m.dataobj)
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
