"""Writes an RTSTRUCT with rt-utils' own writer, for comparing contour conventions.

Usage: rtstruct_rtutils_write.py SERIES_DIR MASK.nii[.gz] OUT.dcm

Each non-zero label of the NIfTI mask, sampled at the pixel centres of the series' images (as
rtstruct_check.py samples its truth), becomes an ROI named "label N" through RTStruct.add_roi
(OpenCV contours through the centres of the boundary pixels, no approximation), numbered 1, 2,
... in label order (so ROI numbers are label values when the labels are 1..n). Prints JSON: the
labels written.
"""
import contextlib
import sys

import nibabel as nib
import numpy as np
from rt_utils import RTStructBuilder

from common import emit
from rtstruct_check import truth_slice


def main():
    folder, mask_path, out = sys.argv[1:4]
    rt = RTStructBuilder.create_new(dicom_series_path=folder)
    nii = nib.load(mask_path)
    labels = np.asarray(nii.dataobj).astype(np.uint8)
    # rt-utils' masks are (Columns, Rows, slices), filled [row, column], in its slice order.
    slices = np.stack([truth_slice(d, nii, labels) for d in rt.series_data], axis=-1)
    written = []
    for v in sorted(set(np.unique(slices)) - {0}):
        rt.add_roi(mask=slices == v, name=f"label {v}", approximate_contours=False)
        written.append(int(v))
    with contextlib.redirect_stdout(sys.stderr):  # rt-utils prints as it saves
        rt.save(out)
    emit({"labels": written})


if __name__ == "__main__":
    main()
