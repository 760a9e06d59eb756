"""Reads an RTSTRUCT back independently of slicewise and compares it with a label mask.

Usage: rtstruct_check.py RTSTRUCT SERIES_DIR MASK.nii[.gz]

- The truth: the NIfTI mask (nibabel) sampled at the centre of every pixel of every image of the
  series (pydicom's ImagePositionPatient, ImageOrientationPatient and PixelSpacing), so the
  comparison is on the DICOM images' own grid, whatever order or orientation the NIfTI has.
- rt-utils (RTStructBuilder.create_from, get_roi_mask_by_name) rasterises each ROI, for square
  images whose data sets carry their SOPInstanceUID only: rt-utils 1.2.7 allocates its slices
  Columns x Rows and fills them [row, column], which cuts non-square images, and finds a
  contour's image by the data set's SOPInstanceUID.
- Our own rasterisation, on every image: the ROI's contours on a slice, put in pixel
  coordinates from pydicom's geometry, filled by the even-odd rule at pixel centres (how RT
  readers treat holes: a contour inside another is a hole).
- References: every ContourImageSequence instance exists in SERIES_DIR; each contour lies in
  the plane of the image it references; the Frame of Reference, Study and Series UIDs are the
  series'.
- dciodvfy's errors and warnings.

Prints JSON: per ROI its number, name, colour, interpreted type, codes, contour counts, and per
slice (by SOPInstanceUID) the voxel counts and the Dice of each rasterisation against the truth.
"""
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom

from common import emit


def load_series(folder):
    """The series' images, sorted along their normal (as rt-utils sorts them)."""
    images = []
    for name in sorted(os.listdir(folder)):
        ds = pydicom.dcmread(os.path.join(folder, name), stop_before_pixels=True)
        images.append(ds)
    normal = np.cross(*np.reshape(np.array(images[0].ImageOrientationPatient, float), (2, 3)))
    images.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    return images


def instance_uid(ds):
    """The image's SOPInstanceUID, or its file meta's when an anonymiser blanked it (as
    TotalSegmentator's example series has, and as slicewise's reader falls back to)."""
    return ds.get("SOPInstanceUID", "") or ds.file_meta.MediaStorageSOPInstanceUID


def frame(ds):
    """(origin, row direction, column direction, normal, row spacing, column spacing)."""
    iop = np.array(ds.ImageOrientationPatient, float)
    r, c = iop[:3], iop[3:]
    ps = [float(v) for v in ds.PixelSpacing]
    return np.array(ds.ImagePositionPatient, float), r, c, np.cross(r, c), ps[0], ps[1]


def truth_slice(ds, nii, labels):
    """The NIfTI labels at the centre of each pixel of image `ds`: [row, column]."""
    o, r, c, _, dr, dc = frame(ds)
    rows, cols = int(ds.Rows), int(ds.Columns)
    j, i = np.mgrid[0:rows, 0:cols]
    lps = o + i[..., None] * dc * r + j[..., None] * dr * c
    ras = lps * np.array([-1.0, -1.0, 1.0])
    inv = np.linalg.inv(nii.affine)
    ijk = ras @ inv[:3, :3].T + inv[:3, 3]
    idx = np.rint(ijk).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(labels.shape[:3])), axis=-1)
    out = np.zeros((rows, cols), np.uint8)
    out[inside] = labels[idx[inside, 0], idx[inside, 1], idx[inside, 2]]
    return out


def to_pixels(ds, points):
    """Contour points (LPS mm, n x 3) as (column, row) pixel coordinates of image `ds`, and
    their largest distance from its plane."""
    o, r, c, n, dr, dc = frame(ds)
    d = points - o
    return np.stack([d @ r / dc, d @ c / dr], axis=1), float(np.max(np.abs(d @ n)))


def fill_even_odd(polygons, rows, cols):
    """Pixels whose centre lies inside an odd number of the polygons ((column, row) arrays)."""
    out = np.zeros((rows, cols), bool)
    if not polygons:
        return out
    a = np.concatenate(polygons)
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    for y in range(rows):
        sel = (a[:, 1] > y) != (b[:, 1] > y)
        if not sel.any():
            continue
        t = (y - a[sel, 1]) / (b[sel, 1] - a[sel, 1])
        xs = np.sort(a[sel, 0] + t * (b[sel, 0] - a[sel, 0]))
        for x0, x1 in zip(xs[0::2], xs[1::2]):
            lo, hi = max(int(np.floor(x0)) + 1, 0), min(int(np.ceil(x1)) - 1, cols - 1)
            if lo <= hi:
                out[y, lo:hi + 1] = True
    return out


def dice(a, b):
    n = int(a.sum()) + int(b.sum())
    return 1.0 if n == 0 else 2.0 * int((a & b).sum()) / n


def code(seq):
    if not seq:
        return None
    it = seq[0]
    return {"value": it.CodeValue, "scheme": it.CodingSchemeDesignator, "meaning": it.CodeMeaning}


def rt_utils_masks(rt_path, folder, names, square):
    """rt-utils' mask of each ROI name, by SOPInstanceUID: {name: {uid: [row, column] bool}}."""
    if not square:
        return None
    from rt_utils import RTStructBuilder

    rt = RTStructBuilder.create_from(dicom_series_path=folder, rt_struct_path=rt_path)
    uids = [s.SOPInstanceUID for s in rt.series_data]
    out = {}
    for name in names:
        try:
            m = rt.get_roi_mask_by_name(name)  # (Columns, Rows, slices), filled [row, column]
        except AttributeError:
            # rt-utils 1.2.7 expects a ContourSequence in every ROI; an ROI without contours
            # (an empty label) has none.
            continue
        out[name] = {u: m[:, :, k].astype(bool) for k, u in enumerate(uids)}
    return out


