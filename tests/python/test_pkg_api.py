"""The slicewise Python API against independent references: the CLI's masks (read back with
nibabel / tifffile), nibabel's arrays and affines, pydicom's voxels."""
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile

from conftest import HIPPO_MODEL, LGG_MODEL, REPO, SAMPLE, TEST_MODEL, read_json, run_cli, shared_data


def cli_mask(tmp_path, model, inp, name, fmt=None):
    """The CLI's mask for `inp` (one job) as written, with its job record."""
    out = tmp_path / f"cli-{name}"
    args = ["segment", inp, "--model", model, "--out", out, "--device", "cpu", "--threads", "1",
            "--report", out / "report.json"]
    if fmt:
        args += ["--format", fmt]
    run_cli(*args)
    jobs = read_json(out / "report.json")["jobs"]
    assert len(jobs) == 1 and jobs[0]["status"] == "ok", jobs
    return jobs[0]["mask"]["path"], jobs[0]


def test_nifti_with_affine_equals_cli_voxel_for_voxel(tmp_path, hippo):
    path, job = cli_mask(tmp_path, HIPPO_MODEL, SAMPLE, "sample")
    expected = np.asarray(nib.load(path).dataobj)
    img = nib.load(SAMPLE)
    seg = hippo.segment(np.asarray(img.dataobj), affine=img.affine)
    assert seg.mask.dtype == np.uint8 and seg.mask.shape == img.shape
    assert np.count_nonzero(expected) > 1000
    np.testing.assert_array_equal(seg.mask, expected)
    assert [(l.value, l.name, l.voxels) for l in seg.labels] == [
        (l["value"], l["name"], l["voxels"]) for l in job["labels"]
    ]
    assert seg.labels[0].ml == pytest.approx(job["labels"][0]["ml"], rel=1e-12)
    assert seg.provider == "CPUExecutionProvider"
    assert set(seg.timings) >= {"convert", "preprocess", "inference", "postprocess", "total"}
    np.testing.assert_array_equal(seg.affine, img.affine)


def test_written_mask_reads_back_in_nibabel_on_the_input_grid(tmp_path, hippo):
    img = nib.load(SAMPLE)
    seg = hippo.segment(img.get_fdata(), affine=img.affine)
    seg.save(tmp_path / "m.nii.gz")
    back = nib.load(tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(np.asarray(back.dataobj), seg.mask)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)


def dicom_zyx(folder):
    """pydicom's voxels (z, y, x), sorted along the slice normal, and the (z, y, x) spacing."""
    dss = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
    vox = np.stack([d.pixel_array * float(getattr(d, "RescaleSlope", 1))
                    + float(getattr(d, "RescaleIntercept", 0)) for d in dss])
    pos = [np.dot(normal, np.array(d.ImagePositionPatient, dtype=float)) for d in dss]
    row, col = (float(v) for v in dss[0].PixelSpacing)
    return vox, (float(np.median(np.diff(pos))), row, col)


def test_dicom_series_equals_cli_from_pydicom_voxels_and_from_read_volume(tmp_path, slicewise_pkg, tiny):
    series = shared_data() / "mr-dicom-series/Study1/13_HCropVolume"
    path, job = cli_mask(tmp_path, TEST_MODEL, series, "dicom")
    expected_ijk = np.asarray(nib.load(path).dataobj)
    assert 0 < np.count_nonzero(expected_ijk) < expected_ijk.size
    vox, spacing = dicom_zyx(series)
    seg = tiny.segment(vox, spacing=spacing)
    np.testing.assert_array_equal(seg.mask, expected_ijk.T)
    assert seg.labels[0].ml == pytest.approx(job["labels"][0]["ml"], rel=1e-6)
    arr, affine = slicewise_pkg.read_volume(series)
    np.testing.assert_array_equal(tiny.segment(arr, affine=affine).mask, expected_ijk)


def test_tiff_stack_equals_cli_from_tifffile_pages(tmp_path, tiny):
    arr = np.asarray(nib.load(SAMPLE).dataobj).astype(np.float64).transpose(2, 1, 0)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, ((arr - arr.min()) / (arr.max() - arr.min()) * 4000).astype(np.uint16))
    path, _ = cli_mask(tmp_path, TEST_MODEL, stack, "tiff")
    expected = tifffile.imread(path)
    assert 0 < np.count_nonzero(expected) < expected.size
    seg = tiny.segment(tifffile.imread(stack))
    np.testing.assert_array_equal(seg.mask, expected)


