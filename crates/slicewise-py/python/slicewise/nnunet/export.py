"""torch -> ONNX: the fold networks built the way nnUNetPredictor builds them, one graph averaging
their logits, exported once with the TorchScript exporter (opset 17, dynamic batch), checked
against torch in ONNX Runtime, and written atomically with the contract in its metadata.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .contract import INPUT_NAME, OUTPUT_NAME, metadata
from .results import Checkpoint, Refusal, ResultsFolder, load_checkpoints

OPSET = 17
TOLERANCE = 1e-4  # max |ONNX Runtime - torch| on a random batch of tiles


@dataclass
class ExportReport:
    """What an export did, for the command's summary line."""

    out: Path
    folds: list
    bytes: int
    seconds: float
    max_abs_diff: float


def build_network(r: ResultsFolder, first: Checkpoint):
    """The network exactly as initialize_from_trained_model_folder builds it (deep supervision off)."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    pm = PlansManager(r.plans)
    cm = pm.get_configuration(r.configuration)
    n_in = determine_num_input_channels(pm, cm, r.dataset)
    n_out = pm.get_label_manager(r.dataset).num_segmentation_heads
    name = first.state.get("trainer_name", r.trainer)
    try:
        # nnU-Net narrates its search on stdout; the command's own output stays one line.
        with contextlib.redirect_stdout(io.StringIO()):
            trainer = recursive_find_trainer_class_by_name(name)
    except RuntimeError:
        raise Refusal(f"trainer class '{name}' not found in nnunetv2 nor in nnUNet_extTrainer; "
                      "pass --trainer-dir FOLDER holding its module") from None
    if "plans_manager" in inspect.signature(trainer.build_network_architecture).parameters:
        return trainer.build_network_architecture(pm, cm, n_in, n_out, enable_deep_supervision=False)
    return trainer.build_network_architecture(cm.network_arch_class_name, cm.network_arch_init_kwargs,
                                              cm.network_arch_init_kwargs_req_import, n_in, n_out,
                                              enable_deep_supervision=False)


def fold_networks(r: ResultsFolder, checkpoints: List[Checkpoint]):
    """One eval-mode network per fold, each with its checkpoint's weights."""
    nets = []
    for ck in checkpoints:
        net = build_network(r, checkpoints[0])
        try:
            net.load_state_dict(ck.state["network_weights"])
        except RuntimeError as e:
            first_line = str(e).strip().splitlines()[0]
            raise Refusal(f"{ck.path}: weights do not fit the planned network: {first_line}") from None
        nets.append(net.eval())
    return nets


def fold_mean(nets):
    """A module whose output is the mean of the folds' logits (the network itself for one fold)."""
    import torch

    if len(nets) == 1:
        return nets[0]

    class FoldMean(torch.nn.Module):
        """Mean of K networks' logits: nnU-Net averages folds' logits, and all later steps are linear."""

        def __init__(self, members):
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x):
            out = self.members[0](x)
            for m in self.members[1:]:
                out = out + m(x)
            return out / len(self.members)

    return FoldMean(nets).eval()


def to_onnx(module, channels: int, patch: List[int], path: Path) -> None:
    """torch.onnx.export with the TorchScript exporter (dynamo=False), opset 17, dynamic N."""
    import torch

    dummy = torch.zeros(1, channels, *patch)
    with torch.no_grad():
        torch.onnx.export(module, dummy, str(path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}})


def max_difference(module, path: Path, channels: int, patch: List[int]) -> float:
    """Max |ONNX Runtime - torch| over a seeded random batch of 3 tiles (also checks the dynamic N)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    x = torch.randn(3, channels, *patch, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = module(x).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    if got.shape != want.shape:
        raise Refusal(f"the exported graph gives shape {got.shape}, torch {want.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - want)))


def write_metadata(src: Path, dst: Path, keys: dict) -> None:
    """Adds the contract to the exported graph, checks it, and moves it into place atomically."""
    import onnx

    model = onnx.load(str(src))
    del model.metadata_props[:]
    for k, v in keys.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model, full_check=True)
    part = dst.with_name(dst.name + ".part")
    onnx.save(model, str(part))
    os.replace(part, dst)


def export(r: ResultsFolder, out: Path, name: Optional[str], version: str, exported_by: str) -> ExportReport:
    """The whole export: checkpoints -> one ONNX model with the tiled contract at `out`."""
    import torch

    start = time.perf_counter()
    checkpoints = load_checkpoints(r)
    nets = fold_networks(r, checkpoints)
    module = fold_mean(nets)
    model_name = name or f"{r.plans.get('dataset_name', r.path.parent.name)}-{r.configuration}"
    keys = metadata(r, checkpoints, model_name, version, exported_by)
    channels, patch = int(keys["slicewise.channels"]), [int(keys["slicewise.height"]), int(keys["slicewise.width"])]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".nnunet-export-") as tmp:
        raw = Path(tmp) / "graph.onnx"
        try:
            to_onnx(module, channels, patch, raw)
        except Exception as e:  # noqa: BLE001 - any exporter failure means the network does not export
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise Refusal(f"the network ({type(nets[0]).__name__}) does not export to ONNX: {msg}") from None
        diff = max_difference(module, raw, channels, patch)
        if not diff <= TOLERANCE:
            raise Refusal(f"the exported graph differs from torch by {diff:.3g} (> {TOLERANCE}): not exported")
        write_metadata(raw, out, keys)
    del torch
    return ExportReport(out, [c.fold for c in checkpoints], out.stat().st_size, time.perf_counter() - start, diff)
