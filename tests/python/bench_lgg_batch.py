"""Python counterpart of `slicewise segment` on LGG patient folders: one onnxruntime session,
a loop over the patients doing what the CLI does per job (read the numbered slices with tifffile,
preprocess them as the engine does with engine_ref.prepare: normalisation, foreground crop,
bilinear resize; batched inference, resize back into the crop box, threshold, write an LZW TIFF
mask). Prints one JSON line.

    bench_lgg_batch.py MODEL OUT_DIR THREADS BATCH PATIENT_DIR...
"""
import json
import os
import re
import sys
import time

import numpy as np
import onnxruntime as ort
import tifffile

from engine_ref import contract, prepare, restore

F32 = np.float32


def slices(d):
    files = []
    for f in os.listdir(d):
        m = re.match(r"^(.*)_(\d+)\.tif$", f)
        if m:
            files.append((int(m.group(2)), os.path.join(d, f)))
    return [p for _, p in sorted(files)]


def main():
    model, out, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    patients = sys.argv[5:]
    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    c = contract(model, sess)
    thr = float(c.get("threshold", 0.5))
    iname = sess.get_inputs()[0].name
    os.makedirs(out, exist_ok=True)
    fg = 0
    for d in patients:
        vol = np.stack([tifffile.imread(p) for p in slices(d)]).astype(F32)  # z, y, x[, c]
        vol = np.moveaxis(vol, -1, 0) if vol.ndim == 4 else vol[None]  # c, z, y, x
        # The engine's preprocessing (normalisation, foreground crop, resize), axial slices.
        prep, box, placement, (Z, rows, cols) = prepare(c, vol, 2)
        b0, b1, b2, b3 = box
        mask = np.zeros((Z, rows, cols), np.uint8)
        for s in range(0, Z, batch):
            prob = sess.run(None, {iname: np.ascontiguousarray(prep[s:s + batch])})[0]
            back = restore(prob, box, placement)[:, 0]
            mask[s:s + batch, b0:b1, b2:b3] = np.where(back > F32(thr), 1, 0)
        tifffile.imwrite(os.path.join(out, os.path.basename(d.rstrip("/")) + "_mask.tif"), mask,
                         compression="lzw")
        fg += int(mask.sum())
    print(json.dumps({"impl": "python", "patients": len(patients), "total_s": time.perf_counter() - t0,
                      "foreground_voxels": fg}))


if __name__ == "__main__":
    main()
