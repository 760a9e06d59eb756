"""Python binding of slicewise's C ABI (include/slicewise.h), with ctypes and numpy only.

No 3D Slicer import here: the extension's Logic uses it, and so can any Python host.

    import slicewise_ctypes as sw
    sw.runtime_init("/path/to/libonnxruntime.so.1.31.1")     # optional: the library searches
    with sw.Model("model.onnx", device="cpu") as model, \\
         sw.Volume.from_array(array_zyx, ijk_to_ras) as volume:
        mask = model.segment(volume, progress=lambda done, total: False)
        labels = mask.array()           # numpy (z, y, x) uint8, same grid as array_zyx
        stats = mask.label_stats()      # [LabelStats(value, name, color, voxels, ml), ...]

Every failing C call raises a subclass of `SlicewiseError` chosen by its status code, carrying
the status and the library's message (`slicewise_last_error`). Handles free themselves on
`close()`, at the end of a `with` block, or when garbage-collected.

The library is found by `load_library()`: an explicit path, then `$SLICEWISE_LIBRARY`, then a
`lib/` folder next to this file, then the system's search (`ctypes.util.find_library`).
"""

import ctypes as C
import ctypes.util
import json
import os
import sys
import threading
from collections import namedtuple

import numpy as np

# ---- constants (include/slicewise.h) ----------------------------------------------------------
# This module mirrors the header by hand: its constants, ERRORS, structs and SIGNATURES are
# checked against it by the project's tests (tests/python/header_mirrors.py).

OK = 0
SPACE_LPS, SPACE_RAS = 1, 2
DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA, DEVICE_TENSORRT = 0, 1, 2, 3
DEVICES = {"auto": DEVICE_AUTO, "cpu": DEVICE_CPU, "cuda": DEVICE_CUDA, "tensorrt": DEVICE_TENSORRT}

DTYPE_U8, DTYPE_I8, DTYPE_U16, DTYPE_I16 = 1, 2, 3, 4
DTYPE_U32, DTYPE_I32, DTYPE_F32, DTYPE_F64 = 5, 6, 7, 8
DTYPE_U64, DTYPE_I64, DTYPE_BOOL = 9, 10, 11
#: numpy dtypes the C side takes as they are (native byte order).
DTYPES = {
    np.dtype(np.uint8): DTYPE_U8, np.dtype(np.int8): DTYPE_I8,
    np.dtype(np.uint16): DTYPE_U16, np.dtype(np.int16): DTYPE_I16,
    np.dtype(np.uint32): DTYPE_U32, np.dtype(np.int32): DTYPE_I32,
    np.dtype(np.float32): DTYPE_F32, np.dtype(np.float64): DTYPE_F64,
    np.dtype(np.uint64): DTYPE_U64, np.dtype(np.int64): DTYPE_I64,
}

#: The header's major version this binding was written for.
ABI_MAJOR = 0


# ---- errors -------------------------------------------------------------------------------------

class SlicewiseError(Exception):
    """A failed slicewise call: `status` (the C status code) and `message`."""

    status = None

    def __init__(self, status, message):
        super().__init__(f"{message} (slicewise status {status})")
        self.status = status
        self.message = message


class InvalidArgumentError(SlicewiseError):
    """SLICEWISE_INVALID_ARGUMENT: an argument is out of range or inconsistent."""


class IoError(SlicewiseError):
    """SLICEWISE_IO: an operating-system I/O error on a file (the message names it)."""


class FormatError(SlicewiseError):
    """SLICEWISE_FORMAT: a file is not a valid file of its format."""


class UnsupportedError(SlicewiseError):
    """SLICEWISE_UNSUPPORTED: a valid input uses an unsupported feature."""


class TooLargeError(SlicewiseError):
    """SLICEWISE_TOO_LARGE: the input would need more memory than allowed."""


class ModelError(SlicewiseError):
    """SLICEWISE_MODEL: the model file cannot be honoured."""


class RuntimeLoadError(SlicewiseError):
    """SLICEWISE_RUNTIME: ONNX Runtime could not be loaded or initialised."""


