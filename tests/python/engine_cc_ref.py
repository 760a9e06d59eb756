"""scipy.ndimage reference for mask cleanup (6-connectivity, scipy's default structure).

    engine_cc_ref.py MASK.u8 Z,Y,X OUTDIR MIN_VOXELS -> OUTDIR/{largest,minsize,fill,all}.u8
"""
import os
import sys

import numpy as np
from scipy import ndimage

from common import dump, emit


def largest(m):
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = np.bincount(lab.ravel())[1:]
    return (lab == (np.argmax(sizes) + 1)).astype(np.uint8)


def minsize(m, k):
    lab, n = ndimage.label(m)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= k
    keep[0] = False
    return keep[lab].astype(np.uint8)


def fill(m):
    return ndimage.binary_fill_holes(m).astype(np.uint8)


def main():
    path, shape, out, k = sys.argv[1:5]
    m = np.fromfile(path, np.uint8).reshape([int(t) for t in shape.split(",")])
    k = int(k)
    _, n = ndimage.label(m)
    res = {"largest": largest(m), "minsize": minsize(m, k), "fill": fill(m),
           "all": fill(largest(minsize(m, k)))}
    for name, a in res.items():
        dump(a, os.path.join(out, name + ".u8"), dtype="u1")
    emit({"components": n})


if __name__ == "__main__":
    main()
