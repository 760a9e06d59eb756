"""Benchmark (not a test): nibabel's load + get_fdata(dtype=float32) time for one file.

usage: nifti_bench.py FILE [REPEATS]   (prints one JSON object)
"""
import sys
import time

import nibabel as nib

from common import emit

path = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
times = []
for _ in range(repeats):
    t = time.perf_counter()
    data = nib.load(path).get_fdata(dtype="float32")
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
emit({"file": path, "shape": list(data.shape), "best_ms": times[0],
      "median_ms": times[len(times) // 2], "runs": repeats})