class ProviderError(SlicewiseError):
    """SLICEWISE_PROVIDER: an explicitly requested execution provider cannot run."""


class InferenceError(SlicewiseError):
    """SLICEWISE_INFERENCE: inference failed inside ONNX Runtime."""


class CancelledError(SlicewiseError):
    """SLICEWISE_CANCELLED: cancelled by a token or the progress callback; nothing was output."""


class PanicError(SlicewiseError):
    """SLICEWISE_PANIC: an internal error was caught at the boundary."""


class NullPointerError(SlicewiseError):
    """SLICEWISE_NULL_POINTER: a required pointer argument was NULL."""


class BufferTooSmallError(SlicewiseError):
    """SLICEWISE_BUFFER_TOO_SMALL: a caller buffer was too small."""


class TrainingError(SlicewiseError):
    """SLICEWISE_TRAINING: training failed (the trainer's code; the library never returns it)."""


ERRORS = {
    1: InvalidArgumentError, 2: IoError, 3: FormatError, 4: UnsupportedError, 5: TooLargeError,
    6: ModelError, 7: RuntimeLoadError, 8: ProviderError, 9: InferenceError, 10: CancelledError,
    11: PanicError, 12: NullPointerError, 13: BufferTooSmallError, 14: TrainingError,
}
for _status, _cls in ERRORS.items():
    _cls.status = _status


# ---- structs ------------------------------------------------------------------------------------

class ModelOptions(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("device", C.c_uint32), ("threads", C.c_uint32),
                ("runtime_path", C.c_char_p)]


class SegmentOptions(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("batch_size", C.c_uint32), ("threshold", C.c_float),
                ("min_component_voxels", C.c_uint64), ("largest_component", C.c_uint8),
                ("fill_holes", C.c_uint8), ("tta", C.c_uint8), ("cancel", C.c_void_p)]


class VolumeDesc(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("dims", C.c_size_t * 4), ("spacing", C.c_double * 3),
                ("origin", C.c_double * 3), ("direction", C.c_double * 9),
                ("original_dtype", C.c_uint32), ("format", C.c_uint32),
                ("acquisition_axis", C.c_uint32)]


class MaskDesc(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("dims", C.c_size_t * 3), ("spacing", C.c_double * 3),
                ("origin", C.c_double * 3), ("direction", C.c_double * 9),
                ("label_count", C.c_size_t)]


class LabelStatsDesc(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("value", C.c_uint8), ("color", C.c_uint8 * 3),
                ("voxels", C.c_uint64), ("ml", C.c_double), ("name", C.c_char_p)]


PROGRESS_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_size_t, C.c_size_t)

_H = C.c_void_p
_S = C.c_int32
_D3 = C.POINTER(C.c_double)

#: Every function of include/slicewise.h: name -> (restype, argtypes).
SIGNATURES = {
    "slicewise_mask_data": (_S, [_H, C.POINTER(C.POINTER(C.c_uint8)), C.POINTER(C.c_size_t)]),
    "slicewise_mask_info": (_S, [_H, C.c_uint32, C.POINTER(MaskDesc)]),
    "slicewise_mask_label_stats": (_S, [_H, C.c_size_t, C.POINTER(LabelStatsDesc)]),
    "slicewise_mask_save": (_S, [_H, C.c_char_p]),
    "slicewise_mask_free": (None, [_H]),
    "slicewise_model_options_init": (_S, [C.POINTER(ModelOptions)]),
    "slicewise_model_open": (_S, [C.c_char_p, C.POINTER(ModelOptions), C.POINTER(_H)]),
    "slicewise_model_info": (_S, [_H, C.c_char_p, C.c_size_t, C.POINTER(C.c_size_t)]),
    "slicewise_model_free": (None, [_H]),
    "slicewise_runtime_init": (_S, [C.c_char_p]),
    "slicewise_segment_options_init": (_S, [C.POINTER(SegmentOptions)]),
    "slicewise_segment": (_S, [_H, _H, C.POINTER(SegmentOptions), PROGRESS_FN, C.c_void_p,
                               C.POINTER(_H)]),
    "slicewise_cancel_new": (_S, [C.POINTER(_H)]),
    "slicewise_cancel_cancel": (_S, [_H]),
    "slicewise_cancel_is_cancelled": (_S, [_H, C.POINTER(C.c_int)]),
    "slicewise_cancel_free": (None, [_H]),
    "slicewise_status_str": (C.c_char_p, [_S]),
    "slicewise_version": (C.c_char_p, []),
    "slicewise_last_error": (_S, [C.c_char_p, C.c_size_t, C.POINTER(C.c_size_t)]),
    "slicewise_volume_open": (_S, [C.c_char_p, C.POINTER(_H)]),
    "slicewise_volume_open_channels": (_S, [C.POINTER(C.c_char_p), C.c_size_t, C.POINTER(_H)]),
    "slicewise_volume_from_memory": (_S, [C.c_void_p, C.c_uint32, C.POINTER(C.c_size_t), _D3, _D3,
                                          _D3, C.c_uint32, C.POINTER(_H)]),
    "slicewise_volume_info": (_S, [_H, C.c_uint32, C.POINTER(VolumeDesc)]),
    "slicewise_volume_free": (None, [_H]),
    "slicewise_select_series": (_S, [_H, C.c_char_p, C.POINTER(C.c_char_p)]),
    "slicewise_string_free": (None, [C.c_char_p]),
}


