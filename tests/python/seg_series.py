"""Describes a DICOM series with pydicom, independently of slicewise, for the DICOM SEG tests.

usage: seg_series.py SERIES_DIR OUT_DIR [MODE]

MODE (default "asis"):
  asis      use the series as it is
  negated   write a copy to OUT_DIR/series with both direction cosines negated: IOP' = -IOP,
            IPP' = the opposite in-plane corner, pixels flipped in both axes (the same anatomy)
  sagittal  write a copy to OUT_DIR/series acquired sagittally: IOP = (0,1,0, 0,0,-1), slices
            stepping along -x (slice normal = row x col = (-1,0,0)), files in reverse order

Writes OUT_DIR/mask.u8 (a threshold mask, labels 0/1/2, [z, y, x] in slice order along the normal)
and prints JSON: the series folder used, geometry (LPS origin, spacing, direction as
direction[r][c]), shape [z, y, x], per-slice SOP class/instance UIDs and IPPs, FoR/study/series
UIDs and the patient/study attributes to copy.
"""
import copy
import os
import sys

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from common import emit

COPIED = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription"]


def load(folder):
    ds = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    return [d for d in ds if "ImagePositionPatient" in d]


def rewrite(ds, mode, out):
    os.makedirs(out, exist_ok=True)
    series_uid = generate_uid()
    new = []
    for n, d in enumerate(ds):
        d = copy.deepcopy(d)
        d.decompress() if d.file_meta.TransferSyntaxUID.is_compressed else None
        iop = np.array(d.ImageOrientationPatient, float)
        ipp = np.array(d.ImagePositionPatient, float)
        dr, dc = (float(x) for x in d.PixelSpacing)  # between rows, between columns
        row, col = iop[:3], iop[3:]
        arr = d.pixel_array
        if mode == "negated":
            corner = ipp + (d.Columns - 1) * dc * row + (d.Rows - 1) * dr * col
            d.ImageOrientationPatient = [float(v) for v in np.concatenate([-row, -col])]
            d.ImagePositionPatient = [float(v) for v in corner]
            arr = arr[::-1, ::-1]
        elif mode == "sagittal":
            step = float(ds[1].ImagePositionPatient[2]) - float(ds[0].ImagePositionPatient[2])
            step = abs(step) or 1.0
            d.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
            d.ImagePositionPatient = [10.0 - n * step, -80.0, 60.0]
        d.PixelData = np.ascontiguousarray(arr).astype(arr.dtype).tobytes()
        d.SeriesInstanceUID = series_uid
        d.SOPInstanceUID = generate_uid()
        d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
        # Reverse file order so that the reader must sort by position, not by name.
        d.save_as(os.path.join(out, f"{len(ds) - n:04d}.dcm"), enforce_file_format=True)
        new.append(d)
    return new


def main():
    folder, out = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "asis"
    os.makedirs(out, exist_ok=True)
    ds = load(folder)
    if mode != "asis":
        folder = os.path.join(out, "series")
        ds = rewrite(ds, mode, folder)
    iop = np.array(ds[0].ImageOrientationPatient, float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    ds.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    ipps = [[float(v) for v in d.ImagePositionPatient] for d in ds]
    dist = [float(np.dot(normal, p)) for p in ipps]
    step = (dist[-1] - dist[0]) / (len(ds) - 1) if len(ds) > 1 else 1.0
    dr, dc = (float(x) for x in ds[0].PixelSpacing)
    direction = np.stack([row, col, normal], axis=1)  # columns: i, j, k
    vol = np.stack([d.pixel_array.astype(np.float32) for d in ds])
    # Two nested labels from intensity percentiles: a "synthetic but real" mask on real data.
    lo, hi = np.percentile(vol, [90, 98])
    mask = np.zeros(vol.shape, np.uint8)
    mask[vol > lo] = 1
    mask[vol > hi] = 2
    mask[:, :, : vol.shape[2] // 8] = 0  # some empty columns
    mask[len(ds) // 2] = 0  # and one empty slice, to exercise frame omission
    mask.tofile(os.path.join(out, "mask.u8"))
    emit({
        "folder": folder,
        "shape": list(vol.shape),
        "origin": ipps[0],
        "spacing": [dc, dr, step],
        "direction": direction.tolist(),
        "ipps": ipps,
        "study_uid": ds[0].StudyInstanceUID,
        "series_uid": ds[0].SeriesInstanceUID,
        "frame_of_reference_uid": ds[0].get("FrameOfReferenceUID"),
        "slices": [[d.SOPClassUID, d.SOPInstanceUID] for d in ds],
        "copied": [[k, str(ds[0].get(k))] for k in COPIED if ds[0].get(k) not in (None, "")],
        "labels": [int(v) for v in np.unique(mask)],
    })


if __name__ == "__main__":
    main()
