"""Makes the tiny U-Net-like ONNX test models in tests/data (and larger benchmark variants).

    .venv/bin/python tests/python/make_test_model.py tests/data          # committed fixtures
    .venv/bin/python tests/python/make_test_model.py --bench DIR        # benchmark model (not committed)

Graph: Conv3x3(C->F) Relu -> MaxPool2 -> Conv3x3(F->2F) Relu -> ConvTranspose2x2/2(2F->F) -> Concat(skip)
-> Conv3x3(2F->F) Relu -> Conv1x1(F->K) -> Sigmoid (K=1) or Softmax(axis=1) (K=3). Fixed random
weights (seeded), dynamic batch N, fixed H/W, `slicewise.*` metadata (the model package spec in
src/infer/model.rs). Also writes models that must be refused (contract tests).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_w(rng, cout, cin, k):
    fan_in = cin * k * k
    return (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def unet(kind, size=64, cin=1, f=8, k_out=None, seed=0, batch="N", meta=None, name="unet"):
    """`size` is a side or (height, width); kind `logits`/`regions` outputs the raw scores."""
    rng = np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    if k_out is None:
        k_out = 1 if kind == "sigmoid" else 3
    inits, nodes = [], []

    def init(nm, arr):
        inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def conv(x, cout, cinn, k, out, relu=True):
        w = init(out + "_w", conv_w(rng, cout, cinn, k))
        b = init(out + "_b", (rng.standard_normal(cout) * 0.1).astype(np.float32))
        pad = k // 2
        y = out if not relu else out + "_pre"
        nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], pads=[pad] * 4))
        if relu:
            nodes.append(helper.make_node("Relu", [y], [out]))
        return out

    e1 = conv("image", f, cin, 3, "enc1")
    nodes.append(helper.make_node("MaxPool", [e1], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]))
    e2 = conv("pool1", 2 * f, f, 3, "enc2")
    wt = init("up_w", (rng.standard_normal((2 * f, f, 2, 2)) * 0.3).astype(np.float32))
    bt = init("up_b", (rng.standard_normal(f) * 0.1).astype(np.float32))
    nodes.append(helper.make_node("ConvTranspose", [e2, wt, bt], ["up1"], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Concat", ["up1", e1], ["cat1"], axis=1))
    d1 = conv("cat1", f, 2 * f, 3, "dec1")
    logits = conv(d1, k_out, f, 1, "logits", relu=False)
    out = "prob"
    if kind == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [logits], ["prob"]))
    elif kind == "softmax":
        nodes.append(helper.make_node("Softmax", [logits], ["prob"], axis=1))
    else:
        out = logits

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, cin, h, w])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, k_out, h, w])
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="slicewise-test")
    model.ir_version = 8
    for k, v in (meta or {}).items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model, full_check=True)
    return model


def meta_for(kind, size=64, channels=1, normalization="zscore"):
    if kind == "sigmoid":
        labels = [{"value": 1, "name": "foreground", "color": [255, 0, 0]}]
    else:
        labels = [
            {"value": 1, "name": "class one", "color": [255, 0, 0]},
            {"value": 2, "name": "class two", "color": [0, 255, 0]},
        ]
    return {
        "slicewise.name": f"test-unet-{kind}",
        "slicewise.version": "0.1.0",
        "slicewise.input": "image",
        "slicewise.output": "prob",
        "slicewise.layout": "NCHW",
        "slicewise.height": str(size),
        "slicewise.width": str(size),
        "slicewise.channels": str(channels),
        "slicewise.source_channels": ",".join(["0"] * channels),
        "slicewise.normalization": normalization,
        "slicewise.keep_aspect": "false",
        "slicewise.output_kind": kind,
        "slicewise.threshold": "0.5",
        "slicewise.labels": json.dumps(labels),
        "slicewise.training_data": "none: fixed random weights for tests (tests/python/make_test_model.py)",
    }


def tiled_spec(normalization, transpose=(2, 0, 1), spacing=(1.0, 1.0), patch=(24, 20)):
    """A `slicewise.tiled` object as an nnU-Net 2d configuration would give it."""
    return {
        "transpose": list(transpose),
        "spacing": list(spacing),
        "patch": list(patch),
        "step": 0.5,
        "crop_nonzero": True,
        "mirror_axes": [0, 1],
        "resample_data": {"order": 3, "order_z": 0, "force_separate_z": None},
        "resample_logits": {"order": 1, "order_z": 0, "force_separate_z": None},
        "anisotropy_threshold": 3.0,
        "normalization": normalization,
    }


def tiled_meta(name, spec, channel_names, kind="logits"):
    labels = [
        {"value": 1, "name": "anterior", "color": [255, 0, 0]},
        {"value": 2, "name": "posterior", "color": [0, 255, 0]},
    ]
    return {
        "slicewise.name": name,
        "slicewise.version": "0.1.0",
        "slicewise.preprocess": "tiled",
        "slicewise.tiled": json.dumps(spec),
        "slicewise.channels": str(len(channel_names)),
        "slicewise.channel_names": json.dumps(channel_names),
        "slicewise.output_kind": kind,
        "slicewise.labels": json.dumps(labels),
        "slicewise.provenance": json.dumps({"source": "tests/python/make_test_model.py", "weights": "random"}),
        "slicewise.training_data": "none: fixed random weights for tests (tests/python/make_test_model.py)",
    }


def balanced(model, cin, seed):
    """Random weights give one class almost everywhere: rescale and shift the last layer so that
    on smooth random input every class wins somewhere (each class's logit mean 0, spread 3)."""
    import onnxruntime as ort
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal((64, cin, 24, 20)), (0, 0, 2, 2)).astype(np.float32) * 3
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"image": x})[0]
    mean, std = y.mean((0, 2, 3)), y.std((0, 2, 3)) + 1e-6
    inits = {i.name: i for i in model.graph.initializer}
    w = numpy_helper.to_array(inits["logits_w"]) * (3.0 / std)[:, None, None, None]
    b = (numpy_helper.to_array(inits["logits_b"]) - mean) * (3.0 / std)
    inits["logits_w"].CopyFrom(numpy_helper.from_array(w.astype(np.float32), "logits_w"))
    inits["logits_b"].CopyFrom(numpy_helper.from_array(b.astype(np.float32), "logits_b"))
    return model


