"""Compares a DICOM SEG (read by highdicom) with a NIfTI label map (read by nibabel) in world space.

usage: seg_vs_nifti.py SEG NIFTI

Every NIfTI voxel centre is taken to LPS (nibabel affine, RAS -> LPS), then into highdicom's
volume index space (get_volume(combine_segments=True)); it must land on an integer voxel. Voxels
outside the SEG volume (frames omitted at the ends) count as 0. Prints JSON: voxels compared,
differing voxels, max distance from an integer index, non-zero voxels in each.
"""
import sys

import highdicom as hd
import nibabel as nib
import numpy as np

from common import emit

seg = hd.seg.segread(sys.argv[1])
vol = seg.get_volume(combine_segments=True)
img = nib.load(sys.argv[2])
data = np.asarray(img.dataobj).astype(np.int64)
ijk = np.indices(data.shape).reshape(3, -1)
ras = img.affine @ np.vstack([ijk, np.ones((1, ijk.shape[1]))])
lps = ras.copy()
lps[:2] *= -1
idx = np.linalg.inv(vol.affine) @ lps
rounded = np.rint(idx[:3]).astype(np.int64)
err = float(np.abs(idx[:3] - rounded).max())
shape = np.array(vol.array.shape)[:, None]
inside = np.all((rounded >= 0) & (rounded < shape), axis=0)
seg_vals = np.zeros(ijk.shape[1], np.int64)
r = rounded[:, inside]
seg_vals[inside] = vol.array[r[0], r[1], r[2]]
nii_vals = data.reshape(-1)
emit({
    "voxels": int(nii_vals.size),
    "differ": int((seg_vals != nii_vals).sum()),
    "max_index_error": err,
    "nonzero_nifti": int((nii_vals != 0).sum()),
    "nonzero_seg": int((seg_vals != 0).sum()),
    "seg_volume_nonzero": int((vol.array != 0).sum()),
})
