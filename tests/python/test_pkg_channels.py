"""Multi-channel input from one file per channel through the Python package: a list of paths is
one case (`Model.segment_file([flair, t1c], out)`, `read_volume([flair, t1c])` then
`Model.segment`), nnU-Net-named files in a folder are one case, and every mask equals the
independent reference (the files read with nibabel, stacked, run through onnxruntime with the
numpy preprocessing: channels_ref.py + engine_ref.py). Volumes on another grid are refused
naming both files.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import REPO, shared_data

HERE = Path(__file__).resolve().parent
MODEL = REPO / "tests/data/unet_2ch.onnx"
CASE = "brats2015/train/brats_2013_pat0005_1"


def files():
    d = shared_data() / CASE
    return [d / "Flair_subtrMeanDivStd.nii.gz", d / "T1c_subtrMeanDivStd.nii.gz"]


def script(name, *args):
    out = subprocess.run([sys.executable, str(HERE / name), *map(str, args)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Reference labels [z, y, x] and a mask of the voxels either label is right for."""
    d = tmp_path_factory.mktemp("ref")
    script("channels_ref.py", "stack", d, *files())
    r = script("engine_ref.py", "pipeline", MODEL, d / "vol.f32", "2,155,240,240", d, "2", "0")
    labels = np.fromfile(d / "labels.u8", dtype=np.uint8).reshape(155, 240, 240)
    back = np.fromfile(d / "back.f32", dtype="<f4").reshape(r["slices"], r["classes"], 240, 240)
    top2 = np.sort(back, axis=1)[:, -2:]
    return labels, (top2[:, 1] - top2[:, 0]) < 1e-4


def assert_reference(mask_zyx, reference):
    labels, ambiguous = reference
    differ = mask_zyx != labels
    assert not (differ & ~ambiguous).any(), f"{differ.sum()} voxels differ"
    assert differ.sum() * 10_000 <= labels.size
    assert len(np.unique(mask_zyx)) >= 2


@pytest.fixture(scope="module")
def model(slicewise_pkg):
    return slicewise_pkg.Model(MODEL, device="cpu", threads=1)


def test_segment_file_of_a_channel_list_equals_the_reference(model, reference, tmp_path):
    recs = model.segment_file([str(p) for p in files()], tmp_path / "out")
    assert [r["status"] for r in recs] == ["ok"], recs
    assert recs[0]["channels"] == [str(p) for p in files()]
    mask = np.asarray(nib.load(recs[0]["mask"]["path"]).dataobj)
    assert_reference(mask.transpose(2, 1, 0), reference)


def test_segment_file_of_an_nnunet_folder_is_one_case(model, reference, tmp_path):
    folder = tmp_path / "imagesTs"
    folder.mkdir()
    for i, f in enumerate(files()):
        os.symlink(f, folder / f"BRATS_{i:04d}.nii.gz")
    recs = model.segment_file(folder, tmp_path / "out")
    assert [r["status"] for r in recs] == ["ok"], recs
    assert Path(recs[0]["mask"]["path"]).name == "BRATS_mask.nii.gz"
    mask = np.asarray(nib.load(recs[0]["mask"]["path"]).dataobj)
    assert_reference(mask.transpose(2, 1, 0), reference)


def test_read_volume_of_a_list_stacks_channels_for_model_segment(slicewise_pkg, model, reference):
    arr, affine = slicewise_pkg.read_volume([str(p) for p in files()])
    assert arr.shape == (240, 240, 155, 2)
    first = nib.load(files()[0])
    np.testing.assert_array_equal(affine, first.affine)
    np.testing.assert_array_equal(arr[..., 1], np.asarray(nib.load(files()[1]).dataobj))
    seg = model.segment(arr, affine=affine)
    assert_reference(seg.mask.transpose(2, 1, 0), reference)


def test_volumes_on_another_grid_are_refused_naming_both(slicewise_pkg):
    hippo = shared_data() / "msd-hippocampus/images/hippocampus_001.nii.gz"
    with pytest.raises(slicewise_pkg.Error) as e:
        slicewise_pkg.read_volume([str(files()[0]), str(hippo)])
    assert str(files()[0]) in str(e.value) and str(hippo) in str(e.value)
    assert "shape" in str(e.value)
