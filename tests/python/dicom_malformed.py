"""Writes a corpus of malformed DICOM inputs into OUTDIR and prints {"files": [paths]}:
truncated copies of a real file at several offsets, random bytes named .dcm, an empty folder,
and a header claiming absurd dimensions with little pixel data.

usage: dicom_malformed.py OUTDIR REAL_FILE
"""
import os
import sys

import numpy as np
import pydicom

from common import emit

out, real = sys.argv[1], sys.argv[2]
paths = []
data = open(real, "rb").read()
for cut in [0, 10, 100, 131, 140, 300, 700, len(data) // 2, len(data) - 1000, len(data) - 1]:
    p = os.path.join(out, f"truncated_{cut}.dcm")
    open(p, "wb").write(data[:cut])
    paths.append(p)
rng = np.random.default_rng(1)
for i in range(3):
    p = os.path.join(out, f"random_{i}.dcm")
    open(p, "wb").write(rng.integers(0, 256, 4096 * (i + 1), dtype=np.uint8).tobytes())
    paths.append(p)
p = os.path.join(out, "empty_folder")
os.mkdir(p)
paths.append(p)
ds = pydicom.dcmread(real)
ds.Rows = 65535
ds.Columns = 65535
ds.NumberOfFrames = 100000
ds.PixelData = b"\0" * 1024
p = os.path.join(out, "absurd_dims.dcm")
ds.save_as(p)
paths.append(p)
ds = pydicom.dcmread(real)
del ds.PixelData
p = os.path.join(out, "no_pixel_data.dcm")
ds.save_as(p)
paths.append(p)
emit({"files": paths})
