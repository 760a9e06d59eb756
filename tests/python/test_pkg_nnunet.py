"""The nnU-Net importer (`python -m slicewise.nnunet export`, issue 29) on the committed reference
results folder (tests/data/nnunet/, trained with nnunetv2 itself).

Refusals need no PyTorch and run with the harness's Python; the exports need nnunetv2 + torch and
run with `.venv-nnunet/bin/python` (scripts/setup --nnunet), skipped when that venv is absent. The
references are independent of the importer: plans.json and dataset.json read here, the checkpoints'
SHA-256 computed here, and ONNX Runtime (the harness's) running the exported graphs.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NNUNET = REPO / "tests/data/nnunet"
HIPPO = NNUNET / "Dataset004_Hippocampus/nnUNetTrainer_slicewiseB32__nnUNetPlans__2d"
TRAINERS = NNUNET / "trainers"
NN_PYTHON = REPO / ".venv-nnunet/bin/python"


def importer(*args, python=sys.executable):
    """Runs the importer; returns the CompletedProcess."""
    env = dict(os.environ, nnUNet_extTrainer=str(TRAINERS))
    return subprocess.run([str(python), "-m", "slicewise.nnunet", "export", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=900)


def copy_folder(tmp: Path, name: str = HIPPO.name, edit=None) -> Path:
    """A copy of the reference folder's JSON files (checkpoints linked), plans.json edited by `edit`."""
    dst = tmp / "Dataset004_Hippocampus" / name
    dst.mkdir(parents=True)
    for f in ("dataset.json", "dataset_fingerprint.json"):
        shutil.copy(HIPPO / f, dst / f)
    plans = json.loads((HIPPO / "plans.json").read_text())
    if edit:
        edit(plans["configurations"]["2d"])
    (dst / "plans.json").write_text(json.dumps(plans))
    for fold in HIPPO.glob("fold_*"):
        (dst / fold.name).mkdir()
        (dst / fold.name / "checkpoint_final.pth").symlink_to(fold / "checkpoint_final.pth")
    return dst


def assert_refused(p, *words):
    """Exit status 2, one line on stderr naming `words`, no traceback."""
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("what,edit,words", [
    ("cascade", lambda c: c.update(previous_stage="3d_lowres"), ["cascade", "3d_lowres"]),
    ("preprocessor", lambda c: c.update(preprocessor_name="MyPreprocessor"), ["MyPreprocessor"]),
    ("resampling", lambda c: c.update(resampling_fn_data="resample_torch_fornnunet"), ["resample_torch_fornnunet"]),
    ("logit resampling", lambda c: c.update(resampling_fn_probabilities="no_resampling_hack"), ["no_resampling_hack"]),
    ("spline order", lambda c: c["resampling_fn_data_kwargs"].update(order=5), ["order = 5"]),
    ("normalisation", lambda c: c.update(normalization_schemes=["MyNormalization"]), ["MyNormalization"]),
])
def test_refuses_what_it_cannot_run_by_name(tmp_path, what, edit, words):
    assert_refused(importer(copy_folder(tmp_path, edit=edit), "--out", tmp_path / "m.onnx"), *words)
    assert not (tmp_path / "m.onnx").exists()


def test_refuses_3d_configurations_and_missing_folds(tmp_path):
    three_d = copy_folder(tmp_path, "nnUNetTrainer__nnUNetPlans__3d_fullres")
    assert_refused(importer(three_d, "--out", tmp_path / "m.onnx"), "3d_fullres", "2d")
    assert_refused(importer(HIPPO, "--folds", "0", "3", "--out", tmp_path / "m.onnx"), "fold 3", "fold_3")
    assert_refused(importer(HIPPO, "--checkpoint", "best", "--out", tmp_path / "m.onnx"), "checkpoint_best.pth")
    assert_refused(importer(tmp_path / "nowhere__x__2d", "--out", tmp_path / "m.onnx"), "nowhere__x__2d")


def ort_run(model: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def metadata(model: Path) -> dict:
    import onnx

    return {p.key: p.value for p in onnx.load(str(model)).metadata_props}


@pytest.mark.skipif(not NN_PYTHON.exists(), reason="needs .venv-nnunet (scripts/setup --nnunet)")
def test_export_carries_the_plans_and_averages_the_folds(tmp_path):
    one = [importer(HIPPO, "--folds", f, "--out", tmp_path / f"f{f}.onnx", python=NN_PYTHON) for f in "01"]
    both = importer(HIPPO, "--out", tmp_path / "both.onnx", python=NN_PYTHON)  # default: every fold
    for p in (*one, both):
        assert p.returncode == 0, p.stderr
        diff = float(p.stdout.strip().rsplit(" ", 1)[1])
        assert diff <= 1e-4, p.stdout
    plans = json.loads((HIPPO / "plans.json").read_text())
    conf = plans["configurations"]["2d"]
    meta = metadata(tmp_path / "both.onnx")
    tiled = json.loads(meta["slicewise.tiled"])
    assert meta["slicewise.preprocess"] == "tiled" and meta["slicewise.output_kind"] == "logits"
    assert tiled["patch"] == conf["patch_size"] and tiled["spacing"] == conf["spacing"]
    assert tiled["transpose"] == plans["transpose_forward"] and tiled["mirror_axes"] == [0, 1]
    assert tiled["normalization"] == [{"scheme": "zscore", "use_mask": conf["use_mask_for_norm"][0]}]
    assert (int(meta["slicewise.height"]), int(meta["slicewise.width"])) == tuple(conf["patch_size"])
    names = [(l["value"], l["name"]) for l in json.loads(meta["slicewise.labels"])]
    assert names == [(1, "Anterior"), (2, "Posterior")]
    assert json.loads(meta["slicewise.channel_names"]) == ["MRI"]
    prov = json.loads(meta["slicewise.provenance"])
    assert prov["folds"] == [0, 1] and prov["nnunet_version"] == "2.8.1"
    for f in "01":
        ck = (HIPPO / f"fold_{f}" / "checkpoint_final.pth").read_bytes()
        assert prov["checkpoint_sha256"][f] == hashlib.sha256(ck).hexdigest()
    # The ensemble graph is the mean of the single-fold graphs, on a batch of 5 tiles.
    x = np.random.default_rng(1).normal(size=(5, 1, *conf["patch_size"])).astype(np.float32)
    y0, y1, yb = (ort_run(tmp_path / n, x) for n in ("f0.onnx", "f1.onnx", "both.onnx"))
    assert yb.shape == (5, 3, *conf["patch_size"])
    np.testing.assert_allclose(yb, (y0 + y1) / 2, atol=1e-4)
    assert np.abs(y0 - y1).max() > 1e-2, "the two folds must differ for this test to mean anything"
