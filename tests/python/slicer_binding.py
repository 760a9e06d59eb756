"""The Slicer extension's binding (plugins/slicer/Slicewise/slicewise_ctypes.py) against the built
library: masks equal the CLI's for the same NIfTI (array + affine from nibabel, as Slicer hands
them over), and the file read through slicewise_volume_open; cancel by token (another thread) and
by the progress callback; errors as exceptions. (Its declarations are checked against the
header by header_mirrors.py.)

    slicer_binding.py LIBSLICEWISE ONNXRUNTIME SLICEWISE_BIN MODELDIR OUTDIR NIFTI...

Prints one JSON object: {"cases": [...], "cancel": {...}, "errors": {...}, "dtypes": {...}}.
"""
import os
import shutil
import subprocess
import sys
import threading

import nibabel as nib
import numpy as np

from common import emit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "plugins", "slicer", "Slicewise"))
import slicewise_ctypes as sw  # noqa: E402


def nifti_zyx(path):
    """nibabel's (x, y, z) array as Slicer's (k, j, i) array, and the IJK->RAS affine."""
    img = nib.load(path)
    raw = np.asanyarray(img.dataobj)
    slope, inter = img.header.get_slope_inter()
    if slope not in (None, 1.0) or inter not in (None, 0.0):
        raw = img.get_fdata(dtype=np.float32)
    return np.ascontiguousarray(raw.transpose(2, 1, 0)), img.affine


def cli_mask(binary, ort, model, path, outdir, extra):
    """`slicewise segment` on the file; the mask read back by nibabel as (z, y, x) + affine."""
    if os.path.exists(outdir):
        shutil.rmtree(outdir)
    cmd = [binary, "segment", path, "--model", model, "--out", outdir, "--device", "cpu",
           "--ort-lib", ort] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{r.stderr}")
    masks = [f for f in os.listdir(outdir) if f.endswith(".nii.gz")]
    if len(masks) != 1:
        raise SystemExit(f"expected one mask in {outdir}, got {masks}")
    img = nib.load(os.path.join(outdir, masks[0]))
    return np.asarray(img.dataobj).transpose(2, 1, 0), img.affine


CLI_FLAGS = {"largest_component": "--largest-component", "fill_holes": "--fill-holes"}


def segment_case(binary, ort, model, model_path, path, outdir, options):
    zyx, affine = nifti_zyx(path)
    extra = []
    for k, v in options.items():
        if k in CLI_FLAGS and v:
            extra.append(CLI_FLAGS[k])
        elif k == "min_component_voxels":
            extra += ["--min-size", str(v)]
    calls = []
    with sw.Volume.from_array(zyx, affine) as vol:
        mask = model.segment(vol, progress=lambda d, t: calls.append((d, t)), **options)
        info = vol.info(sw.SPACE_RAS)
    arr = mask.array()
    with sw.Volume.open(path) as fvol:
        fmask = model.segment(fvol, **options)
    cli, cli_affine = cli_mask(binary, ort, model_path, path, outdir, extra)
    stats = mask.label_stats()
    voxel_ml = float(np.prod(info["spacing"])) / 1000.0
    out = {
        "path": path,
        "options": options,
        "dtype": str(zyx.dtype),
        "shape_zyx": list(zyx.shape),
        "mask_shape": list(arr.shape),
        "equal_cli": bool(cli.shape == arr.shape and np.array_equal(cli, arr)),
        "equal_file": bool(np.array_equal(fmask.array(), arr)),
        "voxels": int((arr > 0).sum()),
        "cli_voxels": int((cli > 0).sum()),
        "affine_diff_cli": float(np.abs(mask.ijk_to_ras() - cli_affine).max()),
        "affine_diff_source": float(np.abs(mask.ijk_to_ras() - affine).max()),
        "progress_last": list(calls[-1]) if calls else None,
        "stats_match": all(
            s.voxels == int((arr == s.value).sum()) and abs(s.ml - s.voxels * voxel_ml) < 1e-6
            for s in stats),
        "stats": [s._asdict() for s in stats],
    }
    mask.close()
    fmask.close()
    return out


def expect_error(fn):
    """(exception class name, status, message) of what fn raises; None when it does not."""
    try:
        fn()
    except sw.SlicewiseError as e:
        return {"type": type(e).__name__, "status": e.status, "message": e.message}
    except Exception as e:  # noqa: BLE001 - reported, the test asserts the type
        return {"type": type(e).__name__, "status": None, "message": str(e)}
    return None


def cancel_checks(model, zyx, affine):
    out = {}
    with sw.Volume.from_array(zyx, affine) as vol:
        total = zyx.shape[0]

        # A token cancelled from another thread while the run is between batches.
        token = sw.CancelToken()
        first = threading.Event()
        done = threading.Event()
        calls = []

        def canceller():
            first.wait(60)
            token.cancel()
            done.set()

        def progress(d, t):
            calls.append(d)
            first.set()
            done.wait(60)  # the next batch starts only once the other thread has cancelled
            return False

        th = threading.Thread(target=canceller)
        th.start()
        err = expect_error(lambda: model.segment(vol, batch_size=1, cancel=token,
                                                 progress=progress))
        th.join()
        out["token_thread"] = {"error": err, "calls": len(calls), "slices": total,
                               "cancelled": token.cancelled}

        # The progress callback returning True cancels.
        calls = []
        err = expect_error(lambda: model.segment(
            vol, batch_size=1, progress=lambda d, t: calls.append(d) or len(calls) >= 2))
        out["progress_true"] = {"error": err, "calls": len(calls)}

        # An exception in the callback cancels the run and comes back as itself.
        def boom(d, t):
            raise KeyError("from progress")
        out["progress_raises"] = expect_error(lambda: model.segment(vol, batch_size=1,
                                                                    progress=boom))

        # A token cancelled before the run.
        pre = sw.CancelToken()
        pre.cancel()
        out["pre_cancelled"] = expect_error(lambda: model.segment(vol, cancel=pre))

        # The same model and volume still segment afterwards.
        with model.segment(vol) as m:
            out["after_ok"] = int((m.array() > 0).sum())
        token.close()
        pre.close()
    return out