# ---- the library --------------------------------------------------------------------------------

_lib = None
_lib_lock = threading.Lock()


def _lib_file_name():
    if sys.platform == "win32":
        return "slicewise.dll"
    if sys.platform == "darwin":
        return "libslicewise.dylib"
    return "libslicewise.so"


def candidate_paths(path=None):
    """Where `load_library` looks, in order (existing files and bare names for the system)."""
    out = []
    if path:
        out.append(str(path))
    env = os.environ.get("SLICEWISE_LIBRARY")
    if env:
        out.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.path.join(here, "lib"), os.path.join(os.path.dirname(here), "lib")):
        p = os.path.join(d, _lib_file_name())
        if os.path.exists(p):
            out.append(p)
    found = ctypes.util.find_library("slicewise")
    if found:
        out.append(found)
    return out


def load_library(path=None):
    """Loads libslicewise once per process and declares every function's signature.

    `path` (or `$SLICEWISE_LIBRARY`) wins; later calls return the library already loaded.
    Raises OSError when no candidate loads, listing what was tried.
    """
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for cand in candidate_paths(path):
            try:
                lib = C.CDLL(cand)
            except OSError as e:
                tried.append(f"{cand}: {e}")
                continue
            missing = [n for n in SIGNATURES if not hasattr(lib, n)]
            if missing:
                tried.append(f"{cand}: lacks {', '.join(missing)}")
                continue
            for name, (res, args) in SIGNATURES.items():
                f = getattr(lib, name)
                f.restype, f.argtypes = res, args
            major = int(lib.slicewise_version().decode().split(".")[0])
            if major != ABI_MAJOR:
                tried.append(f"{cand}: ABI major version {major}, this binding needs {ABI_MAJOR}")
                continue
            lib.path = cand
            _lib = lib
            return lib
        raise OSError("libslicewise not found; tried: " + ("; ".join(tried) or "nothing (set "
                      "SLICEWISE_LIBRARY or put the library in a lib/ folder next to "
                      + os.path.basename(__file__) + ")"))


def _L():
    return _lib if _lib is not None else load_library()


def last_error():
    """The calling thread's last error message."""
    lib = _L()
    n = C.c_size_t(0)
    lib.slicewise_last_error(None, 0, C.byref(n))
    buf = C.create_string_buffer(n.value + 1)
    lib.slicewise_last_error(buf, len(buf), None)
    return buf.value.decode("utf-8", "replace")


def error_for(status, message=None):
    """The exception for a status code (message from `slicewise_last_error` when not given)."""
    if message is None:
        message = last_error() or status_str(status)
    return ERRORS.get(status, SlicewiseError)(status, message)


def check(status):
    """Raises the matching SlicewiseError for a non-OK status."""
    if status != OK:
        raise error_for(status)


