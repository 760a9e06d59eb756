"""A ctypes host, the way the 3D Slicer extension calls slicewise: for each NIfTI given, segment
it once from the file (slicewise_volume_open) and once from a numpy array handed over as memory
(slicewise_volume_from_memory, RAS geometry from nibabel's affine, array in (z, y, x) order), and
compare the two masks byte for byte; the mask saved through the C ABI is read back with nibabel
and compared with the mask buffer (memory order) and the image affine (geometry).

    capi_ctypes.py LIBSLICEWISE ONNXRUNTIME MODEL OUTDIR NIFTI...

Prints one JSON object: {"cases": [{"path", "dtype", "shape_zyx", "equal", "voxels", ...}]}.
"""
import ctypes as C
import json
import os
import sys

import nibabel as nib
import numpy as np

from common import emit

OK = 0
SPACE_LPS, SPACE_RAS = 1, 2
DTYPES = {
    np.dtype("uint8"): 1, np.dtype("int8"): 2, np.dtype("uint16"): 3, np.dtype("int16"): 4,
    np.dtype("uint32"): 5, np.dtype("int32"): 6, np.dtype("float32"): 7, np.dtype("float64"): 8,
}


class VolumeDesc(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("dims", C.c_size_t * 4), ("spacing", C.c_double * 3),
                ("origin", C.c_double * 3), ("direction", C.c_double * 9),
                ("original_dtype", C.c_uint32), ("format", C.c_uint32), ("acquisition_axis", C.c_uint32)]


class MaskDesc(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("dims", C.c_size_t * 3), ("spacing", C.c_double * 3),
                ("origin", C.c_double * 3), ("direction", C.c_double * 9), ("label_count", C.c_size_t)]


class ModelOptions(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("device", C.c_uint32), ("threads", C.c_uint32),
                ("runtime_path", C.c_char_p)]


class SegmentOptions(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("batch_size", C.c_uint32), ("threshold", C.c_float),
                ("min_component_voxels", C.c_uint64), ("largest_component", C.c_uint8),
                ("fill_holes", C.c_uint8), ("tta", C.c_uint8), ("cancel", C.c_void_p)]


PROGRESS = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_size_t, C.c_size_t)
_H = C.c_void_p

#: The functions this host calls: name -> (restype, argtypes), checked against the header by
#: header_mirrors.py.
SIGNATURES = {
    "slicewise_last_error": (C.c_int32, [C.c_char_p, C.c_size_t, C.POINTER(C.c_size_t)]),
    "slicewise_runtime_init": (C.c_int32, [C.c_char_p]),
    "slicewise_model_open": (C.c_int32, [C.c_char_p, C.POINTER(ModelOptions), C.POINTER(_H)]),
    "slicewise_model_free": (None, [_H]),
    "slicewise_volume_open": (C.c_int32, [C.c_char_p, C.POINTER(_H)]),
    "slicewise_volume_from_memory": (C.c_int32, [C.c_void_p, C.c_uint32, C.POINTER(C.c_size_t),
                                                 C.POINTER(C.c_double), C.POINTER(C.c_double),
                                                 C.POINTER(C.c_double), C.c_uint32, C.POINTER(_H)]),
    "slicewise_volume_info": (C.c_int32, [_H, C.c_uint32, C.POINTER(VolumeDesc)]),
    "slicewise_volume_free": (None, [_H]),
    "slicewise_segment": (C.c_int32, [_H, _H, C.POINTER(SegmentOptions), PROGRESS, C.c_void_p,
                                      C.POINTER(_H)]),
    "slicewise_mask_data": (C.c_int32, [_H, C.POINTER(C.POINTER(C.c_uint8)),
                                        C.POINTER(C.c_size_t)]),
    "slicewise_mask_info": (C.c_int32, [_H, C.c_uint32, C.POINTER(MaskDesc)]),
    "slicewise_mask_save": (C.c_int32, [_H, C.c_char_p]),
    "slicewise_mask_free": (None, [_H]),
}


def load(path):
    lib = C.CDLL(path)
    for name, (res, args) in SIGNATURES.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def check(lib, status, what):
    if status != OK:
        n = C.c_size_t(0)
        buf = C.create_string_buffer(4096)
        lib.slicewise_last_error(buf, len(buf), C.byref(n))
        raise SystemExit(f"{what}: status {status}: {buf.value.decode()}")


def volume_desc(lib, vol, space):
    d = VolumeDesc(struct_size=C.sizeof(VolumeDesc))
    check(lib, lib.slicewise_volume_info(vol, space, C.byref(d)), "volume_info")
    return d


