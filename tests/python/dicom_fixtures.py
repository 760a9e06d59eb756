"""Writes DICOM test fixtures into OUTDIR: pydicom's own test files (copied) and files generated
from them (MONOCHROME1, planar configuration 1, 32-bit native, raw data set without meta group,
enhanced multi-frame with functional groups). Prints {"files": [names]}.

usage: dicom_fixtures.py OUTDIR CT3SLICE_DIR
"""
import copy
import os
import shutil
import sys

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from common import emit

out, ct3 = sys.argv[1], sys.argv[2]
names = []

COPY = [
    "MR_small.dcm", "CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
    "rtdose.dcm", "SC_rgb_rle_32bit_2frame.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_small_odd.dcm",
    "liver_1frame.dcm", "image_dfl.dcm", "SC_rgb_rle_16bit_2frame.dcm",
]
for n in COPY:
    shutil.copy(get_testdata_file(n), os.path.join(out, n))
    names.append(n)


def save(ds, name, **kw):
    ds.save_as(os.path.join(out, name), **kw)
    names.append(name)


# MONOCHROME1 with rescale: MR_small relabelled.
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
ds.PhotometricInterpretation = "MONOCHROME1"
ds.RescaleSlope = 2
ds.RescaleIntercept = -100
save(ds, "gen_monochrome1.dcm")

# PlanarConfiguration 1 RGB, uncompressed, 2 frames.
ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle_2frame.dcm"))
arr = ds.pixel_array  # (frames, rows, cols, 3)
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PlanarConfiguration = 1
ds.PixelData = np.ascontiguousarray(arr.transpose(0, 3, 1, 2)).tobytes()
save(ds, "gen_planar1.dcm")

# 32-bit RGB uncompressed (interleaved).
ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle_32bit_2frame.dcm"))
arr = ds.pixel_array
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PlanarConfiguration = 0
ds.PixelData = np.ascontiguousarray(arr).astype("<u4").tobytes()
save(ds, "gen_rgb32_native.dcm")

# Signed 16-bit with 12 bits stored (negative values need sign extension).
ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
a = ds.pixel_array.astype(np.int16)
a = np.clip(a - 1000, -2048, 2047)
ds.PixelRepresentation = 1
ds.BitsStored = 12
ds.HighBit = 11
ds.PixelData = (a.astype("<i2").view("<u2") & 0x0FFF).astype("<u2").tobytes()
save(ds, "gen_signed12.dcm")

# Raw data set, implicit VR little endian, no preamble, no meta group.
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
raw = Dataset()
for elem in ds:
    raw.add(copy.deepcopy(elem))
raw.save_as(os.path.join(out, "gen_no_meta.dcm"), implicit_vr=True, little_endian=True,
            enforce_file_format=False)
names.append("gen_no_meta.dcm")

# Enhanced multi-frame from the 3-slice CT: frames stored in reverse z order, per-frame position
# and rescale, shared orientation and pixel measures.
files = sorted(os.listdir(ct3))
src = [pydicom.dcmread(os.path.join(ct3, f)) for f in files]
src.sort(key=lambda d: -float(d.ImagePositionPatient[2]))
first = src[0]
mf = Dataset()
for kw in ["PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "Modality",
           "FrameOfReferenceUID", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
           "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"]:
    if kw in first:
        setattr(mf, kw, getattr(first, kw))
mf.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
mf.SOPInstanceUID = generate_uid()
mf.SeriesInstanceUID = generate_uid()
mf.SeriesDescription = "enhanced test"
mf.NumberOfFrames = len(src)
shared = Dataset()
po = Dataset(); po.ImageOrientationPatient = first.ImageOrientationPatient
pm = Dataset(); pm.PixelSpacing = first.PixelSpacing; pm.SliceThickness = first.SliceThickness
shared.PlaneOrientationSequence = Sequence([po])
shared.PixelMeasuresSequence = Sequence([pm])
mf.SharedFunctionalGroupsSequence = Sequence([shared])
per = []
for i, d in enumerate(src):
    g = Dataset()
    pp = Dataset(); pp.ImagePositionPatient = d.ImagePositionPatient
    pv = Dataset(); pv.RescaleSlope = 1 + i; pv.RescaleIntercept = -1024 + 10 * i
    pv.RescaleType = "US"
    g.PlanePositionSequence = Sequence([pp])
    g.PixelValueTransformationSequence = Sequence([pv])
    per.append(g)
mf.PerFrameFunctionalGroupsSequence = Sequence(per)
mf.PixelData = b"".join(d.pixel_array.astype(d.pixel_array.dtype.newbyteorder("<")).tobytes()
                        for d in src)
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = mf.SOPClassUID
meta.MediaStorageSOPInstanceUID = mf.SOPInstanceUID
meta.TransferSyntaxUID = ExplicitVRLittleEndian
mf.file_meta = meta
mf.save_as(os.path.join(out, "gen_enhanced.dcm"), enforce_file_format=True)
names.append("gen_enhanced.dcm")

emit({"files": names})
