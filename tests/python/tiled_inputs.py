"""Writes the tiled-family test inputs from the shared data into OUTDIR and prints their names.

    tiled_inputs.py SHARED_DATA OUTDIR

- hippo2ch*.nii.gz: MSD hippocampus_001 as two channels (the image, and the image mirrored
  left-right: distinct content), 4-D NIfTI, with its 1 mm header and rewritten to 0.7 mm,
  1.6 mm and 0.69 x 0.69 x 5 mm (resampling, the separate-z rule), and a 25 x 18 x 17 window
  (planes smaller than the patch: padding).
- hippo2ch_padded.nii.gz: hippocampus_375 zero-padded unevenly with a zero cavity inside
  (crop to non-zero, the hole-filled ZScore mask).
- ct.nii.gz: TotalSegmentator's small CT (int16 HU, 3 mm), a 60 x 50 x 30 window of it.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np


def save(data, zooms, path):
    affine = np.diag(list(zooms) + [1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(tuple(zooms) + ((1.0,) if data.ndim == 4 else ()))
    nib.save(img, path)


def main():
    shared, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    hip = os.path.join(shared, "msd-hippocampus/images")
    a = np.asarray(nib.load(os.path.join(hip, "hippocampus_001.nii.gz")).dataobj).astype(np.float32)
    two = np.stack([a, a[::-1]], -1)
    names = {}
    for tag, z in [("", (1.0, 1.0, 1.0)), ("_07", (0.7, 0.7, 0.7)), ("_16", (1.6, 1.6, 1.6)),
                   ("_aniso", (0.69, 0.69, 5.0))]:
        names["hippo2ch" + tag] = f"hippo2ch{tag}.nii.gz"
        save(two, z, os.path.join(out, names["hippo2ch" + tag]))
    # Planes smaller than the 24 x 20 patch (17 x 18 after the transpose): centred zero padding.
    names["hippo2ch_small"] = "hippo2ch_small.nii.gz"
    save(np.ascontiguousarray(two[5:30, 10:28, 3:20]), (1.0, 1.0, 1.0), os.path.join(out, names["hippo2ch_small"]))
    b = np.asarray(nib.load(os.path.join(hip, "hippocampus_375.nii.gz")).dataobj).astype(np.float32)
    b = b + 1.0  # no zeros inside the anatomy: the cavity below is the only hole
    b[10:14, 20:26, 12:16] = 0.0
    pad = np.zeros((b.shape[0] + 9, b.shape[1] + 5, b.shape[2] + 7), np.float32)
    pad[4:4 + b.shape[0], 1:1 + b.shape[1], 6:6 + b.shape[2]] = b
    padded = np.stack([pad, pad[::-1]], -1)
    names["hippo2ch_padded"] = "hippo2ch_padded.nii.gz"
    save(padded, (1.0, 1.0, 1.0), os.path.join(out, names["hippo2ch_padded"]))
    ct = nib.load(os.path.join(shared, "totalseg-ref/tests/reference_files/example_ct_sm.nii.gz"))
    w = np.asarray(ct.dataobj)[30:90, 25:75, :].astype(np.int16)
    names["ct"] = "ct.nii.gz"
    save(w, [float(z) for z in ct.header.get_zooms()[:3]], os.path.join(out, names["ct"]))
    print(json.dumps(names))


if __name__ == "__main__":
    main()
