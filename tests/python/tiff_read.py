"""tifffile's view of a stack written by slicewise.

Usage: tiff_read.py FILE OUT.f32. Dumps the voxels as [c, z, y, x] (RGB pages -> channels,
ImageJ hyperstack (Z, C, Y, X) -> channels) and prints shape, dtype, compression and the spacing
[x, y, z] in mm from the ImageJ metadata and X/YResolution.
"""
import sys

import numpy as np
import tifffile

from common import dump, emit

path, out = sys.argv[1], sys.argv[2]
with tifffile.TiffFile(path) as tf:
    arr = tf.asarray()
    axes = tf.series[0].axes
    ij = tf.imagej_metadata
    page = tf.pages[0]
    xr = page.tags["XResolution"].value
    yr = page.tags["YResolution"].value
    compression = int(page.compression)
    photometric = int(page.photometric)
a = arr
if photometric == 2:  # RGB pages: (Z, Y, X, S)
    if a.ndim == 3:
        a = a[np.newaxis]
    a = np.transpose(a, (3, 0, 1, 2))
elif "C" in axes:  # hyperstack (Z, C, Y, X)
    a = np.transpose(a, (1, 0, 2, 3))
else:
    if a.ndim == 2:
        a = a[np.newaxis]
    a = a[np.newaxis]
dump(a, out)
scale = {"mm": 1.0, "um": 1e-3, "micron": 1e-3}[ij["unit"]]
emit({
    "shape": list(arr.shape),
    "axes": axes,
    "dtype": str(arr.dtype),
    "compression": compression,
    "spacing": [xr[1] / xr[0] * scale, yr[1] / yr[0] * scale, ij["spacing"] * scale],
})
