"""The slicewise model contract of an imported nnU-Net model: the `slicewise.*` metadata keys of
/work/notes/nnunet-contract.md (preprocess = tiled), built from plans.json, dataset.json and the
fold checkpoints.
"""

from __future__ import annotations

import colorsys
import json
from typing import Any, Dict, List, Optional

from .results import Checkpoint, ResultsFolder, Refusal, channel_names, mirror_axes

# Okabe-Ito colour-blind-safe palette (the bundled models use it), then evenly spaced hues.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (153, 153, 153)]

INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def colour(i: int) -> List[int]:
    """A distinct display colour for the i-th label (0-based)."""
    if i < len(PALETTE):
        return list(PALETTE[i])
    h = ((i - len(PALETTE)) * 0.618033988749895) % 1.0
    return [round(255 * v) for v in colorsys.hsv_to_rgb(h, 0.75, 0.95)]


def normalization_entry(scheme: str, use_mask: bool, props: Optional[Dict[str, Any]], channel: int) -> Dict[str, Any]:
    """One channel's `normalization` entry of the tiled object (default_normalization_schemes.py)."""
    if scheme == "ZScoreNormalization":
        return {"scheme": "zscore", "use_mask": bool(use_mask)}
    if scheme == "CTNormalization":
        if not props:
            raise Refusal(f"CTNormalization on channel {channel} but plans.json has no "
                          "foreground_intensity_properties_per_channel for it")
        return {"scheme": "ct", "lower": float(props["percentile_00_5"]), "upper": float(props["percentile_99_5"]),
                "mean": float(props["mean"]), "std": float(props["std"])}
    simple = {"NoNormalization": "none", "RescaleTo01Normalization": "rescale01", "RGBTo01Normalization": "rgb01"}
    if scheme in simple:
        return {"scheme": simple[scheme]}
    raise Refusal(f"normalization scheme '{scheme}' is not supported")


def resample_kwargs(kw: Dict[str, Any]) -> Dict[str, Any]:
    """nnU-Net's resampling kwargs without is_seg (always False for data and logits)."""
    return {"order": int(kw["order"]), "order_z": int(kw["order_z"]), "force_separate_z": kw.get("force_separate_z")}


def tiled_object(r: ResultsFolder, first: Checkpoint) -> Dict[str, Any]:
    """The `slicewise.tiled` object: everything the engine needs to preprocess and tile like nnU-Net."""
    from nnunetv2.configuration import ANISO_THRESHOLD

    c = r.config
    props = r.plans.get("foreground_intensity_properties_per_channel", {})
    use_mask = c.get("use_mask_for_norm", [False] * len(c["normalization_schemes"]))
    return {
        "transpose": [int(a) for a in r.plans["transpose_forward"]],
        "spacing": [float(s) for s in c["spacing"]],
        "patch": [int(p) for p in c["patch_size"]],
        "step": 0.5,  # nnUNetv2_predict's default -step_size
        "crop_nonzero": True,  # DefaultPreprocessor always crops to the nonzero box
        "mirror_axes": mirror_axes(first),
        "resample_data": resample_kwargs(c["resampling_fn_data_kwargs"]),
        "resample_logits": resample_kwargs(c["resampling_fn_probabilities_kwargs"]),
        "anisotropy_threshold": float(ANISO_THRESHOLD),
        "normalization": [normalization_entry(s, use_mask[i], props.get(str(i)), i)
                          for i, s in enumerate(c["normalization_schemes"])],
    }


def label_manager(r: ResultsFolder):
    """nnU-Net's own LabelManager for this dataset (labels or regions, heads)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    return PlansManager(r.plans).get_label_manager(r.dataset)


def labels_and_kind(r: ResultsFolder) -> tuple[str, List[Dict[str, Any]]]:
    """`slicewise.output_kind` and `slicewise.labels`: one entry per foreground head, names from dataset.json."""
    lm = label_manager(r)
    names = list(r.dataset["labels"].items())
    if lm.has_regions:
        order = r.dataset.get("regions_class_order")
        regions = [(n, v) for n, v in names if n != "background" and n != "ignore"]
        if order is None or len(order) != len(regions):
            raise Refusal(f"region-based dataset.json needs regions_class_order with {len(regions)} entries, has {order}")
        return "regions", [{"value": int(order[i]), "name": n, "color": colour(i)} for i, (n, _) in enumerate(regions)]
    by_value = {int(v): n for n, v in names if n != "ignore"}
    fg = [int(v) for v in lm.all_labels if v != 0]
    if fg != list(range(1, len(fg) + 1)):
        raise Refusal(f"labels {lm.all_labels} are not consecutive: nnU-Net's argmax index would not be the label value")
    return "logits", [{"value": v, "name": by_value[v], "color": colour(i)} for i, v in enumerate(fg)]


def provenance(r: ResultsFolder, checkpoints: List[Checkpoint], exported_by: str) -> Dict[str, Any]:
    """Carried and shown, never interpreted: where the weights came from, with digests."""
    from importlib.metadata import version

    return {
        "source": "nnU-Net",
        "nnunet_version": version("nnunetv2"),
        "dataset": r.plans.get("dataset_name", r.path.parent.name),
        "trainer": checkpoints[0].state.get("trainer_name", r.trainer),
        "plans": r.plans.get("plans_name", r.plans_name),
        "configuration": r.configuration,
        "folds": [c.fold for c in checkpoints],
        "checkpoint": r.checkpoint_name,
        "checkpoint_sha256": {str(c.fold): c.sha256 for c in checkpoints},
        "exported_by": exported_by,
    }


def metadata(r: ResultsFolder, checkpoints: List[Checkpoint], name: str, version: str,
             exported_by: str) -> Dict[str, str]:
    """All `slicewise.*` keys as the strings written into the ONNX metadata_props."""
    kind, labels = labels_and_kind(r)
    tiled = tiled_object(r, checkpoints[0])
    channels = channel_names(r.dataset)
    keys: Dict[str, Any] = {
        "format_version": "1",
        "name": name,
        "version": version,
        "layout": "NCHW",
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "channels": len(channels),
        "height": tiled["patch"][0],
        "width": tiled["patch"][1],
        "preprocess": "tiled",
        "tiled": tiled,
        "normalization": "none",  # the tiled object's per-channel schemes replace it
        "output_kind": kind,
        "labels": labels,
        "channel_names": channels,
        "provenance": provenance(r, checkpoints, exported_by),
    }
    return {f"slicewise.{k}": v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            for k, v in keys.items()}
