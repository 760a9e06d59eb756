"""nibabel's view of NIfTI files: for each input, dumps the scaled voxels (get_fdata, as f32) in
slicewise's [c, z, y, x] order to OUTDIR/<i>.f32 and reports shape, dtype, affines and codes.

usage: nifti_ref.py OUTDIR FILE...
A file nibabel cannot read is reported with "error" instead of data.
"""
import os
import sys

import nibabel as nib
import numpy as np

from common import dump, emit


def as_czyx(img):
    hdr = img.header
    raw = np.asanyarray(img.dataobj)
    if raw.dtype.names:  # RGB24 / RGBA32: fields become channels
        arr = np.stack([raw[n].astype(np.float64) for n in raw.dtype.names], axis=-1)
    else:
        arr = img.get_fdata()
    shape = arr.shape
    if arr.ndim < 3:
        arr = arr.reshape(shape + (1,) * (3 - arr.ndim))
    arr = arr.reshape(arr.shape[:3] + (-1,))  # x, y, z, c
    return np.transpose(arr, (3, 2, 1, 0)), raw.dtype, list(shape)


def main():
    out = sys.argv[1]
    results = []
    for i, path in enumerate(sys.argv[2:]):
        try:
            img = nib.load(path)
            data, dtype, shape = as_czyx(img)
            hdr = img.header
            dump(data, os.path.join(out, f"{i}.f32"))
            results.append({
                "path": path,
                "data": os.path.join(out, f"{i}.f32"),
                "czyx": list(data.shape),
                "nib_shape": shape,
                "dtype": np.dtype(hdr.get_data_dtype()).str if not dtype.names else "rgb",
                "affine": img.affine,
                "sform": hdr.get_sform(),
                "qform": hdr.get_qform(),
                "sform_code": int(hdr["sform_code"]),
                "qform_code": int(hdr["qform_code"]),
                "slope_inter": [float(img.dataobj.slope), float(img.dataobj.inter)],
                "pixdim0": float(hdr["pixdim"][0]),
            })
        except Exception as e:  # noqa: BLE001 - reported to the test
            results.append({"path": path, "error": f"{type(e).__name__}: {e}"})
    emit({"files": results})


main()