def test_lgg_tiff_folder_equals_cli_from_read_volume_and_segment_file(tmp_path, slicewise_pkg):
    """A shared LGG patient (a folder of RGB TIFF slices, its `_mask.tif` files left out) with the
    LGG model: the array API's mask equals the CLI's TIFF mask, and `segment_file` writes its bytes."""
    patient = shared_data() / "lgg/TCGA_FG_7637_20000922"
    path, job = cli_mask(tmp_path, LGG_MODEL, patient, "lgg")
    expected = tifffile.imread(path)  # (z, y, x) pages
    assert 1000 < np.count_nonzero(expected) < expected.size
    lgg = slicewise_pkg.Model(LGG_MODEL, device="cpu", threads=1)
    arr, affine = slicewise_pkg.read_volume(patient)
    assert arr.shape[:3] == tuple(job["dims"])
    seg = lgg.segment(arr, affine=affine)
    np.testing.assert_array_equal(seg.mask, expected.transpose(2, 1, 0))
    assert [(l.value, l.voxels) for l in seg.labels] == [(l["value"], l["voxels"]) for l in job["labels"]]
    [rec] = lgg.segment_file(patient, tmp_path / "py")
    assert rec["status"] == "ok"
    with open(rec["mask"]["path"], "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read()


def test_segment_file_takes_the_series_the_cli_takes(tmp_path, slicewise_pkg, hippo):
    """A study of real and pydicom-made series (study_fixture.py): `segment_file` runs the series
    the hippocampus model's card selects and reports the others with the CLI's reasons and output
    names; `series=` and `all_series=` override the rules as `--series` and `--all-series` do."""
    study = tmp_path / "study"
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "study_fixture.py")
    subprocess.run([sys.executable, fixture, str(shared_data()), str(study)], check=True,
                   capture_output=True)
    cli_out = tmp_path / "cli"
    run_cli("segment", study, "--model", HIPPO_MODEL, "--out", cli_out, "--device", "cpu",
            "--threads", "1", "--report", cli_out / "report.json")
    cli = read_json(cli_out / "report.json")["jobs"]
    recs = hippo.segment_file(study, tmp_path / "py")

    def outcome(r):
        mask = os.path.basename(r["mask"]["path"]) if r["mask"] else None
        return r["series_uid"], r["status"], r.get("reason"), mask

    assert [outcome(r) for r in recs] == [outcome(j) for j in cli]
    assert {r["status"] for r in recs} == {"ok", "not_selected"}
    flair = next(r for r in recs if r.get("series_description") == "AX T2 FLAIR")
    assert flair["reason"] == "SeriesDescription 'AX T2 FLAIR' matches /flair/i"
    one = hippo.segment_file(study, tmp_path / "one", series=flair["series_uid"])
    [ran] = [r for r in one if r["status"] == "ok"]
    assert ran["series_uid"] == flair["series_uid"]
    assert any("would skip this series" in w for w in ran["warnings"])
    every = hippo.segment_file(study, tmp_path / "all", all_series=True)
    assert all(r["status"] == "ok" for r in every), [r for r in every if r["status"] != "ok"]
    with pytest.raises(slicewise_pkg.Error, match="no series with UID 9.9"):
        hippo.segment_file(study, tmp_path / "none", series="9.9")


def test_brats_flair_equals_cli_mask_and_affine(tmp_path, tiny):
    """The BraTS 2013 FLAIR (LPS, float32, 240x240x155) through nibabel and the array API."""
    flair = shared_data() / "brats2015/train/brats_2013_pat0005_1/Flair_subtrMeanDivStd.nii.gz"
    path, job = cli_mask(tmp_path, TEST_MODEL, flair, "brats")
    want = nib.load(path)
    expected = np.asarray(want.dataobj)
    assert 0 < np.count_nonzero(expected) < expected.size
    img = nib.load(flair)
    seg = tiny.segment(np.asarray(img.dataobj), affine=img.affine)
    np.testing.assert_array_equal(seg.mask, expected)
    np.testing.assert_array_equal(seg.affine, img.affine)
    np.testing.assert_allclose(want.affine, img.affine, atol=1e-5)
    seg.save(tmp_path / "py.nii.gz")
    back = nib.load(tmp_path / "py.nii.gz")
    np.testing.assert_array_equal(np.asarray(back.dataobj), expected)
    np.testing.assert_array_equal(back.affine, want.affine)


