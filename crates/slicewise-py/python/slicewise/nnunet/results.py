"""Reading an nnU-Net v2 results folder (plans.json, dataset.json, fold_N/checkpoint_*.pth) and the
refusals: everything slicewise cannot run the way nnUNetv2_predict does is named here, before any
network is built.

The checks follow nnUNetPredictor.initialize_from_trained_model_folder (nnunetv2 2.8.1,
inference/predict_from_raw_data.py:68-131) and docs/nnunet-2d-inference.md §1.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

Fold = Union[int, str]

# The only preprocessing and resampling nnU-Net's default planners write; slicewise's engine
# reimplements exactly these (docs/nnunet-2d-inference.md §2).
DEFAULT_PREPROCESSOR = "DefaultPreprocessor"
DEFAULT_RESAMPLING = "resample_data_or_seg_to_shape"
SUPPORTED_ORDERS = (0, 1, 3)
KNOWN_SCHEMES = ("ZScoreNormalization", "CTNormalization", "NoNormalization",
                 "RescaleTo01Normalization", "RGBTo01Normalization")
CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth"}


class Refusal(Exception):
    """A results folder slicewise does not import, with the one-line reason shown to the user."""


@dataclass
class Checkpoint:
    """One fold's checkpoint: where it is, its digest and what nnUNetPredictor reads from it."""

    fold: Fold
    path: Path
    sha256: str
    state: Dict[str, Any] = field(repr=False)


@dataclass
class ResultsFolder:
    """A checked nnU-Net results folder `DatasetXXX_Name/Trainer__Plans__Configuration`."""

    path: Path
    plans: Dict[str, Any]
    dataset: Dict[str, Any]
    trainer: str
    plans_name: str
    configuration: str
    checkpoint_name: str
    folds: List[Fold]

    @property
    def config(self) -> Dict[str, Any]:
        """The configuration's plans entry with `inherits_from` resolved (PlansManager's rule)."""
        return resolve_configuration(self.plans, self.configuration)


