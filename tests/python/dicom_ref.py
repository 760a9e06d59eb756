"""pydicom reference for a DICOM series: voxels (pixel_array * slope + intercept, MONOCHROME1
inverted on the stored range, sorted along the slice normal) and the LPS affine computed from
ImagePositionPatient / ImageOrientationPatient / PixelSpacing.

usage: dicom_ref.py OUT_RAW PATH [SERIES_UID]
Writes the voxels as float32 [c, z, y, x] to OUT_RAW; prints shape, affine_lps (null without
positions), sop_instance_uids in z order, copied attributes.
"""
import os
import sys

import numpy as np
import pydicom

from common import dump, emit

out, path = sys.argv[1], sys.argv[2]
uid = sys.argv[3] if len(sys.argv) > 3 else None

paths = [path] if os.path.isfile(path) else sorted(
    os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs)
dss = []
for p in paths:
    try:
        ds = pydicom.dcmread(p, force=True)
    except Exception:
        continue
    if "Rows" not in ds:
        continue
    if "TransferSyntaxUID" not in ds.file_meta:
        # A raw data set: pydicom tells us how it parsed it.
        ds.file_meta.TransferSyntaxUID = (
            "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1")
    if uid is not None and ds.get("SeriesInstanceUID") != uid:
        continue
    dss.append(ds)
assert dss, "no images"


def fg(ds, i, seq, kw):
    """Attribute kw from functional group seq of frame i (per-frame, else shared)."""
    for top in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        if top in ds:
            items = ds[top].value
            item = items[i] if top.startswith("Per") else items[0]
            if seq in item and kw in item[seq].value[0]:
                return item[seq].value[0][kw].value
    return None


frames = []  # (ds, frame index, 2-D or 3-D array [rows, cols(, 3)])
for ds in dss:
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1))
    if n == 1:
        arr = arr[None]
    spp = int(ds.get("SamplesPerPixel", 1))
    bs = int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if signed else (0, 2 ** bs - 1)
    offsets = ds.get("GridFrameOffsetVector")
    for i in range(n):
        a = arr[i].astype(np.float64)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            a = lo + hi - a
        slope = fg(ds, i, "PixelValueTransformationSequence", "RescaleSlope")
        inter = fg(ds, i, "PixelValueTransformationSequence", "RescaleIntercept")
        if slope is None:
            slope = ds.get("RescaleSlope", ds.get("DoseGridScaling", 1)
                           if ds.get("Modality") == "RTDOSE" else 1)
        if inter is None:
            inter = ds.get("RescaleIntercept", 0)
        a = a * float(slope) + float(inter)
        ipp = fg(ds, i, "PlanePositionSequence", "ImagePositionPatient") or ds.get("ImagePositionPatient")
        iop = fg(ds, i, "PlaneOrientationSequence", "ImageOrientationPatient") or ds.get("ImageOrientationPatient")
        ps = fg(ds, i, "PixelMeasuresSequence", "PixelSpacing") or ds.get("PixelSpacing")
        if ipp is not None and offsets is not None and n > 1:
            nrm = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
            ipp = list(np.array(ipp, float) + float(offsets[i]) * nrm)
        frames.append(dict(ds=ds, i=i, a=a, ipp=ipp, iop=iop, ps=ps, spp=spp))

positioned = all(f["ipp"] is not None and f["iop"] is not None for f in frames)
affine = None
if positioned:
    iop = np.array(frames[0]["iop"], float)
    row, col = iop[:3], iop[3:]
    nrm = np.cross(row, col)
    frames.sort(key=lambda f: float(np.dot(np.array(f["ipp"], float), nrm)))
    ps = np.array(frames[0]["ps"], float)
    first = np.array(frames[0]["ipp"], float)
    if len(frames) > 1:
        step = (np.array(frames[-1]["ipp"], float) - first) / (len(frames) - 1)
    else:
        ds = frames[0]["ds"]
        step = nrm * float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1)))
    affine = np.eye(4)
    affine[:3, 0] = row * ps[1]
    affine[:3, 1] = col * ps[0]
    affine[:3, 2] = step
    affine[:3, 3] = first

vol = np.stack([f["a"] for f in frames])  # z, y, x (, c)
vol = vol[None] if vol.ndim == 3 else vol.transpose(3, 0, 1, 2)
dump(vol, out)
ds0 = frames[0]["ds"]


def sop_uid(ds):
    """SOPInstanceUID, falling back to the meta group's copy when the data set's is empty."""
    uid = str(ds.get("SOPInstanceUID", "") or "")
    if not uid:
        uid = str(ds.file_meta.get("MediaStorageSOPInstanceUID", ""))
    return uid

emit({
    "shape": list(vol.shape),
    "affine_lps": affine,
    "sop_instance_uids": [sop_uid(f["ds"]) for f in frames],
    "frames": [f["i"] + 1 if "NumberOfFrames" in f["ds"] else 0 for f in frames],
    "patient_id": str(ds0.get("PatientID", "")),
    "series_uid": str(ds0.get("SeriesInstanceUID", "")),
    "study_uid": str(ds0.get("StudyInstanceUID", "") or ""),
})