def layouts(base):
    """The same voxels (i, j, k) in every accepted dtype and memory order, as (name, array,
    takes_affine)."""
    for dt in (np.uint8, np.int16, np.uint16, np.float32, np.float64):
        a = base.astype(dt)
        yield f"{dt.__name__}-F", np.asfortranarray(a), True
        yield f"{dt.__name__}-C", np.ascontiguousarray(a), True
        yield f"{dt.__name__}-channels", a[..., np.newaxis], True
        yield f"{dt.__name__}-zyx", np.ascontiguousarray(a.T), False
        yield f"{dt.__name__}-czyx", np.ascontiguousarray(a.T)[np.newaxis], False
    padded = np.zeros((base.shape[0] * 2,) + base.shape[1:], np.int16)
    padded[::2] = base
    yield "strided-view", padded[::2], True
    yield "reversed-view", np.ascontiguousarray(base[::-1])[::-1], True
    yield "big-endian", base.astype(">i2"), True


def test_every_dtype_and_memory_order_gives_the_same_mask(hippo):
    img = nib.load(SAMPLE)
    raw = np.asarray(img.dataobj, dtype=np.float64)
    # Integers 0..255 hold exactly in every dtype listed.
    base = np.round((raw - raw.min()) / (raw.max() - raw.min()) * 255)
    ref = hippo.segment(base.astype(np.float32), affine=img.affine).mask
    assert np.count_nonzero(ref) > 1000
    for name, arr, with_affine in layouts(base):
        if with_affine:
            mask = hippo.segment(arr, affine=img.affine).mask
        else:
            mask = hippo.segment(arr, spacing=(1.0, 1.0, 1.0)).mask.T
        assert mask.shape == ref.shape, name
        np.testing.assert_array_equal(mask, ref, err_msg=name)


@pytest.mark.parametrize("path", [
    SAMPLE,
    "msd-hippocampus/images/hippocampus_001.nii.gz",
    "msd-hippocampus/images/hippocampus_003.nii.gz",
    "sct-spinalcord/t2/t2.nii.gz",                          # PSR, int16
    "sct-spinalcord/t2/t2_seg-manual.nii.gz",               # PSR, uint8
    "sct-spinalcord/t2s/t2s.nii.gz",                        # LAS, float32
    "sct-spinalcord/mt/mt1.nii.gz",                         # LAS, int16
    "totalseg-ref/tests/reference_files/example_mr_sm.nii.gz",  # LPS, int16
])
def test_read_volume_equals_nibabel(slicewise_pkg, path):
    p = path if os.path.isabs(str(path)) else shared_data() / path
    arr, affine = slicewise_pkg.read_volume(p)
    img = nib.load(p)
    want = np.asarray(img.dataobj)
    assert arr.dtype == want.dtype and arr.shape == want.shape
    np.testing.assert_array_equal(arr, want)
    np.testing.assert_array_equal(affine, img.affine)


def test_errors_carry_status_names(tmp_path, slicewise_pkg, hippo):
    Error = slicewise_pkg.Error
    with pytest.raises(Error) as e:
        slicewise_pkg.Model(tmp_path / "missing.onnx", device="cpu")
    assert e.value.status == "IO" and e.value.code == 2 and "missing.onnx" in e.value.message
    assert str(e.value).startswith("IO: ")
    with pytest.raises(Error) as e:
        slicewise_pkg.Model(SAMPLE, device="cpu")
    assert e.value.status == "MODEL"
    with pytest.raises(Error) as e:
        slicewise_pkg.read_volume(tmp_path / "none.nii.gz")
    assert e.value.status == "IO" and str(tmp_path / "none.nii.gz") in e.value.message
    (tmp_path / "bad.nii").write_bytes(b"\0" * 400)
    with pytest.raises(Error) as e:
        slicewise_pkg.read_volume(tmp_path / "bad.nii")
    assert e.value.status == "FORMAT" and str(tmp_path / "bad.nii") in e.value.message
    with pytest.raises(Error) as e:
        hippo.segment(np.zeros((4, 4)))
    assert e.value.status == "INVALID_ARGUMENT"
    with pytest.raises(Error) as e:
        slicewise_pkg.Model(HIPPO_MODEL, device="cuda")
    assert e.value.status == "PROVIDER"
    with pytest.raises(TypeError):
        hippo.segment(np.zeros((4, 4, 4)), no_such_option=1)
    codes = dict(slicewise_pkg._slicewise.status_names())
    assert codes["CANCELLED"] == 10 and codes["INVALID_ARGUMENT"] == 1


