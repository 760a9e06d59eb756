"""Checks a DICOM SEG written by slicewise against its source series with independent tools.

usage: seg_check.py SEG SERIES_DIR OUT_DIR

- pydicom reads every attribute (recursively, values decoded);
- each frame's ImagePositionPatient / the shared ImageOrientationPatient is compared with those of
  the source instance the frame references (max abs difference reported);
- highdicom (hd.seg.segread) rebuilds a label volume on the source series' slices
  (get_pixels_by_source_instance, segments combined) -> OUT_DIR/hd_labels.u8 [z, y, x] in the
  order of the source slices sorted along their normal; and get_volume()'s affine is reported;
- dciodvfy's errors and warnings and dcmdump's exit status are reported.

Prints JSON.
"""
import os
import subprocess
import sys

import highdicom as hd
import numpy as np
import pydicom

from common import emit


def touch_all(ds, count):
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                touch_all(item, count)
        else:
            _ = elem.value
            count[0] += 1


def main():
    seg_path, folder, out = sys.argv[1:4]
    raw = pydicom.dcmread(seg_path)
    count = [0]
    touch_all(raw, count)

    src = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    # Anonymised files may carry their UID only in the file meta (MediaStorageSOPInstanceUID).
    by_uid = {d.file_meta.get("MediaStorageSOPInstanceUID"): d for d in src}
    by_uid.update({d.SOPInstanceUID: d for d in src if d.get("SOPInstanceUID")})
    iop0 = np.array(src[0].ImageOrientationPatient, float)
    normal = np.cross(iop0[:3], iop0[3:])
    src.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))

    shared = raw.SharedFunctionalGroupsSequence[0]
    seg_iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    iop_diff = 0.0
    pos_diff = 0.0
    referenced = 0
    for fr in raw.PerFrameFunctionalGroupsSequence:
        p = np.array(fr.PlanePositionSequence[0].ImagePositionPatient, float)
        # The last dimension index is the (1-based) position along the sorted source slices.
        div = fr.FrameContentSequence[0].DimensionIndexValues
        last = div if isinstance(div, int) else div[-1]
        by_pos = src[int(last) - 1]
        targets = [by_pos]
        if "DerivationImageSequence" in fr:
            ref = fr.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            targets.append(by_uid[ref])
            referenced += 1
        for s in targets:
            pos_diff = max(pos_diff, float(np.abs(p - np.array(s.ImagePositionPatient, float)).max()))
            iop_diff = max(iop_diff, float(np.abs(seg_iop - np.array(s.ImageOrientationPatient, float)).max()))

    seg = hd.seg.segread(seg_path)
    vol = seg.get_volume(combine_segments=True)
    # highdicom's volume (built from frame positions) mapped onto the source slices through its
    # affine: each source slice's first voxel must land on an integer slice at row 0, column 0,
    # and the in-plane axes must equal the source's.
    inv = np.linalg.inv(vol.affine)
    on_grid = np.zeros((len(src), src[0].Rows, src[0].Columns), np.uint8)
    grid_error = 0.0
    for k, d in enumerate(src):
        ipp = np.array(d.ImagePositionPatient, float)
        idx = inv @ np.append(ipp, 1.0)
        s_i = int(round(idx[0]))
        grid_error = max(grid_error, float(np.abs(idx[:3] - [s_i, 0, 0]).max()))
        if 0 <= s_i < vol.array.shape[0]:
            on_grid[k] = vol.array[s_i]
    iop = np.array(src[0].ImageOrientationPatient, float)
    dr, dc = (float(x) for x in src[0].PixelSpacing)
    inplane_error = max(float(np.abs(vol.affine[:3, 1] - iop[3:] * dr).max()),
                        float(np.abs(vol.affine[:3, 2] - iop[:3] * dc).max()))
    if (referenced == len(raw.PerFrameFunctionalGroupsSequence) and referenced > 0
            and "ReferencedSeriesSequence" in raw):
        uids = [d.get("SOPInstanceUID") or d.file_meta.MediaStorageSOPInstanceUID for d in src]
        labels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            combine_segments=True,
            skip_overlap_checks=False,
        )
    else:
        # No usable references: highdicom's volume, built from frame positions alone.
        labels = on_grid
    np.ascontiguousarray(labels.astype(np.uint8)).tofile(os.path.join(out, "hd_labels.u8"))
    on_grid.tofile(os.path.join(out, "hd_volume_labels.u8"))
    vol_affine = vol.affine.tolist()
    vol_shape = list(vol.spatial_shape)

    v = subprocess.run(["dciodvfy", seg_path], capture_output=True, text=True)
    lines = (v.stdout + v.stderr).splitlines()
    errors = [l for l in lines if l.startswith("Error")]
    warnings = [l for l in lines if l.startswith("Warning")]
    d = subprocess.run(["dcmdump", "-q", seg_path], capture_output=True, text=True)

    emit({
        "elements": count[0],
        "sop_class": raw.SOPClassUID,
        "segmentation_type": raw.SegmentationType,
        "frames": int(raw.NumberOfFrames),
        "segments": [[int(s.SegmentNumber), s.SegmentLabel] for s in raw.SegmentSequence],
        "max_position_diff": pos_diff,
        "max_orientation_diff": iop_diff,
        "hd_shape": list(labels.shape),
        "referenced_frames": referenced,
        "hd_volume_affine": vol_affine,
        "hd_volume_grid_error": grid_error,
        "hd_volume_inplane_error": inplane_error,
        "hd_volume_shape": vol_shape,
        "dciodvfy_errors": errors,
        "dciodvfy_warnings": warnings,
        "dcmdump_status": d.returncode,
        "dcmdump_stderr": d.stderr[-2000:],
        "patient_name": str(raw.get("PatientName", "")),
        "study_uid": raw.StudyInstanceUID,
        "frame_of_reference_uid": raw.FrameOfReferenceUID,
        "referenced_series": (raw.ReferencedSeriesSequence[0].SeriesInstanceUID
                              if "ReferencedSeriesSequence" in raw else None),
    })


if __name__ == "__main__":
    main()
