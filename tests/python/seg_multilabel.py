"""A multi-label DICOM SEG checked segment by segment with pydicom and highdicom.

usage:
  seg_multilabel.py dicom-series SRC.nii.gz OUTDIR
      Writes the NIfTI volume as an MR DICOM series (one file per k slice, pydicom), with the same
      voxel grid in world space (nibabel RAS affine -> LPS) and lossless intensities: the volume's
      values are integer multiples of one step (MSD's float32 export), stored as uint16 with that
      step as RescaleSlope. Prints {files, series_uid, step, max_value_error, shape}.
  seg_multilabel.py check SEG NIFTI_MASK CARD.json
      For every segment of SEG: pydicom's SegmentSequence item (number, label, CIELab value) and
      frame count; highdicom's per-segment volume (get_volume(segment_numbers=[n])) sampled at
      every NIfTI voxel centre through the affines, compared with NIfTI == v for each label value
      v of the card; the segment's codes as highdicom's segment description gives them (category,
      type, anatomic region) and its type modifier (pydicom, inside the type's item), shaped like
      the card's `label_codes` entries. Also highdicom's CIELab for each card colour
      (CIELabColor.from_rgb). Prints {segments: [...], card_cielab: {value: [L, a, b]}, voxels}.
  seg_multilabel.py highdicom-seg SERIES_DIR MASK.nii.gz OUT.dcm
      A foreign tool's SEG: highdicom's BINARY Segmentation of the series SERIES_DIR (as
      `dicom-series` wrote it from a NIfTI of MASK's grid: file k is slice k, pixel (row j,
      column i) voxel (i, j, k)), one segment per label value v of MASK numbered v (the values
      must be 1..n), coded Tissue. Prints {segments, frames}.
"""
import json
import os
import sys

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from common import emit

LPS = np.diag([-1.0, -1.0, 1.0])


def ds_str(x):
    """A DS value within DICOM's 16 characters."""
    return format(float(x), ".10g")


def intensity_step(data):
    """The step all values are integer multiples of, and the worst reconstruction error."""
    positive = data[data > 0]
    step = float(positive.min()) if positive.size else 1.0
    stored = np.rint(data / step)
    return step, stored, float(np.abs(stored * float(ds_str(step)) - data).max())


def slice_dataset(meta, k, pixels):
    """One MR Image Storage instance: slice k of the series described by `meta`."""
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = MRImageStorage
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = fm
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        setattr(ds, key, meta[key])
    ds.PatientName = "Hippocampus^375"
    ds.PatientID = "hippocampus_375"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = "20240101"
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "MR"
    ds.Manufacturer = "slicewise tests"
    ds.SeriesNumber = 1
    # What a person would call the series: its source's name ("flair", "hippocampus_375"), which
    # is also what the bundled models' series selection reads.
    ds.SeriesDescription = meta["description"]
    ds.InstanceNumber = k + 1
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D"
    ds.ImageOrientationPatient = [ds_str(v) for v in meta["iop"]]
    ds.ImagePositionPatient = [ds_str(v) for v in meta["origin"] + meta["k_step"] * k]
    ds.PixelSpacing = [ds_str(v) for v in meta["pixel_spacing"]]
    ds.SliceThickness = ds_str(meta["thickness"])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = ds_str(meta["step"])
    ds.RescaleIntercept = "0"
    ds.RescaleType = "US"
    ds.PixelData = np.ascontiguousarray(pixels.astype("<u2")).tobytes()
    return ds


def dicom_series(src, out):
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float64)
    a = img.affine
    step, stored, err = intensity_step(data)
    if stored.max() > 65535 or err > 1e-3 * step:
        raise SystemExit(f"{src}: intensities are not integer multiples of one step")
    spacing = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    row_dir = LPS @ a[:3, 0] / spacing[0]  # along a row: increasing column index = i
    col_dir = LPS @ a[:3, 1] / spacing[1]  # down a column: increasing row index = j
    meta = {
        "StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(), "step": step,
        "iop": list(row_dir) + list(col_dir), "origin": LPS @ a[:3, 3],
        "k_step": LPS @ a[:3, 2], "pixel_spacing": [spacing[1], spacing[0]],
        "thickness": spacing[2],
        "description": os.path.basename(src).split(".")[0],
    }
    os.makedirs(out, exist_ok=True)
    files = []
    for k in range(data.shape[2]):
        # Rows are j, columns are i: pixel (row j, column i) is voxel (i, j, k).
        ds = slice_dataset(meta, k, stored[:, :, k].T)
        name = f"slice_{k:03d}.dcm"
        ds.save_as(os.path.join(out, name), enforce_file_format=True)
        files.append(name)
    emit({"files": files, "series_uid": meta["SeriesInstanceUID"], "step": step,
          "max_value_error": err, "shape": list(data.shape)})


