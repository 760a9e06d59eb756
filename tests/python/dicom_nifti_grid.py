"""nibabel's view of a NIfTI file's voxel grid: prints {"shape": [...], "affine": 4x4 RAS}.

usage: dicom_nifti_grid.py FILE.nii.gz
"""
import sys

import nibabel as nib

from common import emit

img = nib.load(sys.argv[1])
emit({"shape": list(img.shape[:3]), "affine": img.affine})