def tiled_models(out):
    """Tiled-family fixtures: random weights, raw scores, patch 24x20, dynamic batch."""
    two = tiled_spec([{"scheme": "zscore", "use_mask": False}, {"scheme": "rescale01"}])
    m = unet("logits", size=(24, 20), cin=2, k_out=3, seed=5, meta=tiled_meta("test-tiled-2ch", two, ["T1", "T1 mirrored"]))
    save(balanced(m, 2, 5), os.path.join(out, "unet_tiled.onnx"))
    ct = tiled_spec([{"scheme": "ct", "lower": -200.0, "upper": 300.0, "mean": 60.0, "std": 80.0}], transpose=(0, 1, 2), spacing=(2.0, 2.0))
    m = unet("logits", size=(24, 20), cin=1, k_out=3, seed=6, meta=tiled_meta("test-tiled-ct", ct, ["CT"]))
    save(balanced(m, 1, 6), os.path.join(out, "unet_tiled_ct.onnx"))


def save(model, path):
    onnx.save(model, path)
    print(path, os.path.getsize(path), file=sys.stderr)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        out = sys.argv[2]
        os.makedirs(out, exist_ok=True)
        m = meta_for("sigmoid", size=256)
        m["slicewise.name"] = "bench-unet-sigmoid"
        save(unet("sigmoid", size=256, f=16, seed=3, meta=m), os.path.join(out, "bench_unet.onnx"))
        return
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data"
    os.makedirs(out, exist_ok=True)
    save(unet("sigmoid", seed=1, meta=meta_for("sigmoid")), os.path.join(out, "unet_sigmoid.onnx"))
    save(unet("softmax", seed=2, meta=meta_for("softmax")), os.path.join(out, "unet_softmax.onnx"))
    # Two input channels (e.g. FLAIR + T1c, one file each): source channels 0 and 1.
    two = meta_for("softmax", channels=2)
    two["slicewise.name"] = "test-unet-2ch"
    two["slicewise.source_channels"] = "0,1"
    two["slicewise.channel_names"] = json.dumps(["FLAIR", "T1c"])
    save(unet("softmax", cin=2, seed=4, meta=two), os.path.join(out, "unet_2ch.onnx"))
    # 2.5D context k = 1: one source channel entering the graph as slices z-1, z, z+1, with the
    # tumour model's normalisation and foreground crop.
    ctx = meta_for("sigmoid", channels=1, normalization="percentile-tissue:1,99,0.4")
    ctx["slicewise.name"] = "test-unet-context"
    ctx["slicewise.context_slices"] = "1"
    ctx["slicewise.crop_foreground"] = "0.1"
    ctx["slicewise.tta_flips"] = "hv"
    save(unet("sigmoid", cin=3, seed=7, meta=ctx), os.path.join(out, "unet_context.onnx"))
    # Two source channels with context k = 1: six graph channels, channel-major (source 0 at
    # z-1, z, z+1, then source 1), so the engine's stacking order is tested, not just its edges.
    ctx2 = meta_for("softmax", channels=2)
    ctx2["slicewise.name"] = "test-unet-context-2ch"
    ctx2["slicewise.source_channels"] = "0,1"
    ctx2["slicewise.context_slices"] = "1"
    save(unet("softmax", cin=6, seed=8, meta=ctx2), os.path.join(out, "unet_context_2ch.onnx"))
    # Refused: no slicewise metadata at all.
    save(unet("sigmoid", seed=1, meta={}), os.path.join(out, "unet_nometa.onnx"))
    # Refused: declares 3 channels but the graph takes 1.
    bad = meta_for("sigmoid", channels=3)
    save(unet("sigmoid", seed=1, meta=bad), os.path.join(out, "unet_badchannels.onnx"))
    # Refused: NHWC layout.
    nhwc = meta_for("sigmoid")
    nhwc["slicewise.layout"] = "NHWC"
    save(unet("sigmoid", seed=1, meta=nhwc), os.path.join(out, "unet_nhwc.onnx"))
    tiled_models(out)


if __name__ == "__main__":
    main()