def main():
    rt_path, folder, mask_path = sys.argv[1:4]
    rt = pydicom.dcmread(rt_path)
    images = load_series(folder)
    by_uid = {instance_uid(d): d for d in images}
    nii = nib.load(mask_path)
    labels = np.asarray(nii.dataobj).astype(np.uint8)
    truth = {instance_uid(d): truth_slice(d, nii, labels) for d in images}
    square = all(int(d.Rows) == int(d.Columns) for d in images)
    # rt-utils finds a contour's image by the data set's SOPInstanceUID only.
    rt_utils_can = square and all(d.get("SOPInstanceUID", "") for d in images)

    first = images[0]
    ref_for = rt.ReferencedFrameOfReferenceSequence[0]
    source_for = first.get("FrameOfReferenceUID", "")
    references = {
        # An anonymised series without UIDs gets new ones, and no study/series listing.
        "source_has_uids": bool(first.get("SeriesInstanceUID", "")),
        "frame_of_reference_ok": ref_for.FrameOfReferenceUID == source_for
        if source_for else bool(ref_for.FrameOfReferenceUID),
        "study_listed": "RTReferencedStudySequence" in ref_for,
        "series_instances": len(images),
    }
    if references["study_listed"]:
        study = ref_for.RTReferencedStudySequence[0]
        series = study.RTReferencedSeriesSequence[0]
        listed = [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence]
        references.update({
            "study_ok": study.ReferencedSOPInstanceUID == first.StudyInstanceUID
            and rt.StudyInstanceUID == first.StudyInstanceUID,
            "series_ok": series.SeriesInstanceUID == first.SeriesInstanceUID,
            "listed_instances": len(listed),
            "listed_missing": [u for u in listed if u not in by_uid],
        })

    names = {int(r.ROINumber): r.ROIName for r in rt.StructureSetROISequence}
    observations = {int(o.ReferencedROINumber): o for o in rt.RTROIObservationsSequence}
    ru = rt_utils_masks(rt_path, folder, list(names.values()), rt_utils_can)
    rois = []
    worst_plane = 0.0
    missing_refs = []
    for rc in rt.ROIContourSequence:
        number = int(rc.ReferencedROINumber)
        value, name, obs = number, names[number], observations[number]
        per_uid = {}
        for c in rc.get("ContourSequence", []):
            uid = c.ContourImageSequence[0].ReferencedSOPInstanceUID
            if uid not in by_uid:
                missing_refs.append(uid)
                continue
            pts = np.array(c.ContourData, float).reshape(-1, 3)
            assert int(c.NumberOfContourPoints) == len(pts)
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            px, off = to_pixels(by_uid[uid], pts)
            worst_plane = max(worst_plane, off)
            per_uid.setdefault(uid, []).append(px)
        slices = []
        for d in images:
            uid = instance_uid(d)
            want = truth[uid] == value
            ours = fill_even_odd(per_uid.get(uid, []), int(d.Rows), int(d.Columns))
            s = {
                "uid": uid,
                "truth": int(want.sum()),
                "contours": len(per_uid.get(uid, [])),
                "dice_even_odd": dice(ours, want),
                "even_odd_voxels": int(ours.sum()),
            }
            if ru is not None and name in ru:
                got = ru[name][uid]
                s["dice_rt_utils"] = dice(got, want)
                s["rt_utils_voxels"] = int(got.sum())
                s["rt_utils_vs_even_odd"] = int((got != ours).sum())
            slices.append(s)
        rois.append({
            "number": number,
            "name": name,
            "color": [int(v) for v in rc.get("ROIDisplayColor", [])],
            "interpreted_type": obs.get("RTROIInterpretedType", ""),
            "generation": [r.ROIGenerationAlgorithm for r in rt.StructureSetROISequence
                           if int(r.ROINumber) == number][0],
            "category": code(obs.get("SegmentedPropertyCategoryCodeSequence")),
            "type": code(obs.get("RTROIIdentificationCodeSequence")),
            "modifier": code(obs.RTROIIdentificationCodeSequence[0].get(
                "SegmentedPropertyTypeModifierCodeSequence"))
            if "RTROIIdentificationCodeSequence" in obs else None,
            "region": code(obs.get("AnatomicRegionSequence")),
            "contours": sum(len(v) for v in per_uid.values()),
            "has_contour_sequence": "ContourSequence" in rc,
            "slices": slices,
        })

    v = subprocess.run(["dciodvfy", rt_path], capture_output=True, text=True)
    lines = (v.stdout + v.stderr).splitlines()
    emit({
        "sop_class": rt.SOPClassUID,
        "modality": rt.Modality,
        "transfer_syntax": str(rt.file_meta.TransferSyntaxUID),
        "patient_name": str(rt.get("PatientName", "")),
        "patient_id": str(rt.get("PatientID", "")),
        "series_differs": rt.SeriesInstanceUID != first.get("SeriesInstanceUID", ""),
        "references": references,
        "contour_refs_missing": missing_refs,
        "max_off_plane_mm": worst_plane,
        "square": square,
        "rt_utils_read": ru is not None,
        "rois": rois,
        "dciodvfy_errors": [l for l in lines if l.startswith("Error")],
        "dciodvfy_warnings": [l for l in lines if l.startswith("Warning")],
    })


if __name__ == "__main__":
    main()