def on_nifti_voxels(vol, img):
    """The highdicom volume's values at every NIfTI voxel centre (0 outside), C order of the
    NIfTI array, and the largest distance of a centre from an integer index."""
    ijk = np.indices(img.shape[:3]).reshape(3, -1)
    ras = img.affine @ np.vstack([ijk, np.ones((1, ijk.shape[1]))])
    lps = np.vstack([LPS @ ras[:3], ras[3:]])
    idx = np.linalg.inv(vol.affine) @ lps
    rounded = np.rint(idx[:3]).astype(np.int64)
    shape = np.array(vol.array.shape[:3])[:, None]
    inside = np.all((rounded >= 0) & (rounded < shape), axis=0)
    out = np.zeros(ijk.shape[1], np.int64)
    r = rounded[:, inside]
    out[inside] = vol.array[r[0], r[1], r[2]].reshape(-1)
    return out, float(np.abs(idx[:3] - rounded).max())


def code(c):
    """A highdicom/pydicom coded concept as the card writes a code."""
    return {"value": c.CodeValue, "scheme": c.CodingSchemeDesignator, "meaning": c.CodeMeaning}


def segment_codes(desc, item):
    """The segment's codes: highdicom's description, the modifier from pydicom."""
    out = {"category": code(desc.segmented_property_category),
           "property_type": code(desc.segmented_property_type)}
    modifiers = item.SegmentedPropertyTypeCodeSequence[0].get(
        "SegmentedPropertyTypeModifierCodeSequence", [])
    if modifiers:
        out["property_type_modifier"] = code(modifiers[0])
    if desc.anatomic_regions:
        out["anatomic_region"] = code(desc.anatomic_regions[0])
    return out


def check(seg_path, nifti, card_path):
    raw = pydicom.dcmread(seg_path)
    seg = hd.seg.segread(seg_path)
    img = nib.load(nifti)
    mask = np.asarray(img.dataobj).astype(np.int64).reshape(-1)
    with open(card_path) as f:
        card = json.load(f)
    values = [int(lab["value"]) for lab in card["contract"]["labels"]]
    frames = {}
    for fr in raw.PerFrameFunctionalGroupsSequence:
        n = int(fr.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frames[n] = frames.get(n, 0) + 1
    segments = []
    for item in raw.SegmentSequence:
        n = int(item.SegmentNumber)
        desc = seg.get_segment_description(n)
        vol = seg.get_volume(segment_numbers=[n], combine_segments=True)
        sampled, err = on_nifti_voxels(vol, img)
        segments.append({
            "number": n,
            "label": item.SegmentLabel,
            "hd_label": desc.segment_label,
            "cielab": [int(v) for v in item.RecommendedDisplayCIELabValue],
            "property_type": item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning,
            "codes": segment_codes(desc, item),
            "frames": frames.get(n, 0),
            "seg_voxels": int((vol.array != 0).sum()),
            "sampled_voxels": int((sampled != 0).sum()),
            "max_index_error": err,
            "differ": {str(v): int(((sampled != 0) != (mask == v)).sum()) for v in values},
        })
    emit({
        "sop_class": raw.SOPClassUID,
        "segmentation_type": raw.SegmentationType,
        "segments": segments,
        "card_cielab": {str(int(lab["value"])):
                        list(hd.color.CIELabColor.from_rgb(*lab["color"]).value)
                        for lab in card["contract"]["labels"]},
        "nifti_counts": {str(v): int((mask == v).sum()) for v in values},
        "voxels": int(mask.size),
    })


def highdicom_seg(folder, mask_path, out):
    src = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    labels = np.rint(np.asarray(nib.load(mask_path).dataobj)).astype(np.uint8)
    frames = np.stack([labels[:, :, k].T for k in range(labels.shape[2])])
    values = sorted(int(v) for v in np.unique(frames) if v)
    if values != list(range(1, len(values) + 1)):
        raise SystemExit(f"{mask_path}: label values {values} are not 1..n")
    tissue = codes.SCT.Tissue
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=v, segment_label=f"label {v}",
            segmented_property_category=tissue, segmented_property_type=tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for v in values
    ]
    seg = hd.seg.Segmentation(
        source_images=src, pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="highdicom (test)",
        manufacturer_model_name="seg_multilabel.py", software_versions=hd.__version__,
        device_serial_number="1")
    seg.save_as(out)
    emit({"segments": values, "frames": int(seg.NumberOfFrames)})


def main():
    cmd = sys.argv[1]
    if cmd == "dicom-series":
        dicom_series(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "highdicom-seg":
        highdicom_seg(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
