"""Benchmark (not a test): pydicom + pylibjpeg reading a DICOM series folder the way a Python
pipeline does: read every file, pixel_array, rescale, sort by position, stack.

usage: bench_dicom_read.py FOLDER [REPEATS]   prints {"min_s", "median_s", "shape"}
"""
import os
import sys
import time

import numpy as np
import pydicom

from common import emit


def read(folder):
    dss = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    iop = np.array(dss[0].ImageOrientationPatient, float)
    n = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), n)))
    return np.stack([d.pixel_array.astype(np.float32) * float(d.get("RescaleSlope", 1))
                     + float(d.get("RescaleIntercept", 0)) for d in dss])


folder = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
vol = read(folder)
times = []
for _ in range(repeats):
    t = time.perf_counter()
    read(folder)
    times.append(time.perf_counter() - t)
times.sort()
emit({"shape": list(vol.shape), "repeats": repeats, "min_s": times[0],
      "median_s": times[len(times) // 2]})
