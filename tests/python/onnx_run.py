"""Checks an ONNX model with onnx.checker (full check) and runs it in onnxruntime (CPU).

usage: onnx_run.py MODEL INPUT_F32 N C H W OUTPUT_F32
Reads the raw little-endian float32 input of shape [N, C, H, W], writes the model's first output
as raw float32 to OUTPUT_F32, and prints {"shape", "metadata", "inputs", "outputs", "ops", "opset"}.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort

from common import dump, emit

model_path, inp, n, c, h, w, out = sys.argv[1:]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
x = np.fromfile(inp, dtype="<f4").reshape(int(n), int(c), int(h), int(w))
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
y = sess.run(None, {name: x})[0]
dump(y, out)
emit({
    "shape": list(y.shape),
    "metadata": {p.key: p.value for p in model.metadata_props},
    "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input],
    "outputs": [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output],
    "ops": sorted({nd.op_type for nd in model.graph.node}),
    "opset": [o.version for o in model.opset_import],
})
