"""Reference view of an LGG patient folder: tifffile reads every slice, ordered by the slice
number parsed here (int of the last digit run), masks apart.

Usage: tiff_lgg.py DIR OUTDIR. Writes OUTDIR/image.f32 ([3, z, 256, 256]) and OUTDIR/mask.f32
([1, z, 256, 256]); prints {"images": [names in order], "masks": [names]}.
"""
import os
import re
import sys

import numpy as np
import tifffile

from common import dump, emit

d, out = sys.argv[1], sys.argv[2]
names = [n for n in os.listdir(d) if n.lower().endswith((".tif", ".tiff"))]
masks = [n for n in names if n.rsplit(".", 1)[0].endswith("_mask")]
images = [n for n in names if n not in masks]
images.sort(key=lambda n: int(re.findall(r"\d+", n)[-1]))
mask_for = [n.rsplit(".", 1)[0] + "_mask.tif" for n in images]
img = np.stack([tifffile.imread(os.path.join(d, n)) for n in images])  # z, y, x, 3
msk = np.stack([tifffile.imread(os.path.join(d, n)) for n in mask_for])  # z, y, x
dump(np.transpose(img, (3, 0, 1, 2)), os.path.join(out, "image.f32"))
dump(msk[np.newaxis], os.path.join(out, "mask.f32"))
emit({"images": images, "masks": mask_for})
