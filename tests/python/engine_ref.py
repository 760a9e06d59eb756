"""Reference for the segmentation engine: onnxruntime + a numpy reimplementation of the
preprocessing defined in src/infer/preprocess.rs (scripts/engine_prep.py, shared with
scripts/quantize.py; its functions are re-exported here for the other reference scripts).

    engine_ref.py predict MODEL INPUT.f32 N,C,H,W OUTDIR
        -> OUTDIR/probs.f32 (raw model output)
    engine_ref.py pipeline MODEL VOLUME.f32 C,Z,Y,X OUTDIR AXIS TTA [THRESHOLD]
        -> OUTDIR/prep.f32 [S,C,H,W], OUTDIR/back.f32 [S,K,rows,cols] (the crop box's rows and
           cols when the contract crops), OUTDIR/labels.u8 [z,y,x]
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort

from common import dump, emit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from engine_prep import (F32, apply_norm, norm_params, prepare, resize,  # noqa: E402,F401
                         restore)


def contract(model_path, sess):
    props = dict(sess.get_modelmeta().custom_metadata_map)
    for card in (os.path.splitext(model_path)[0] + ".json", model_path + ".json"):
        if os.path.isfile(card) and card != model_path:
            with open(card) as f:
                for k, v in json.load(f).items():
                    k = k if k.startswith("slicewise.") else "slicewise." + k
                    props[k] = v if isinstance(v, str) else json.dumps(v)
            break
    return {k[len("slicewise."):]: v for k, v in props.items() if k.startswith("slicewise.")}


def tta_mean(sess, iname, prep, probs, flips):
    """The mean of the model's outputs over the contract's flips (`h`: the left-right mirror;
    `hv`: also the front-back one and both), each mirrored back, summed in that order."""
    axes = [(-1,)] if flips == "h" else [(-1,), (-2,), (-2, -1)]
    total = probs
    for ax in axes:
        out = sess.run(None, {iname: np.ascontiguousarray(np.flip(prep, ax))})[0]
        total = (total + np.flip(out, ax)).astype(F32)
    return (total * F32(1.0 / (len(axes) + 1))).astype(F32)


def main():
    mode, model_path, in_path, shape, out = sys.argv[1:6]
    shape = [int(t) for t in shape.split(",")]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    x = np.fromfile(in_path, dtype="<f4").reshape(shape)
    if mode == "predict":
        y = sess.run(None, {iname: x})[0]
        dump(y, os.path.join(out, "probs.f32"))
        emit({"shape": list(y.shape)})
        return
    axis, tta = int(sys.argv[6]), sys.argv[7] == "1"
    c = contract(model_path, sess)
    thr = float(sys.argv[8]) if len(sys.argv) > 8 else float(c.get("threshold", 0.5))
    labels = json.loads(c["labels"])
    vaxis = 3 - axis
    prep, box, (top, left, hh, ww), (S, full_rows, full_cols) = prepare(c, x, axis)
    b0, b1, b2, b3 = box
    rows, cols = b1 - b0, b3 - b2
    probs = sess.run(None, {iname: prep})[0]
    dump(probs, os.path.join(out, "probs.f32"))
    if tta:
        probs = tta_mean(sess, iname, prep, probs, c.get("tta_flips", "h"))
    back = restore(probs, box, (top, left, hh, ww))
    if c["output_kind"] == "sigmoid":
        lab = np.where(back[:, 0] > F32(thr), labels[0]["value"], 0).astype(np.uint8)
    else:
        values = np.array([0] + [l["value"] for l in labels], np.uint8)
        lab = values[np.argmax(back, axis=1)]
    whole = np.zeros((S, full_rows, full_cols), np.uint8)
    whole[:, b0:b1, b2:b3] = lab
    lab = whole
    # Back to the volume's [z, y, x] order.
    lab = np.moveaxis(lab, 0, vaxis - 1)
    dump(prep, os.path.join(out, "prep.f32"))
    dump(back, os.path.join(out, "back.f32"))
    dump(lab, os.path.join(out, "labels.u8"), dtype="u1")
    emit({"slices": S, "classes": int(probs.shape[1]), "rows": rows, "cols": cols,
          "crop": [int(b) for b in box], "full": [full_rows, full_cols]})


if __name__ == "__main__":
    main()