def version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return _L().slicewise_version().decode()


def status_str(status):
    """The library's English description of a status code."""
    return _L().slicewise_status_str(status).decode()


def runtime_init(onnxruntime_path=None):
    """Loads ONNX Runtime once per process: `onnxruntime_path` (absolute, best) or the search."""
    check(_L().slicewise_runtime_init(_path_bytes(onnxruntime_path)))


def _path_bytes(p):
    if p is None:
        return None
    return os.fsencode(p)


# ---- handles ------------------------------------------------------------------------------------

class _Handle:
    """An owned C handle, freed once by close(), `with`, or garbage collection."""

    _free = None  # name of the C free function

    def __init__(self, handle):
        self._lib = _L()
        self._h = handle

    @property
    def handle(self):
        if not self._h:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._h

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            getattr(self._lib, self._free)(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible to do
            pass


def _geometry(desc, n):
    sp = list(desc.spacing)
    org = list(desc.origin)
    d = np.array(list(desc.direction), dtype=np.float64).reshape(3, 3)
    return {"dims": list(desc.dims)[:n], "spacing": sp, "origin": org, "direction": d}


def geometry_matrix(spacing, origin, direction):
    """The 4x4 IJK-to-space matrix: direction * diag(spacing), then origin."""
    m = np.eye(4)
    m[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing)
    m[:3, 3] = origin
    return m


class CancelToken(_Handle):
    """A cancellation token: `cancel()` from any thread stops a segmentation using it."""

    _free = "slicewise_cancel_free"

    def __init__(self):
        h = _H()
        check(_L().slicewise_cancel_new(C.byref(h)))
        super().__init__(h)

    def cancel(self):
        check(self._lib.slicewise_cancel_cancel(self.handle))

    @property
    def cancelled(self):
        flag = C.c_int(0)
        check(self._lib.slicewise_cancel_is_cancelled(self.handle, C.byref(flag)))
        return bool(flag.value)


class Volume(_Handle):
    """An image volume held by the library (a copy: the source array may change afterwards)."""

    _free = "slicewise_volume_free"

    @classmethod
    def open(cls, path):
        """Reads a DICOM series folder/file, NIfTI or TIFF."""
        h = _H()
        check(_L().slicewise_volume_open(_path_bytes(path), C.byref(h)))
        return cls(h)

    @classmethod
    def open_channels(cls, paths):
        """Reads one volume per channel (file i is channel i) on one grid, stacked."""
        arr = (C.c_char_p * len(paths))(*[_path_bytes(p) for p in paths])
        h = _H()
        check(_L().slicewise_volume_open_channels(arr, len(paths), C.byref(h)))
        return cls(h)

    @classmethod
    def from_memory(cls, data, dtype, dims, spacing=None, origin=None, direction=None,
                    space=SPACE_RAS):
        """The raw call: `data` a ctypes pointer (or int address, or None), `dtype` a
        DTYPE_* code, `dims` (x, y, z, channels); geometry in `space`. The caller keeps `data`
        alive for the duration of the call (the library copies it)."""
        def dbl(values, n):
            if values is None:
                return None
            arr = (C.c_double * n)(*[float(v) for v in np.asarray(values).ravel()])
            return C.cast(arr, _D3)
        d = None if dims is None else (C.c_size_t * 4)(*[int(v) for v in dims])
        h = _H()
        check(_L().slicewise_volume_from_memory(
            data, int(dtype), d, dbl(spacing, 3), dbl(origin, 3), dbl(direction, 9), int(space),
            C.byref(h)))
        return cls(h)

    @classmethod
    def from_array(cls, array, ijk_to_ras=None, space=SPACE_RAS):
        """Copies a numpy array of shape (z, y, x) or (z, y, x, channels) into a new volume.

        `ijk_to_ras`: the 4x4 IJK-to-RAS matrix (3D Slicer's GetIJKToRASMatrix; i = x, the last
        array axis); spacing, direction and origin are derived from it. With `space=SPACE_LPS`
        it is read as IJK-to-LPS instead. None: 1 mm, identity, origin 0.
        Dtypes the C side takes are passed as they are; bool becomes uint8, float16 float32,
        non-native byte orders native; others raise InvalidArgumentError.
        """
        a = np.asarray(array)
        if a.ndim not in (3, 4):
            raise InvalidArgumentError(1, f"array must be (z, y, x) or (z, y, x, c), got shape "
                                          f"{a.shape}")
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        elif a.dtype == np.float16:
            a = a.astype(np.float32)
        elif a.dtype.kind in "uif" and not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        code = DTYPES.get(a.dtype)
        if code is None:
            raise InvalidArgumentError(1, f"unsupported voxel dtype {a.dtype} (supported: "
                                          + ", ".join(str(d) for d in DTYPES) + ", bool, float16)")
        a = np.ascontiguousarray(a)
        dims = (a.shape[2], a.shape[1], a.shape[0], a.shape[3] if a.ndim == 4 else 1)
        spacing = origin = direction = None
        if ijk_to_ras is not None:
            m = np.asarray(ijk_to_ras, dtype=np.float64)
            if m.shape != (4, 4) or not np.all(np.isfinite(m)):
                raise InvalidArgumentError(1, f"ijk_to_ras must be a finite 4x4 matrix, got "
                                              f"shape {m.shape}")
            spacing = np.sqrt((m[:3, :3] ** 2).sum(axis=0))
            if np.any(spacing <= 0):
                raise InvalidArgumentError(1, f"ijk_to_ras has a zero-length axis: {m[:3, :3]}")
            direction = m[:3, :3] / spacing  # row-major [r][c]: component r of axis c
            origin = m[:3, 3]
        # `a` stays referenced here until the call returns; the library copies it.
        return cls.from_memory(a.ctypes.data_as(C.c_void_p), code, dims, spacing, origin,
                               direction, space)

    def info(self, space=SPACE_RAS):
        """{dims (x, y, z, c), spacing, origin, direction (3x3), original_dtype, format,
        acquisition_axis} with origin/direction in `space`."""
        d = VolumeDesc(struct_size=C.sizeof(VolumeDesc))
        check(self._lib.slicewise_volume_info(self.handle, space, C.byref(d)))
        g = _geometry(d, 4)
        g.update(original_dtype=d.original_dtype, format=d.format,
                 acquisition_axis=d.acquisition_axis)
        return g

    def ijk_to_ras(self):
        g = self.info(SPACE_RAS)
        return geometry_matrix(g["spacing"], g["origin"], g["direction"])


LabelStats = namedtuple("LabelStats", "value name color voxels ml")


class Mask(_Handle):
    """A label mask (uint8, 0 = background) on the segmented volume's grid."""

    _free = "slicewise_mask_free"

    def info(self, space=SPACE_RAS):
        """{dims (x, y, z), spacing, origin, direction (3x3), label_count} in `space`."""
        d = MaskDesc(struct_size=C.sizeof(MaskDesc))
        check(self._lib.slicewise_mask_info(self.handle, space, C.byref(d)))
        g = _geometry(d, 3)
        g["label_count"] = d.label_count
        return g

    def ijk_to_ras(self):
        g = self.info(SPACE_RAS)
        return geometry_matrix(g["spacing"], g["origin"], g["direction"])

    def array(self):
        """A numpy (z, y, x) uint8 copy of the labels."""
        data = C.POINTER(C.c_uint8)()
        n = C.c_size_t()
        check(self._lib.slicewise_mask_data(self.handle, C.byref(data), C.byref(n)))
        x, y, z = self.info(SPACE_LPS)["dims"]
        if n.value != x * y * z:
            raise PanicError(11, f"mask holds {n.value} bytes, dims say {x * y * z}")
        if n.value == 0:
            return np.zeros((z, y, x), dtype=np.uint8)
        return np.ctypeslib.as_array(data, shape=(n.value,)).copy().reshape(z, y, x)

    def label_stats(self):
        """Per label (model labels plus any other value present, background excluded)."""
        out = []
        for i in range(self.info(SPACE_LPS)["label_count"]):
            s = LabelStatsDesc(struct_size=C.sizeof(LabelStatsDesc))
            check(self._lib.slicewise_mask_label_stats(self.handle, i, C.byref(s)))
            out.append(LabelStats(int(s.value), (s.name or b"").decode("utf-8", "replace"),
                                  tuple(s.color), int(s.voxels), float(s.ml)))
        return out

    def save(self, path):
        """Writes .nii/.nii.gz or .tif/.tiff, atomically."""
        check(self._lib.slicewise_mask_save(self.handle, _path_bytes(path)))


class Model(_Handle):
    """A loaded ONNX model; may segment from several threads at once."""

    _free = "slicewise_model_free"

    def __init__(self, path, device="auto", threads=0, runtime_path=None):
        lib = _L()
        opts = ModelOptions()
        check(lib.slicewise_model_options_init(C.byref(opts)))
        if isinstance(device, str):
            if device.lower() not in DEVICES:
                raise InvalidArgumentError(1, f"device {device!r} is not one of "
                                              + ", ".join(DEVICES))
            device = DEVICES[device.lower()]
        opts.device = int(device)
        opts.threads = int(threads)
        rt = _path_bytes(runtime_path)
        opts.runtime_path = rt
        h = _H()
        check(lib.slicewise_model_open(_path_bytes(path), C.byref(opts), C.byref(h)))
        super().__init__(h)
        self.path = str(path)

    def info(self):
        """{"path", "contract": {..., "labels": [{value, name, color}]}, "provider":
        {"requested", "used", "notes"}} as parsed JSON."""
        n = C.c_size_t(0)
        st = self._lib.slicewise_model_info(self.handle, None, 0, C.byref(n))
        if st not in (OK, 13):
            check(st)
        buf = C.create_string_buffer(n.value + 1)
        check(self._lib.slicewise_model_info(self.handle, buf, len(buf), None))
        return json.loads(buf.value.decode("utf-8"))

    def select_series(self, path):
        """The DICOM series under `path` (headers only), each a dict of its facts with
        "selected" (whether this model's series selection takes it) and "reason" (why not)."""
        out = C.c_char_p()
        check(self._lib.slicewise_select_series(self.handle, _path_bytes(path), C.byref(out)))
        try:
            return json.loads(out.value.decode("utf-8"))
        finally:
            self._lib.slicewise_string_free(out)

    def labels(self):
        """The contract's labels: [{"value", "name", "color"}]."""
        return list(self.info().get("contract", {}).get("labels") or [])

    def provider(self):
        """The execution provider actually used, e.g. "CPUExecutionProvider"."""
        return self.info().get("provider", {}).get("used")

    def segment(self, volume, batch_size=0, threshold=None, min_component_voxels=0,
                largest_component=False, fill_holes=False, tta=False, progress=None,
                cancel=None):
        """Segments `volume`; returns a Mask.

        `progress(done, total)` is called between batches on this thread; a truthy return
        cancels (CancelledError). `cancel`: a CancelToken another thread may cancel. An
        exception raised by `progress` cancels the run and is re-raised here.
        """
        opts = SegmentOptions()
        check(self._lib.slicewise_segment_options_init(C.byref(opts)))
        opts.batch_size = int(batch_size)
        opts.threshold = -1.0 if threshold is None else float(threshold)
        opts.min_component_voxels = int(min_component_voxels)
        opts.largest_component = 1 if largest_component else 0
        opts.fill_holes = 1 if fill_holes else 0
        opts.tta = 1 if tta else 0
        opts.cancel = cancel.handle.value if cancel is not None else None
        raised = []

        def trampoline(_userdata, done, total):
            # An exception must not unwind through the library: remember it and cancel.
            try:
                return 1 if progress(int(done), int(total)) else 0
            except BaseException as e:  # noqa: B902 - re-raised after the call
                raised.append(e)
                return 1

        cb = PROGRESS_FN(trampoline) if progress is not None else PROGRESS_FN()
        h = _H()
        st = self._lib.slicewise_segment(self.handle, volume.handle, C.byref(opts), cb, None,
                                         C.byref(h))
        if raised:
            raise raised[0]
        check(st)
        return Mask(h)