def read_json(path: Path) -> Dict[str, Any]:
    """A JSON file of the results folder, or a refusal naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise Refusal(f"{path}: missing (not an nnU-Net results folder?)") from None
    except (OSError, ValueError) as e:
        raise Refusal(f"{path}: cannot be read as JSON: {e}") from None


def resolve_configuration(plans: Dict[str, Any], name: str) -> Dict[str, Any]:
    """plans['configurations'][name] merged over its `inherits_from` parents (plans_handler.py)."""
    configs = plans.get("configurations", {})
    if name not in configs:
        raise Refusal(f"plans.json has no configuration '{name}' (has: {', '.join(configs)})")
    conf = dict(configs[name])
    if "inherits_from" in conf:
        parent = resolve_configuration(plans, conf.pop("inherits_from"))
        parent.update(conf)
        conf = parent
    return conf


def split_folder_name(path: Path) -> tuple[str, str, str]:
    """`Trainer__Plans__Configuration` -> its three parts (nnU-Net's naming, utilities/file_path_utilities.py)."""
    parts = path.name.split("__")
    if len(parts) != 3:
        raise Refusal(f"{path}: not an nnU-Net results folder name (expected Trainer__Plans__Configuration)")
    return parts[0], parts[1], parts[2]


def refuse_configuration(name: str) -> None:
    """Only 2d configurations are slice-by-slice models."""
    if name.startswith("3d"):
        raise Refusal(f"configuration '{name}' is a 3d nnU-Net model: slicewise runs 2d configurations only")
    if name != "2d":
        raise Refusal(f"configuration '{name}' is not nnU-Net's '2d' configuration: slicewise runs 2d configurations only")


def available_folds(path: Path) -> List[Fold]:
    """The fold_N folders present (numeric, sorted); fold_all only when there is no numeric fold."""
    numeric = sorted(int(m.group(1)) for p in path.iterdir()
                     if p.is_dir() and (m := re.fullmatch(r"fold_(\d+)", p.name)))
    if numeric:
        return list(numeric)
    if (path / "fold_all").is_dir():
        return ["all"]
    raise Refusal(f"{path}: no fold_N folder")


def parse_fold(text: str) -> Fold:
    """A --folds entry: an integer or `all`."""
    if text == "all":
        return "all"
    if not text.isdigit():
        raise Refusal(f"fold '{text}' is neither a number nor 'all'")
    return int(text)


def open_results(path: Path, folds: Optional[Sequence[Fold]], checkpoint: str) -> ResultsFolder:
    """Reads and checks a results folder without touching the checkpoints."""
    path = Path(path)
    if not path.is_dir():
        raise Refusal(f"{path}: not a folder")
    trainer, plans_name, configuration = split_folder_name(path)
    refuse_configuration(configuration)
    plans = read_json(path / "plans.json")
    dataset = read_json(path / "dataset.json")
    chosen = list(folds) if folds else available_folds(path)
    if len(set(map(str, chosen))) != len(chosen):
        raise Refusal(f"fold listed twice in {chosen}")
    name = CHECKPOINTS[checkpoint]
    for f in chosen:
        ck = path / f"fold_{f}" / name
        if not (path / f"fold_{f}").is_dir():
            raise Refusal(f"{path}: fold {f} is missing (no fold_{f} folder)")
        if not ck.is_file():
            raise Refusal(f"{ck}: missing (fold {f} has no {name}; training unfinished? try --checkpoint)")
    results = ResultsFolder(path, plans, dataset, trainer, plans_name, configuration, name, chosen)
    check_configuration(results)
    return results


def check_configuration(r: ResultsFolder) -> None:
    """Refuses cascades, custom preprocessors/resampling and unknown normalisations by name."""
    c = r.config
    if c.get("previous_stage"):
        raise Refusal(f"configuration '{r.configuration}' is a cascade stage (previous_stage "
                      f"'{c['previous_stage']}'): cascades are not supported")
    if c.get("preprocessor_name", DEFAULT_PREPROCESSOR) != DEFAULT_PREPROCESSOR:
        raise Refusal(f"preprocessor '{c['preprocessor_name']}' is not nnU-Net's {DEFAULT_PREPROCESSOR}: "
                      "custom preprocessors are not supported")
    for which in ("resampling_fn_data", "resampling_fn_probabilities"):
        fn = c.get(which)
        if fn != DEFAULT_RESAMPLING:
            raise Refusal(f"{which} '{fn}' is not nnU-Net's default {DEFAULT_RESAMPLING}: "
                          "other resampling functions are not supported")
        kw = c.get(which + "_kwargs", {})
        for key in ("order", "order_z"):
            if kw.get(key) not in SUPPORTED_ORDERS:
                raise Refusal(f"{which}_kwargs {key} = {kw.get(key)}: only spline orders 0, 1 and 3 are supported")
    for scheme in c.get("normalization_schemes", []):
        if scheme not in KNOWN_SCHEMES:
            raise Refusal(f"normalization scheme '{scheme}' is not one of nnU-Net's built-in schemes "
                          f"({', '.join(KNOWN_SCHEMES)})")
    if len(c.get("spacing", [])) != 2 or len(c.get("patch_size", [])) != 2:
        raise Refusal(f"configuration '{r.configuration}' has spacing {c.get('spacing')} and patch "
                      f"{c.get('patch_size')}: a 2d configuration has two of each")
    n_channels = len(channel_names(r.dataset))
    if len(c.get("normalization_schemes", [])) != n_channels:
        raise Refusal(f"plans.json lists {len(c.get('normalization_schemes', []))} normalization schemes "
                      f"for {n_channels} channels in dataset.json")


def channel_names(dataset: Dict[str, Any]) -> List[str]:
    """dataset.json's channel names in channel order (`channel_names`, or the legacy `modality`)."""
    names = dataset.get("channel_names", dataset.get("modality"))
    if not isinstance(names, dict) or not names:
        raise Refusal("dataset.json has no channel_names")
    return [str(names[k]) for k in sorted(names, key=int)]


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_checkpoints(r: ResultsFolder) -> List[Checkpoint]:
    """Each selected fold's checkpoint (torch), checked to be this configuration's."""
    import torch

    out = []
    for f in r.folds:
        path = r.path / f"fold_{f}" / r.checkpoint_name
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is the same refusal
            raise Refusal(f"{path}: cannot be loaded by torch: {type(e).__name__}: {e}") from None
        if not isinstance(state, dict) or "network_weights" not in state:
            raise Refusal(f"{path}: not an nnU-Net checkpoint (no network_weights)")
        conf = state.get("init_args", {}).get("configuration")
        if conf is not None and conf != r.configuration:
            refuse_configuration(conf)
            raise Refusal(f"{path}: trained for configuration '{conf}', folder says '{r.configuration}'")
        out.append(Checkpoint(f, path, sha256(path), state))
    return out


def mirror_axes(first: Checkpoint) -> Optional[List[int]]:
    """The in-plane axes TTA may flip, from the first fold's checkpoint as nnUNetPredictor reads them."""
    axes = first.state.get("inference_allowed_mirroring_axes")
    return None if axes is None else [int(a) for a in axes]
