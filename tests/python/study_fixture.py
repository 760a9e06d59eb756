"""A multi-series study folder for the series-selection tests, built from real series of the shared
data plus copies made with pydicom that differ only in the attributes a model's selection reads.

    study_fixture.py SHARED_DATA OUT

Writes OUT/<folder>/ per series and prints {"series": [{"folder", "uid", "number", "description",
"modality", "slices"}]}. The real series are copied byte for byte: the T1post series and a
hippocampus crop (mr-dicom-series/Study3), TotalSegmentator's CT (JPEG 2000) and dcmqi's 3-slice
CT. The copies (new Series/SOP Instance UIDs, everything else the T1post's) stand for what a
hospital study holds beside them: an axial T2 FLAIR, an inversion-recovery series named by its
sequence only, a localiser, a sagittal series, a diffusion trace, a secondary capture (OT), and the
T1post sent twice (same number and description, new UID).
"""
import glob
import os
import shutil
import sys

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from common import emit

T1POST = "mr-dicom-series/Study3/11-T1post-18670"
REAL = {
    "t1post": T1POST,
    "hippocrop": "mr-dicom-series/Study3/11_HCropVolume",
    "ct_body": "totalseg-ref/tests/reference_files/example_ct_dicom",
    "ct_3slice": "dcmqi-ct3slice-seg/segmentations/ct-3slice",
}

# folder -> attributes set on every file of the T1post copy.
COPIES = {
    "flair": dict(SeriesNumber=4, SeriesDescription="AX T2 FLAIR", ScanningSequence=["SE", "IR"],
                  SequenceVariant=["SK", "SP"], RepetitionTime="9000", EchoTime="120",
                  InversionTime="2500"),
    "ir_by_sequence": dict(SeriesNumber=5, SeriesDescription="AX 2D IR", ScanningSequence="IR",
                           SequenceVariant="SK", RepetitionTime="9000", EchoTime="100",
                           InversionTime="2200"),
    "localizer": dict(SeriesNumber=1, SeriesDescription="AX FLAIR",
                      ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], ScanningSequence="IR",
                      InversionTime="2500"),
    "sagittal": dict(SeriesNumber=2, SeriesDescription="SAG T1"),
    "dwi": dict(SeriesNumber=7, SeriesDescription="DWI b1000",
                ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"], ScanningSequence="EP",
                RepetitionTime="5000", EchoTime="90"),
    "screen": dict(Modality="OT", SeriesNumber=99, SeriesDescription="Screen capture",
                   ImageType=["DERIVED", "SECONDARY"]),
    "t1post_again": dict(),
}


def files(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                  if os.path.isfile(p))


def sagittal(ds):
    """Turns an axial slice sagittal: rows along -z, columns along y, slices stacked along x."""
    k = float(ds.ImagePositionPatient[2])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.ImagePositionPatient = [k, -100.0, 100.0]


def copy_series(src, out, attrs, name):
    series_uid = generate_uid()
    os.makedirs(out)
    for i, f in enumerate(files(src)):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for k, v in attrs.items():
            setattr(ds, k, v)
        if name == "sagittal":
            sagittal(ds)
        ds.save_as(os.path.join(out, f"{i:03d}.dcm"), enforce_file_format=True)


def describe(folder, name):
    fs = files(folder)
    ds = pydicom.dcmread(fs[0], stop_before_pixels=True)
    return {"folder": name, "uid": str(ds.SeriesInstanceUID),
            "number": int(ds.SeriesNumber) if ds.get("SeriesNumber") not in (None, "") else None,
            "description": str(ds.get("SeriesDescription", "")) or None,
            "modality": str(ds.Modality), "slices": len(fs)}


def main():
    shared, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name, rel in REAL.items():
        shutil.copytree(os.path.join(shared, rel), os.path.join(out, name))
    for name, attrs in COPIES.items():
        copy_series(os.path.join(shared, T1POST), os.path.join(out, name), attrs, name)
    emit({"series": [describe(os.path.join(out, n), n) for n in [*REAL, *COPIES]]})


if __name__ == "__main__":
    main()
