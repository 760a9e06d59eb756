"""The Python of scripts/quantize (which documents the command line and runs this from the
repository root with the project's .venv): static int8 quantisation of a bundled model and its
card, in two steps around the int8 model's evaluation.

    quantize.py int8 MODEL.onnx OUT.int8.onnx DATA CALIBRATION_VOLUMES
        Quantises (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on the
        slices of the first CALIBRATION_VOLUMES volumes of the card's train split, preprocessed
        as the engine does: engine_prep.prepare), copies the fp32 model's `slicewise.*`
        metadata, writes OUT.int8.onnx and OUT.int8.card.json (the fp32 card with the
        quantisation recorded, its evaluation kept as `fp32_evaluation`). Deterministic.
    quantize.py record-evaluation OUT.int8.card.json EVAL.json
        Puts the int8 model's evaluation into its card, removes EVAL.json, and exits 1 when the
        int8 model loses more than 0.01 test Dice against the fp32 figures.
"""
import hashlib
import json
import os
import sys
import tempfile

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
import tifffile
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from engine_prep import prepare

#: The most test Dice the int8 model may lose against fp32 and still ship.
MAX_DICE_LOSS = 0.01


def nifti_volume(data, name):
    """An MSD volume as the engine's [C, Z, Y, X]."""
    x = np.asarray(nib.load(os.path.join(data, "images", name + ".nii.gz")).dataobj, dtype=np.float32)
    if x.ndim == 4:
        x = x[..., 0]
    return x.T[None]


def pairs_volume(data, name):
    """An LGG patient (lgg/ RGB or lgg-flair/ grey slices) as the engine's [C, Z, Y, X]."""
    folder = next(os.path.join(data, d, name) for d in ("lgg", "lgg-flair")
                  if os.path.isdir(os.path.join(data, d, name)))
    n = len([f for f in os.listdir(folder) if f.endswith("_mask.tif")])
    planes = np.stack([tifffile.imread(os.path.join(folder, f"{name}_{i}.tif"))
                       for i in range(1, n + 1)]).astype(np.float32)
    return np.moveaxis(planes, -1, 0) if planes.ndim == 4 else planes[None]


def slices(card, contract, data, name):
    """The volume's slices as the engine feeds them: [S, C, h, w] float32."""
    read = pairs_volume if card["data"]["kind"] == "Pairs" else nifti_volume
    return prepare(contract, read(data, name), int(card["data"]["axis"]))[0]


class Reader(CalibrationDataReader):
    """Batches of 16 calibration slices."""

    def __init__(self, input_name, x, volumes):
        self.batches = iter([{input_name: x[i:i + 16]} for i in range(0, len(x), 16)])
        print(f"quantize: {len(x)} calibration slices from {volumes} training volumes", file=sys.stderr)

    def get_next(self):
        return next(self.batches, None)


def quantized(model_path, calibration):
    """The int8 QDQ model of `model_path`, calibrated on `calibration(input_name)`'s reader."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(model_path, pre, skip_symbolic_shape=True)
        name = ort.InferenceSession(pre, providers=["CPUExecutionProvider"]).get_inputs()[0].name
        raw = os.path.join(tmp, "int8.onnx")
        quantize_static(pre, raw, calibration(name), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return onnx.load(raw)


def write_model(q, props, out_path):
    """Writes `q` atomically with the fp32 model's metadata, key for key (the contract travels in
    the file); returns the file's bytes."""
    del q.metadata_props[:]
    for k, v in props.items():
        q.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(q)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp_out = out_path + ".part"
    onnx.save(q, tmp_out)
    os.replace(tmp_out, out_path)
    with open(out_path, "rb") as f:
        return f.read()


def write_json(obj, path):
    """Writes `obj` as indented JSON, atomically."""
    with open(path + ".part", "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(path + ".part", path)


def int8_card(card, model_path, out_path, n_volumes, n_train, blob):
    """The int8 card: the fp32 card (split, contract) with the quantisation and this file's
    identity; the fp32 figures stay, named as such (scripts/evaluate-* gives the int8 ones)."""
    card["quantization"] = {
        "tool": f"onnxruntime {ort.__version__} quantize_static",
        "format": "QDQ", "weights": "int8 per-channel", "activations": "uint8 per-tensor",
        "calibration": f"MinMax over the slices of the first {n_train} volumes of the train split",
        "from": os.path.basename(model_path), "from_sha256": card.get("sha256"),
        "reproduce": f"scripts/quantize {model_path} {out_path} <DATA> {n_volumes}",
    }
    card["fp32_evaluation"] = card.pop("evaluation", None)
    card.pop("metrics", None)
    card["sha256"] = hashlib.sha256(blob).hexdigest()
    card["bytes"] = len(blob)
    return card


def int8(model_path, out_path, data, n_volumes):
    """The `int8` step: the quantised model and its card, next to each other."""
    card_path = model_path[: -len(".onnx")] + ".card.json"
    card = json.load(open(card_path))
    if not card.get("evaluation"):
        # The int8 model ships only within MAX_DICE_LOSS of the fp32 figures, read from this card.
        sys.exit(f"quantize: {card_path} has no evaluation yet: evaluate the fp32 model and finish its card first")
    props = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    contract = {k[len("slicewise."):]: v for k, v in props.items() if k.startswith("slicewise.")}
    train = card["split"]["train"][:n_volumes]

    def calibration(input_name):
        x = np.concatenate([slices(card, contract, data, v) for v in train])
        return Reader(input_name, x, len(train))

    blob = write_model(quantized(model_path, calibration), props, out_path)
    card_out = out_path[: -len(".onnx")] + ".card.json"
    write_json(int8_card(card, model_path, out_path, n_volumes, len(train), blob), card_out)
    print(f"quantize: wrote {out_path} ({len(blob)} bytes) and {card_out}", file=sys.stderr)


def dice_pairs(card, ev):
    """(name, int8 Dice, fp32 Dice): every label's test Dice, or the tumour model's test mean
    volume Dice."""
    if "mean" in ev:
        return [(name, m["dice"], card["fp32_evaluation"]["mean"][name]["dice"])
                for name, m in ev["mean"].items()]
    return [("test mean volume", ev["test"]["mean_volume_dice"],
             card["fp32_evaluation"]["test"]["mean_volume_dice"])]


def record_evaluation(card_path, eval_path):
    """The `record-evaluation` step: the int8 figures into the card; refuses a lossy model."""
    card, ev = json.load(open(card_path)), json.load(open(eval_path))
    card["evaluation"] = ev
    write_json(card, card_path)
    os.remove(eval_path)
    worst = 0.0
    for name, q, fp32 in dice_pairs(card, ev):
        print(f"quantize: {name}: test Dice int8 {q:.4f}, fp32 {fp32:.4f}", file=sys.stderr)
        worst = max(worst, fp32 - q)
    if worst > MAX_DICE_LOSS:
        sys.exit(f"quantize: int8 loses {worst:.4f} Dice (> {MAX_DICE_LOSS}): do not ship it")


def main(argv):
    usage = __doc__.split("\n\n")[1]
    if argv[:1] == ["int8"] and len(argv) == 5:
        int8(argv[1], argv[2], argv[3], int(argv[4]))
    elif argv[:1] == ["record-evaluation"] and len(argv) == 3:
        record_evaluation(argv[1], argv[2])
    else:
        sys.exit("usage:\n" + usage)


if __name__ == "__main__":
    main(sys.argv[1:])
