"""`python -m slicewise.nnunet export RESULTS_FOLDER ... --out MODEL.onnx`: the importer's command line.

Every refusal is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from .results import CHECKPOINTS, Refusal, open_results, parse_fold

PROG = "python -m slicewise.nnunet"


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand, `export`."""
    ap = argparse.ArgumentParser(prog=PROG, description="Import trained nnU-Net v2 2d models into slicewise.")
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser(
        "export", help="write a slicewise ONNX model from an nnU-Net results folder",
        description="Export nnU-Net's DatasetXXX_Name/Trainer__Plans__2d folder as one slicewise model "
                    "(the folds' logits averaged in one graph; preprocessing, tiling and mirroring in its contract). "
                    "Refused, with exit status 2: 3d configurations, cascades, custom preprocessors, "
                    "non-default resampling, unknown normalisations, missing folds or checkpoints, "
                    "networks that do not export.")
    ex.add_argument("results", type=Path, metavar="RESULTS_FOLDER",
                    help="nnU-Net's results folder DatasetXXX_Name/Trainer__Plans__2d")
    ex.add_argument("--folds", nargs="+", metavar="FOLD",
                    help="folds to ensemble (numbers or 'all'); default: every fold_N folder present "
                         "(fold_all when there is no numbered fold)")
    ex.add_argument("--checkpoint", choices=sorted(CHECKPOINTS), default="final",
                    help="checkpoint_final.pth (default) or checkpoint_best.pth")
    ex.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx", help="the model to write")
    ex.add_argument("--name", help="slicewise.name (default: DATASET-2d)")
    ex.add_argument("--model-version", default="1", help="slicewise.version (default: 1)")
    ex.add_argument("--trainer-dir", type=Path, action="append", default=[], metavar="FOLDER",
                    help="a folder holding a custom trainer's module (added to nnUNet_extTrainer)")
    return ap


def run_export(a: argparse.Namespace) -> int:
    """Checks the folder, exports, prints one summary line."""
    if a.trainer_dir:
        extra = [str(p.resolve()) for p in a.trainer_dir]
        old = os.environ.get("nnUNet_extTrainer")
        os.environ["nnUNet_extTrainer"] = os.pathsep.join(extra + ([old] if old else []))
    # torch announces the TorchScript exporter's deprecation on every run; the export is checked
    # against torch below, which is what matters here.
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"torch(\.|$)")
    folds = [parse_fold(f) for f in a.folds] if a.folds else None
    results = open_results(a.results, folds, a.checkpoint)
    from .. import __version__
    from .export import export

    rep = export(results, a.out, a.name, a.model_version, f"slicewise.nnunet {__version__}")
    print(f"{rep.out}: folds {rep.folds}, {rep.bytes / 1e6:.1f} MB, {rep.seconds:.1f} s; "
          f"ONNX Runtime vs torch max |diff| {rep.max_abs_diff:.2e}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; refusals become `error: ...` and status 2."""
    a = parser().parse_args(argv)
    try:
        return run_export(a)
    except Refusal as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
