"""Writes NIfTI fixtures with nibabel into OUTDIR (every datatype, NIfTI-2, .hdr/.img pairs,
gzipped pairs, scaling corner cases, qform-only / sform-only / neither, big-endian, RGB, 4-D,
5-D, shear) and lists them, with the NIfTI files shipped in nibabel's own test data.

usage: nifti_make.py OUTDIR   ->   {"generated": [...], "nibabel": [...]}
"""
import gzip
import os
import sys

import nibabel as nib
import numpy as np
data_path = os.path.join(os.path.dirname(nib.__file__), "tests", "data")

from common import emit

out = sys.argv[1]
rng = np.random.default_rng(1234)
SHAPE = (7, 6, 5)
# An oblique, anisotropic, left-handed affine (x axis flipped), so axis mix-ups show.
c, s = np.cos(0.3), np.sin(0.3)
AFF = np.array([[-0.9 * c, 0.0, 2.5 * s, 12.5],
                [0.9 * s, 1.1 * 0.0 + 0.0, 2.5 * c, -30.25],
                [0.0, 1.1, 0.0, 7.0],
                [0, 0, 0, 1.0]])
generated = []


def save(img, name):
    p = os.path.join(out, name)
    nib.save(img, p)
    generated.append(p)
    return p


def patch(path, offset, fmt, value):
    """Overwrites one header field in place (nibabel recomputes scaling on save)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = bytearray(f.read())
    b = np.array([value], fmt).tobytes()
    raw[offset:offset + len(b)] = b
    with opener(path, "wb") as f:
        f.write(raw)


def data_for(dt):
    info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else None
    if info is not None:
        lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
        d = rng.integers(lo, hi, size=SHAPE, dtype=dt, endpoint=True)
        d.flat[0], d.flat[1] = lo, hi
        return d
    return (rng.standard_normal(SHAPE) * 1000).astype(dt)


for dt in ["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
           "float64"]:
    img = nib.Nifti1Image(data_for(np.dtype(dt)), AFF, dtype=np.dtype(dt))
    save(img, f"dtype_{dt}.nii")
    if np.issubdtype(np.dtype(dt), np.integer) and dt not in ("int64", "uint64"):
        img = nib.Nifti1Image(data_for(np.dtype(dt)), AFF, dtype=np.dtype(dt))
        p = save(img, f"scaled_{dt}.nii.gz")
        patch(p, 112, "<f4", 0.5)
        patch(p, 116, "<f4", -3.25)

d32 = data_for(np.dtype("float32"))
save(nib.Nifti2Image(d32, AFF), "nifti2.nii")
save(nib.Nifti2Image(data_for(np.dtype("int16")), AFF), "nifti2.nii.gz")
save(nib.Nifti2Pair(d32, AFF), "nifti2_pair.hdr")
save(nib.Nifti1Pair(data_for(np.dtype("int16")), AFF), "pair.hdr")
p = os.path.join(out, "pair_img_given.hdr")
nib.save(nib.Nifti1Pair(d32, AFF), p)
generated.append(os.path.join(out, "pair_img_given.img"))
save(nib.Nifti1Pair(d32, AFF), "pair_gz.img.gz")
generated[-1] = os.path.join(out, "pair_gz.hdr.gz")

for name, slope in [("slope_zero", 0.0), ("slope_nan", np.nan), ("slope_inf", np.inf)]:
    img = nib.Nifti1Image(data_for(np.dtype("int16")), AFF, dtype=np.int16)
    p = save(img, f"{name}.nii")
    patch(p, 112, "<f4", slope)
    patch(p, 116, "<f4", 7.0)

img = nib.Nifti1Image(d32, None)
img.set_qform(AFF, code=1)
img.set_sform(None, code=0)
save(img, "qform_only.nii")
img = nib.Nifti1Image(d32, None)
img.set_sform(AFF, code=2)
img.set_qform(None, code=0)
save(img, "sform_only.nii")
img = nib.Nifti1Image(d32, None)
img.header.set_zooms((0.9, 1.1, 2.5))
img.set_sform(None, code=0)
img.set_qform(None, code=0)
save(img, "no_transform.nii")
# qform with qfac -1 (left-handed) and a different sform: the sform must win
img = nib.Nifti1Image(d32, None)
img.set_qform(np.diag([1.0, 2.0, -3.0, 1.0]), code=1)
img.set_sform(AFF, code=1)
save(img, "sform_over_qform.nii")
img = nib.Nifti1Image(d32, None)
img.set_qform(np.diag([1.0, 2.0, -3.0, 1.0]) + np.array([[0, 0, 0, 5.0]] * 3 + [[0, 0, 0, 0]]), code=1)
img.set_sform(None, code=0)
save(img, "qfac_minus1.nii")
# pixdim[0] = 0 with a qform: counts as qfac 1 (nibabel fixes it on load)
patch(save(img, "pixdim0_zero_qform.nii"), 76, "<f4", 0.0)

hdr = nib.Nifti1Header(endianness=">")
img = nib.Nifti1Image(data_for(np.dtype("int16")), AFF, header=hdr, dtype=np.int16)
p = save(img, "big_endian.nii.gz")
patch(p, 112, ">f4", 2.0)
patch(p, 116, ">f4", 1.0)
hdr = nib.Nifti2Header(endianness=">")
p = save(nib.Nifti2Image(data_for(np.dtype("int32")), AFF, header=hdr, dtype=np.int32),
         "big_endian_nifti2.nii")
patch(p, 176, ">f8", 0.25)
patch(p, 184, ">f8", 100.0)

rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
for k in "RGB":
    rgb[k] = rng.integers(0, 255, size=SHAPE, dtype=np.uint8)
save(nib.Nifti1Image(rgb, AFF), "rgb24.nii")
save(nib.Nifti1Image((rng.standard_normal(SHAPE + (3,)) * 10).astype(np.float32), AFF), "4d.nii.gz")
save(nib.Nifti1Image(data_for(np.dtype("float32")).reshape(SHAPE + (1, 1)), AFF), "5d_singleton.nii")
save(nib.Nifti1Image(rng.integers(0, 3, size=SHAPE + (1, 4), dtype=np.uint8), AFF, dtype=np.uint8),
     "5d_components.nii")
img = nib.Nifti1Image(d32, AFF)
img.header.set_dim_info(slice=1)
img.header["descrip"] = b"made by nifti_make.py"
img.header["intent_name"] = b"label"
save(img, "dim_info_descrip.nii")
shear = AFF.copy()
shear[0, 1] = 0.3
img = nib.Nifti1Image(d32, shear)
save(img, "shear.nii")

nib_files = [os.path.join(data_path, n) for n in
             ["example4d.nii.gz", "example_nifti2.nii.gz", "anatomical.nii", "functional.nii",
              "standard.nii.gz", "reoriented_anat_moved.nii", "resampled_anat_moved.nii"]]
emit({"generated": generated,
      "nibabel": [p for p in nib_files if os.path.exists(p)],
      "nibabel_errors": [os.path.join(data_path, n) for n in ["analyze.hdr", "nifti1.hdr", "nifti2.hdr"]]})
