"""Rasterises the COCO polygons of one annotation file: a pixel is inside when its centre
(x + 0.5, y + 0.5) is inside a polygon by the even-odd rule (numpy, vectorised; Pillow's
ImageDraw.polygon is not used as the reference because it also fills the outline and departs
from the centre rule on some edges).

usage: coco_masks.py ANNOTATIONS.json OUT_DIR
Writes OUT_DIR/<file_name>.u8 (height*width bytes, 1 = inside) per image and prints
{"images": {file_name: [height, width, pixels_inside]}}.
"""
import json
import os
import sys

import numpy as np

from common import dump, emit

ann_path, out = sys.argv[1:]
d = json.load(open(ann_path))
polys = {}
for a in d["annotations"]:
    if isinstance(a.get("segmentation"), list):
        polys.setdefault(a["image_id"], []).extend(a["segmentation"])
res = {}
for im in d["images"]:
    h, w = im["height"], im["width"]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    arr = np.zeros((h, w), dtype=bool)
    for p in polys.get(im["id"], []):
        if len(p) < 6:
            continue
        pts = [(p[i], p[i + 1]) for i in range(0, len(p) - 1, 2)]
        inside = np.zeros((h, w), dtype=bool)
        for k in range(len(pts)):
            (x1, y1), (x2, y2) = pts[k], pts[(k + 1) % len(pts)]
            crosses = (y1 <= ys) != (y2 <= ys)
            with np.errstate(divide="ignore", invalid="ignore"):
                xi = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (xs < xi)
        arr |= inside
    arr = arr.astype(np.uint8)
    dump(arr, os.path.join(out, im["file_name"] + ".u8"), dtype="u1")
    res[im["file_name"]] = [im["height"], im["width"], int(arr.sum())]
emit({"images": res})
