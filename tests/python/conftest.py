"""Fixtures of the Python package's tests (test_pkg_*.py), run by tests/integration/python_pkg.rs
with the harness's Python (.venv, where scripts/setup --test installs the slicewise wheel).

The references are independent of the package: the `slicewise` CLI binary under test
($SLICEWISE_BIN), nibabel, pydicom and tifffile.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "models/samples/msd-hippocampus/hippocampus_375.nii.gz"
HIPPO_MODEL = REPO / "models/msd-hippocampus-small.onnx"
TEST_MODEL = REPO / "tests/data/unet_sigmoid.onnx"
LGG_MODEL = REPO / "models/lgg-flair-small.onnx"


def shared_data() -> Path:
    p = Path(os.environ.get("SLICEWISE_SHARED_DATA", REPO.parent / "shared/data"))
    assert (p / "README.md").exists(), f"shared data not found at {p}"
    return p


def cli_bin() -> str:
    b = os.environ.get("SLICEWISE_BIN") or str(REPO / "target/debug/slicewise")
    assert Path(b).exists(), f"slicewise CLI not found at {b} (set SLICEWISE_BIN)"
    return b


def run_cli(*args, env=None, check=True):
    """Runs the CLI; returns the CompletedProcess (stdout/stderr as text)."""
    full_env = {k: v for k, v in os.environ.items() if k != "JOB_COMPLETION_INDEX"}
    full_env.update(env or {})
    p = subprocess.run([cli_bin(), *map(str, args)], capture_output=True, text=True, env=full_env)
    if check:
        assert p.returncode == 0, f"slicewise {' '.join(map(str, args))} -> {p.returncode}\n{p.stderr}"
    return p


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def slicewise_pkg():
    import slicewise

    return slicewise


@pytest.fixture(scope="session")
def hippo(slicewise_pkg):
    """The bundled hippocampus model on CPU, one thread (as the CLI runs it in these tests)."""
    return slicewise_pkg.Model(HIPPO_MODEL, device="cpu", threads=1)


@pytest.fixture(scope="session")
def tiny(slicewise_pkg):
    """The engine's tiny random-weight test model (deterministic, non-empty masks)."""
    return slicewise_pkg.Model(TEST_MODEL, device="cpu", threads=1)