def segment(lib, model, vol):
    calls = []

    @PROGRESS
    def progress(_userdata, done, total):
        calls.append((done, total))
        return 0

    mask = C.c_void_p()
    check(lib, lib.slicewise_segment(model, vol, None, progress, None, C.byref(mask)), "segment")
    data = C.POINTER(C.c_uint8)()
    n = C.c_size_t()
    check(lib, lib.slicewise_mask_data(mask, C.byref(data), C.byref(n)), "mask_data")
    md = MaskDesc(struct_size=C.sizeof(MaskDesc))
    check(lib, lib.slicewise_mask_info(mask, SPACE_RAS, C.byref(md)), "mask_info")
    x, y, z = md.dims
    arr = np.ctypeslib.as_array(data, shape=(n.value,)).copy().reshape(z, y, x)
    return mask, arr, calls


def main():
    lib_path, ort, model_path, outdir = sys.argv[1:5]
    lib = load(lib_path)
    check(lib, lib.slicewise_runtime_init(ort.encode()), "runtime_init")
    model = C.c_void_p()
    check(lib, lib.slicewise_model_open(model_path.encode(), None, C.byref(model)), "model_open")
    cases = []
    for i, path in enumerate(sys.argv[5:]):
        img = nib.load(path)
        raw = np.asanyarray(img.dataobj)
        slope, inter = img.header.get_slope_inter()
        if slope not in (None, 1.0) or inter not in (None, 0.0):
            raw = img.get_fdata(dtype=np.float32)
        if raw.ndim != 3:
            raise SystemExit(f"{path}: expected a 3-D image")
        # nibabel indexes [i, j, k] = [x, y, z]; the ABI wants C order (z, y, x), x fastest.
        zyx = np.ascontiguousarray(raw.transpose(2, 1, 0))
        affine = img.affine
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        direction = np.ascontiguousarray(affine[:3, :3] / spacing)  # row-major: [r][c]
        origin = np.ascontiguousarray(affine[:3, 3])
        dims = (C.c_size_t * 4)(zyx.shape[2], zyx.shape[1], zyx.shape[0], 1)
        dbl = lambda a: np.ascontiguousarray(a, dtype=np.float64).ctypes.data_as(C.POINTER(C.c_double))

        from_mem = C.c_void_p()
        check(lib, lib.slicewise_volume_from_memory(
            zyx.ctypes.data_as(C.c_void_p), DTYPES[zyx.dtype], dims, dbl(spacing), dbl(origin),
            dbl(direction), SPACE_RAS, C.byref(from_mem)), "volume_from_memory")
        from_file = C.c_void_p()
        check(lib, lib.slicewise_volume_open(path.encode(), C.byref(from_file)), "volume_open")

        dm, df = volume_desc(lib, from_mem, SPACE_LPS), volume_desc(lib, from_file, SPACE_LPS)
        geometry_diff = max(
            max(abs(a - b) for a, b in zip(dm.spacing, df.spacing)),
            max(abs(a - b) for a, b in zip(dm.origin, df.origin)),
            max(abs(a - b) for a, b in zip(dm.direction, df.direction)),
        )
        mask_m, arr_m, calls = segment(lib, model, from_mem)
        mask_f, arr_f, _ = segment(lib, model, from_file)

        # The mask saved through the ABI, read back by nibabel: same voxels, the image's affine.
        out = os.path.join(outdir, f"mask{i}.nii.gz")
        check(lib, lib.slicewise_mask_save(mask_m, out.encode()), "mask_save")
        saved = nib.load(out)
        saved_equal = bool(np.array_equal(np.asarray(saved.dataobj).transpose(2, 1, 0), arr_m))
        affine_diff = float(np.abs(saved.affine - affine).max())

        cases.append({
            "path": path,
            "dtype": str(zyx.dtype),
            "shape_zyx": list(zyx.shape),
            "dims_mem": list(dm.dims),
            "dims_file": list(df.dims),
            "axis_mem": dm.acquisition_axis,
            "axis_file": df.acquisition_axis,
            "geometry_diff": geometry_diff,
            "equal": bool(np.array_equal(arr_m, arr_f)),
            "voxels": int((arr_m > 0).sum()),
            "saved_equal": saved_equal,
            "affine_diff": affine_diff,
            "progress_last": list(calls[-1]) if calls else None,
            "progress_calls": len(calls),
        })
        for h in (mask_m, mask_f):
            lib.slicewise_mask_free(h)
        lib.slicewise_volume_free(from_mem)
        lib.slicewise_volume_free(from_file)
    lib.slicewise_model_free(model)
    emit({"cases": cases})


if __name__ == "__main__":
    main()