def error_checks(model_dir, outdir, model, zyx):
    e = {}
    e["missing_model"] = expect_error(lambda: sw.Model(os.path.join(outdir, "missing.onnx")))
    e["no_metadata_model"] = expect_error(
        lambda: sw.Model(os.path.join(model_dir, "unet_nometa.onnx"), device="cpu"))
    e["bad_device"] = expect_error(lambda: sw.Model(os.path.join(model_dir, "unet_sigmoid.onnx"),
                                                    device="quantum"))
    e["missing_volume"] = expect_error(lambda: sw.Volume.open(os.path.join(outdir, "nope.nii")))
    e["complex_dtype"] = expect_error(lambda: sw.Volume.from_array(zyx.astype(np.complex64)))
    e["two_d"] = expect_error(lambda: sw.Volume.from_array(zyx[0]))
    e["zero_axis_matrix"] = expect_error(lambda: sw.Volume.from_array(zyx, np.diag([1, 0, 1, 1])))
    buf = np.zeros(8, dtype=np.uint8)
    ptr = buf.ctypes.data
    e["c_bool_dtype"] = expect_error(lambda: sw.Volume.from_memory(ptr, sw.DTYPE_BOOL,
                                                                   (2, 2, 2, 1)))
    e["c_null_data"] = expect_error(lambda: sw.Volume.from_memory(None, sw.DTYPE_U8, (2, 2, 2, 1)))
    e["c_zero_dim"] = expect_error(lambda: sw.Volume.from_memory(ptr, sw.DTYPE_U8, (2, 0, 2, 1)))
    e["c_space"] = expect_error(lambda: sw.Volume.from_memory(ptr, sw.DTYPE_U8, (2, 2, 2, 1),
                                                              space=7))
    e["c_bad_direction"] = expect_error(lambda: sw.Volume.from_memory(
        ptr, sw.DTYPE_U8, (2, 2, 2, 1), direction=[2, 0, 0, 0, 1, 0, 0, 0, 1]))
    vol = sw.Volume.from_array(zyx)
    vol.close()
    e["closed_handle"] = expect_error(lambda: model.segment(vol))
    vol.close()  # twice: no-op
    with sw.Volume.from_array(zyx) as v, model.segment(v) as m:
        e["save_missing_dir"] = expect_error(
            lambda: m.save(os.path.join(outdir, "no", "such", "dir", "m.nii.gz")))
    e["status_str_10"] = sw.status_str(10)
    return e


def dtype_checks(model, zyx, affine):
    """Converted dtypes segment like their explicit conversions."""
    def run(a):
        with sw.Volume.from_array(a, affine) as v, model.segment(v) as m:
            return m.array()
    f = zyx.astype(np.float32)
    big = f.astype(">f4")
    small = np.clip(zyx, 0, 200).astype(np.float16)
    boolean = zyx > np.median(zyx)
    strided = np.asfortranarray(f)
    return {
        "big_endian": bool(np.array_equal(run(big), run(f))),
        "float16": bool(np.array_equal(run(small), run(small.astype(np.float32)))),
        "bool": bool(np.array_equal(run(boolean), run(boolean.astype(np.uint8)))),
        "fortran_order": bool(np.array_equal(run(strided), run(f))),
        "int64": bool(np.array_equal(run(zyx.astype(np.int64)), run(zyx.astype(np.float64)))),
    }


def main():
    lib, ort, binary, model_dir, outdir = sys.argv[1:6]
    niftis = sys.argv[6:]
    sw.load_library(lib)
    sw.runtime_init(ort)
    sigmoid = os.path.join(model_dir, "unet_sigmoid.onnx")
    softmax = os.path.join(model_dir, "unet_softmax.onnx")
    result = {"library": sw.version(), "cases": []}
    with sw.Model(sigmoid, device="cpu") as m_sig, sw.Model(softmax, device="cpu") as m_soft:
        result["provider"] = m_sig.provider()
        result["labels_softmax"] = m_soft.labels()
        for i, path in enumerate(niftis):
            result["cases"].append(segment_case(binary, ort, m_sig, sigmoid, path,
                                                os.path.join(outdir, f"cli{i}"), {}))
        post = {"largest_component": True, "fill_holes": True, "min_component_voxels": 5}
        result["cases"].append(segment_case(binary, ort, m_sig, sigmoid, niftis[0],
                                            os.path.join(outdir, "post"), post))
        result["cases"].append(segment_case(binary, ort, m_soft, softmax, niftis[0],
                                            os.path.join(outdir, "soft"), {}))
        zyx, affine = nifti_zyx(niftis[0])
        result["cancel"] = cancel_checks(m_sig, zyx, affine)
        result["errors"] = error_checks(model_dir, outdir, m_sig, zyx)
        result["dtypes"] = dtype_checks(m_sig, zyx, affine)
    emit(result)


if __name__ == "__main__":
    main()
