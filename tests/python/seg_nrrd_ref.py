"""NRRD label maps (pynrrd) resampled by index onto a target grid, for the SEG reader tests.

usage: seg_nrrd_ref.py OUT_DIR GRID_JSON NRRD...

GRID_JSON: {"shape": [z, y, x], "origin": [3], "spacing": [3], "direction": [[3]x3] (LPS,
direction[r][c])}. Each target voxel centre is taken to LPS and into the NRRD's index space
through its header (space origin, space directions; "space" must be LPS or RAS); it must land on
an integer index (the maximum distance is reported). For each label value v > 0 found in any NRRD,
OUT_DIR/label_<v>.u8 holds (nrrd == v) on the target grid, [z, y, x], OR-ed over the NRRDs.
Prints JSON {"labels": [...], "max_index_error": e, "outside": n}.
"""
import json
import os
import sys

import nrrd
import numpy as np

from common import emit

out, grid = sys.argv[1], json.loads(sys.argv[2])
shape = grid["shape"]
A = np.array(grid["direction"], float) * np.array(grid["spacing"], float)[None, :]
k, j, i = np.indices(shape).reshape(3, -1)
lps = np.array(grid["origin"], float)[:, None] + A @ np.vstack([i, j, k])
masks = {}
err = 0.0
outside = 0
for path in sys.argv[3:]:
    data, h = nrrd.read(path)  # data axes follow the header's axis order (i fastest in file)
    dirs = np.array(h["space directions"], float).T  # columns: axis vectors
    origin = np.array(h["space origin"], float)
    space = h.get("space", "left-posterior-superior")
    pts = lps.copy()
    if space in ("right-anterior-superior", "RAS"):
        pts[:2] *= -1
    elif space not in ("left-posterior-superior", "LPS"):
        raise SystemExit(f"unsupported NRRD space {space}")
    idx = np.linalg.inv(dirs) @ (pts - origin[:, None])
    r = np.rint(idx).astype(np.int64)
    err = max(err, float(np.abs(idx - r).max()))
    ok = np.all((r >= 0) & (r < np.array(data.shape)[:, None]), axis=0)
    outside += int((~ok).sum())
    vals = np.zeros(r.shape[1], data.dtype)
    vals[ok] = data[r[0, ok], r[1, ok], r[2, ok]]
    for v in np.unique(vals):
        if v > 0:
            m = masks.setdefault(int(v), np.zeros(r.shape[1], np.uint8))
            m |= (vals == v).astype(np.uint8)
for v, m in masks.items():
    m.tofile(os.path.join(out, f"label_{v}.u8"))
emit({"labels": sorted(masks), "max_index_error": err, "outside": outside})