def test_progress_reports_batches_and_returning_false_cancels(slicewise_pkg, hippo):
    img = nib.load(SAMPLE)
    arr = np.asarray(img.dataobj)
    seen = []
    hippo.segment(arr, affine=img.affine, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (arr.shape[2], arr.shape[2]) and len(seen) >= arr.shape[2] // 4
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    calls = []

    def stop(done, total):
        calls.append(done)
        return False

    with pytest.raises(slicewise_pkg.Error) as e:
        hippo.segment(arr, affine=img.affine, batch_size=4, progress=stop)
    assert e.value.status == "CANCELLED" and len(calls) == 1
    with pytest.raises(ZeroDivisionError):
        hippo.segment(arr, affine=img.affine, progress=lambda d, t: 1 / 0)


def test_cancel_token_and_event_cancel_from_another_thread(slicewise_pkg, hippo):
    img = nib.load(SAMPLE)
    arr = np.asarray(img.dataobj)
    for cancel in (slicewise_pkg.CancelToken(), threading.Event()):
        set_it = cancel.cancel if hasattr(cancel, "cancel") else cancel.set

        def progress(done, total):
            if done == 1:
                threading.Thread(target=set_it).start()
            # Let the other thread run before the next batch.
            threading.Event().wait(0.05)

        with pytest.raises(slicewise_pkg.Error) as e:
            hippo.segment(arr, affine=img.affine, batch_size=1, progress=progress, cancel=cancel)
        assert e.value.status == "CANCELLED", type(cancel)


def test_four_threads_on_one_model_give_identical_results_and_the_gil_is_released(hippo):
    vols = []
    for p in [SAMPLE] + [shared_data() / f"msd-hippocampus/images/hippocampus_00{i}.nii.gz"
                         for i in (1, 3, 4)]:
        img = nib.load(p)
        vols.append((np.asarray(img.dataobj), img.affine))
    alone = [hippo.segment(a, affine=aff).mask for a, aff in vols]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            together = list(pool.map(lambda v: hippo.segment(v[0], affine=v[1]).mask, vols))
            for a, b in zip(alone, together):
                np.testing.assert_array_equal(a, b)
    # A Python thread keeps running while the engine works between progress calls.
    ticks = [0]
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=tick)
    t.start()
    marks = []
    try:
        hippo.segment(vols[0][0], affine=vols[0][1], batch_size=1,
                      progress=lambda d, n: marks.append(ticks[0]))
    finally:
        stop.set()
        t.join()
    assert marks[-1] - marks[0] > 1000, marks


def test_segment_file_writes_what_the_cli_writes(tmp_path, hippo):
    cli_path, cli_job = cli_mask(tmp_path, HIPPO_MODEL, SAMPLE, "file")
    out = tmp_path / "py"
    [rec] = hippo.segment_file(SAMPLE, out)
    assert rec["status"] == "ok" and os.path.basename(rec["mask"]["path"]) == os.path.basename(cli_path)
    with open(rec["mask"]["path"], "rb") as a, open(cli_path, "rb") as b:
        assert a.read() == b.read()
    side = read_json(out / "hippocampus_375.slicewise.json")
    assert side["labels"] == cli_job["labels"] and side["dims"] == cli_job["dims"]
    [again] = hippo.segment_file(SAMPLE, out)
    assert again["status"] == "skipped"


