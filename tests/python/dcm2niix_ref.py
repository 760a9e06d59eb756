"""Compares our NIfTI conversion of a DICOM series with dcm2niix's, as nibabel sees both.

usage: dcm2niix_ref.py OURS.nii.gz DCM2NIIX.nii
dcm2niix flips the row axis (and sometimes others) relative to DICOM order; the two files must
hold the same voxels at the same world positions, so dcm2niix's image is reoriented to ours
before comparing voxels and affines.
"""
import sys

import nibabel as nib
import numpy as np

from common import emit

ours = nib.load(sys.argv[1])
ref = nib.load(sys.argv[2])
ornt = nib.orientations.ornt_transform(
    nib.orientations.io_orientation(ref.affine), nib.orientations.io_orientation(ours.affine)
)
ref2 = ref.as_reoriented(ornt)
a = ours.get_fdata(dtype=np.float64)
b = ref2.get_fdata(dtype=np.float64)
emit({
    "ours_shape": list(a.shape),
    "ref_shape": list(b.shape),
    "max_abs_voxel_diff": float(np.max(np.abs(a - b))) if a.shape == b.shape else None,
    "max_abs_affine_diff": float(np.max(np.abs(ours.affine - ref2.affine))),
    "ours_axcodes": "".join(nib.aff2axcodes(ours.affine)),
    "ref_axcodes": "".join(nib.aff2axcodes(ref.affine)),
})
