"""Python counterpart of examples/bench_segment.rs: the same end-to-end segmentation with
onnxruntime + nibabel + numpy (vectorised; same preprocessing definitions as engine_ref.py,
zscore normalisation, sigmoid output), one run. Prints one JSON line.

    engine_bench.py MODEL VOLUME OUT.nii.gz [THREADS] [BATCH]
"""
import sys
import time

import nibabel as nib
import numpy as np
import onnxruntime as ort

from engine_ref import contract, norm_params, apply_norm, resize

F32 = np.float32


def main():
    model, inp, out = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    c = contract(model, sess)
    h, w = int(c["height"]), int(c["width"])
    thr = float(c.get("threshold", 0.5))
    value = int(__import__("json").loads(c["labels"])[0]["value"])
    iname = sess.get_inputs()[0].name
    t_model = time.perf_counter() - t0
    t = time.perf_counter()
    img = nib.load(inp)
    vol = np.asarray(img.dataobj, dtype=F32)  # x, y, z
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    p = norm_params(c["normalization"], vol)
    slices = np.ascontiguousarray(vol.transpose(2, 1, 0))  # z, y, x: slicewise's order
    Z, rows, cols = slices.shape
    mask = np.zeros((Z, rows, cols), np.uint8)
    run_s = 0.0
    for s in range(0, Z, batch):
        x = resize(apply_norm(slices[s:s + batch], p), h, w)[:, None]
        tr = time.perf_counter()
        prob = sess.run(None, {iname: np.ascontiguousarray(x)})[0]
        run_s += time.perf_counter() - tr
        back = resize(prob[:, 0], rows, cols)
        mask[s:s + batch] = np.where(back > F32(thr), value, 0)
    t_seg = time.perf_counter() - t
    t = time.perf_counter()
    nib.save(nib.Nifti1Image(mask.transpose(2, 1, 0), img.affine), out)
    t_write = time.perf_counter() - t
    total = time.perf_counter() - t0
    print(__import__("json").dumps({
        "impl": "python", "total_s": total, "model_open_s": t_model, "read_s": t_read,
        "segment_s": t_seg, "write_s": t_write, "run_s": run_s,
        "outside_run_pct": 100.0 * (total - run_s) / total,
        "foreground_voxels": int((mask != 0).sum()),
    }))


if __name__ == "__main__":
    main()