def test_second_segment_file_with_a_same_named_input_keeps_the_first_result(tmp_path, hippo):
    """a/x.nii.gz then b/x.nii.gz into one folder by separate calls: b never replaces a's
    result (it is written under its distinct name, found again on a rerun); overwrite does."""
    a, b = tmp_path / "a" / "x.nii.gz", tmp_path / "b" / "x.nii.gz"
    for p, name in ((a, "hippocampus_001"), (b, "hippocampus_004")):
        p.parent.mkdir()
        p.write_bytes((shared_data() / "msd-hippocampus" / "images" / f"{name}.nii.gz").read_bytes())
    out = tmp_path / "out"
    [first] = hippo.segment_file(a, out)
    first_bytes = open(first["mask"]["path"], "rb").read()
    [second] = hippo.segment_file(b, out)
    assert second["status"] == "ok" and second["mask"]["path"] != first["mask"]["path"]
    assert any("holds the result of" in w for w in second["warnings"])
    assert open(first["mask"]["path"], "rb").read() == first_bytes
    assert read_json(out / "x.slicewise.json")["input"] == str(a)
    [again] = hippo.segment_file(b, out)
    assert again["status"] == "skipped" and again["mask"]["path"] == second["mask"]["path"]
    [replaced] = hippo.segment_file(b, out, overwrite=True)
    assert replaced["mask"]["path"] == first["mask"]["path"]
    assert read_json(out / "x.slicewise.json")["input"] == str(b)


def test_help_reads_well(slicewise_pkg):
    import pydoc

    text = pydoc.render_doc(slicewise_pkg.Model, renderer=pydoc.plaintext)
    for words in ("device", "threads", "affine", "spacing", "progress", "cancel", "segment_file"):
        assert words in text
    assert slicewise_pkg.Error.__doc__ and "status" in slicewise_pkg.Error.__doc__


def test_the_built_wheel_installs_and_runs_outside_the_development_venv(tmp_path):
    """The abi3 wheel as `scripts/setup` builds it (maturin, release), installed with pip into an
    empty folder and imported by the base interpreter in isolated mode (`-I`: no PYTHONPATH, no
    user or .venv site-packages) next to nothing but numpy: `import slicewise` must come from that
    folder and `Model(...).segment` must work there."""
    import sys

    # The very interpreter path scripts/setup passes, so cargo reuses its build (PyO3's build
    # script reruns when the interpreter path changes).
    venv_py = REPO / ".venv/bin/python"
    venv_py = str(venv_py) if venv_py.exists() else sys.executable
    venv_bin = os.path.dirname(venv_py)
    dist = tmp_path / "dist"
    build = subprocess.run([os.path.join(venv_bin, "maturin"), "build", "--quiet", "--release", "--strip",
                    "-m", "crates/slicewise-py/Cargo.toml", "-i", venv_py,
                    "-o", str(dist)], cwd=REPO, capture_output=True, text=True)
    assert not build.returncode, build.stderr[-3000:]
    [wheel] = dist.glob("slicewise-*.whl")
    assert "abi3" in wheel.name, wheel.name
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True)
    only_numpy = tmp_path / "numpy-only"
    only_numpy.mkdir()
    for entry in os.listdir(os.path.dirname(os.path.dirname(np.__file__))):
        if entry == "numpy" or entry.startswith("numpy.libs") or entry.startswith("numpy-"):
            os.symlink(os.path.join(os.path.dirname(os.path.dirname(np.__file__)), entry),
                       only_numpy / entry)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import numpy as np, slicewise\n"
        "assert slicewise.__file__.startswith(sys.argv[1]), slicewise.__file__\n"
        "m = slicewise.Model(sys.argv[3], device='cpu', threads=1)\n"
        "a = np.zeros((8, 32, 32), np.float32); a[:, 8:24, 8:24] = 1\n"
        "s = m.segment(a, spacing=(1.0, 1.0, 1.0))\n"
        "assert s.mask.shape == a.shape and s.provider == 'CPUExecutionProvider'\n"
        "print('ok', slicewise.__file__)\n"
    )
    base = getattr(sys, "_base_executable", sys.executable)
    p = subprocess.run([base, "-I", "-c", code, str(site), str(only_numpy), str(TEST_MODEL)],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": os.environ.get("PATH", ""),
                            "SLICEWISE_ORT_LIB": os.environ["SLICEWISE_ORT_LIB"]})
    assert p.returncode == 0 and p.stdout.startswith("ok " + str(site)), p.stdout + p.stderr
