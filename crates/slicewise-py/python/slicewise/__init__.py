"""slicewise for Python: slice-by-slice ONNX U-Net segmentation of medical volumes.

The same engine as the ``slicewise`` command line and ``libslicewise``, in the style of
nibabel, SimpleITK and onnxruntime::

    import nibabel as nib, slicewise
    model = slicewise.Model("models/msd-hippocampus-small.onnx", device="cpu")
    img = nib.load("hippocampus_375.nii.gz")
    seg = model.segment(np.asarray(img.dataobj), affine=img.affine)
    seg.mask            # uint8, shape and index order of the input (i, j, k)
    seg.labels          # [Label(value=1, name='anterior hippocampus', voxels=..., ml=...), ...]
    slicewise.write_mask("mask.nii.gz", seg.mask, img.affine)

Array conventions (the two ways people hold volumes):

* **with an affine** (nibabel's convention): the array is indexed ``(i, j, k)`` or
  ``(i, j, k, c)`` and ``affine`` maps indices ``i, j, k`` to RAS millimetres, exactly as
  ``nibabel`` gives ``np.asarray(img.dataobj)`` and ``img.affine``. The result equals
  ``slicewise segment`` of the file voxel for voxel (slices along ``k``, like the CLI for files
  whose header names no other slice dimension).
* **without one** (numpy's and SimpleITK's ``GetArrayFromImage`` convention): the array is
  ``(z, y, x)`` or ``(c, z, y, x)``, one slice per ``array[z]``, and ``spacing`` is given in
  the same order, ``(z, y, x)`` in mm (from SimpleITK: ``img.GetSpacing()[::-1]``).

Any numeric dtype (uint8, int16, uint16, float32, float64, ...) and any memory order (C,
Fortran, strided views) is accepted; the engine works on float32 copies. Segmenting releases
the GIL, and one :class:`Model` may be used from many threads at once.

Every failure raises :class:`slicewise.Error`, whose ``status`` names the kind (``"IO"``,
``"FORMAT"``, ``"CANCELLED"``, ...).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _runtime
from . import _slicewise as _native
from ._errors import Error, invalid
from ._slicewise import CancelToken

__version__: str = _native.__version__

__all__ = [
    "CancelToken",
    "Error",
    "Label",
    "Model",
    "Segmentation",
    "read_volume",
    "write_mask",
]

PathLike = Union[str, "os.PathLike[str]"]
ProgressFn = Callable[[int, int], Optional[bool]]

#: Segmentation options and their defaults (the CLI's: ``--batch-size 8`` and so on), as the
#: engine declares them for every front end.
SEGMENT_OPTIONS: Dict[str, Any] = json.loads(_native.default_segment_options())

#: Options of the file jobs (:meth:`Model.segment_file`, :func:`slicewise.ray.segment`) beyond
#: :data:`SEGMENT_OPTIONS`: the CLI's ``--format``, ``--preview`` and ``--overwrite``.
JOB_OPTIONS: Dict[str, Any] = {"format": None, "preview": False, "overwrite": False}


class Label(NamedTuple):
    """One label of a segmentation: its value in the mask, name, voxel count and volume."""

    value: int
    name: str
    voxels: int
    ml: float


class Segmentation:
    """The result of :meth:`Model.segment`.

    Attributes:
        mask: uint8 labels (0 = background), the input's spatial shape and index order.
        labels: one :class:`Label` per label the model declares (and any other value present).
        timings: seconds per stage: ``convert`` (array to engine volume), ``preprocess``,
            ``inference``, ``postprocess``, and ``total``.
        provider: the ONNX Runtime execution provider that ran, e.g. ``"CPUExecutionProvider"``.
        warnings: non-fatal notes from the engine.
        affine: the mask's index-to-RAS affine (the input's), or None for ``(z, y, x)`` input.
        spacing: the ``(z, y, x)`` spacing for ``(z, y, x)`` input, or None.
    """

    def __init__(
        self,
        mask: np.ndarray,
        labels: List[Label],
        timings: Dict[str, float],
        provider: str,
        warnings: List[str],
        affine: Optional[np.ndarray],
        spacing: Optional[Tuple[float, float, float]],
    ) -> None:
        self.mask = mask
        self.labels = labels
        self.timings = timings
        self.provider = provider
        self.warnings = warnings
        self.affine = affine
        self.spacing = spacing

    def save(self, path: PathLike) -> None:
        """Writes the mask (NIfTI ``.nii``/``.nii.gz`` or TIFF ``.tif``) on its grid."""
        write_mask(path, self.mask, self.affine, spacing=self.spacing)

    def __repr__(self) -> str:
        found = ", ".join(f"{l.name or l.value}: {l.ml:.3g} mL" for l in self.labels)
        return f"<Segmentation {self.mask.shape} {found or 'no labels'} on {self.provider}>"


class Model:
    """An ONNX segmentation model with its slicewise contract, loaded once.

    Args:
        path: the ``.onnx`` file (a ``<model>.json`` card next to it is read too).
        device: ``"auto"`` (CUDA, then TensorRT, then CPU), ``"cpu"``, ``"cuda"`` or
            ``"tensorrt"`` (the last two fail when unavailable).
        threads: ONNX Runtime intra-op threads (None: its default).
        runtime: the ONNX Runtime shared library; default ``$SLICEWISE_ORT_LIB``, else the one
            of an installed ``onnxruntime`` package, else the engine's search.

    Attributes:
        contract: the model's contract (name, version, normalisation, size, labels, ...).
        provider: the execution provider that runs it, e.g. ``"CPUExecutionProvider"``.
        provider_report: what was requested, what runs, and why others were skipped.

    A model is immutable: any number of threads may call :meth:`segment` at once (the GIL is
    released while segmenting; ONNX Runtime's runs on one model take turns).

    Raises:
        Error: ``MODEL`` (not a slicewise model), ``RUNTIME`` (ONNX Runtime not loadable),
            ``PROVIDER`` (the device asked for cannot run), ``IO``.
    """

    def __init__(
        self,
        path: PathLike,
        device: str = "auto",
        threads: Optional[int] = None,
        *,
        runtime: Optional[PathLike] = None,
    ) -> None:
        self._native = _native.Model(os.fspath(path), device, threads, _runtime.find(runtime))
        self.device = device
        self.contract: Dict[str, Any] = json.loads(self._native.contract_json())
        self.provider_report: Dict[str, Any] = json.loads(self._native.provider_json())
        self.provider: str = self.provider_report["used"]

    @property
    def path(self) -> str:
        """The model file."""
        return os.fspath(self._native.path)

    @property
    def threads(self) -> Optional[int]:
        """The intra-op thread count asked for."""
        return self._native.threads

    @property
    def fallback_reason(self) -> Optional[str]:
        """Why ``device="auto"`` runs on CPU, or None."""
        return self._native.fallback_reason()

    def __repr__(self) -> str:
        c = self.contract
        return f"<slicewise.Model {c['name']} {c['version']} on {self.provider}>"

    def segment(
        self,
        array: Any,
        affine: Optional[Any] = None,
        spacing: Optional[Sequence[float]] = None,
        *,
        slice_axis: Optional[int] = None,
        progress: Optional[ProgressFn] = None,
        cancel: Optional[Any] = None,
        **options: Any,
    ) -> Segmentation:
        """Segments a volume held in memory.

        Args:
            array: the voxels, any numeric dtype and memory order. With ``affine``: ``(i, j,
                k)`` or ``(i, j, k, c)`` (nibabel's ``np.asarray(img.dataobj)``). Without:
                ``(z, y, x)`` or ``(c, z, y, x)``.
            affine: 4x4 index-to-RAS affine (nibabel's ``img.affine``).
            spacing: without ``affine``: voxel size ``(z, y, x)`` in mm (default 1 mm).
            slice_axis: the spatial axis of ``array`` to cut slices across; default ``k`` (2)
                with an affine, ``z`` (0) without (pass ``img.header.get_dim_info()[2]`` for a
                NIfTI whose header names another slice dimension, as the CLI reads it).
            progress: ``progress(done, total)`` after each batch of slices; returning False
                cancels.
            cancel: a :class:`CancelToken` (or anything with ``is_set()``, such as a
                ``threading.Event``); setting it from another thread cancels.
            **options: ``batch_size`` (8), ``threshold`` (the model's), ``largest_component``,
                ``fill_holes``, ``min_size`` (0 voxels), ``tta`` (False): the CLI's options.

        Returns:
            A :class:`Segmentation` whose ``mask`` has the input's spatial shape and order.

        Raises:
            Error: ``CANCELLED`` when cancelled, ``INVALID_ARGUMENT`` for unusable arrays or
                options, ``INFERENCE`` when ONNX Runtime fails.
        """
        opts = _segment_options(options)
        arr = _numeric(array)
        vol, lps, axis, out_affine, out_spacing = _engine_layout(arr, affine, spacing, slice_axis)
        token, hook = _cancel_hooks(cancel, progress)
        mask, stats, timings, provider, warnings = self._native.segment(
            vol, lps, axis, opts, hook, token
        )
        if out_affine is not None:
            mask = mask.T
        return Segmentation(
            mask=mask,
            labels=[Label(s["value"], s["name"], s["voxels"], s["ml"]) for s in json.loads(stats)],
            timings=json.loads(timings),
            provider=provider,
            warnings=list(warnings),
            affine=out_affine,
            spacing=out_spacing,
        )

    def segment_file(
        self,
        input: Union[PathLike, Sequence[PathLike]],
        out_dir: PathLike,
        *,
        series: Optional[str] = None,
        all_series: bool = False,
        **options: Any,
    ) -> List[dict]:
        """Segments a file or folder exactly as ``slicewise segment INPUT --out OUT_DIR`` does.

        Writes the same files (mask, previews, ``<base>.slicewise.json`` sidecar) and skips
        jobs whose outputs are complete from an earlier run. A DICOM folder gives one job per
        series the model's series selection takes; the others come back with ``status ==
        "not_selected"`` and the rule they failed in ``reason``. ``series`` runs exactly that
        SeriesInstanceUID, ``all_series=True`` every series (the CLI's ``--series``,
        ``--all-series``). A list (or tuple) of paths is one multi-channel case, file i being
        channel i (``slicewise segment --channels``); for a model taking several channels, files
        named the nnU-Net way (``CASE_0000.nii.gz``, ``CASE_0001.nii.gz``, ...) in a folder are
        one job per case. Options: those of :meth:`segment` plus ``format`` (``"nifti"``,
        ``"tiff"``, ``"dicom-seg"``, ``"rtstruct"``, ``"nrrd"``), ``preview`` and ``overwrite``.

        Returns:
            The job records (as in the CLI's report); a failed job has ``status == "failed"``
            and its ``error``, it does not raise.
        """
        case = [os.fspath(p) for p in _paths(input)]
        problem = _native.check_out(case, os.fspath(out_dir))
        if problem:
            raise invalid(problem)
        runner = _native.Runner(self._native, job_settings(out_dir, options), case)
        jobs = _native.plan_cases(
            [case], len(self.contract["source_channels"]), self._native, series, all_series
        )
        return [json.loads(runner.run(job)) for job in jobs]


def _paths(input: Union[PathLike, Sequence[PathLike]]) -> List[PathLike]:
    """One path, or a list of them (one per channel)."""
    if isinstance(input, (str, bytes, os.PathLike)):
        return [input]
    paths = list(input)
    if not paths:
        raise invalid("no input paths given")
    return paths


def job_settings(out_dir: PathLike, options: Dict[str, Any]) -> str:
    """The settings of file jobs writing into ``out_dir`` as the JSON object the job layer reads
    (unknown options refused here; values checked and defaults filled by the engine)."""
    known = {**SEGMENT_OPTIONS, **JOB_OPTIONS}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return _to_json({**options, "out": os.fspath(out_dir)})


def _segment_options(options: Dict[str, Any]) -> str:
    """``options`` as the JSON object the engine reads (unknown ones refused here)."""
    unknown = sorted(set(options) - set(SEGMENT_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(SEGMENT_OPTIONS)}"
        )
    return _to_json(options)


def _to_json(options: Dict[str, Any]) -> str:
    def plain(value: Any) -> Any:
        # numpy scalars (np.float32(0.4), np.int64(8), np.bool_(True)) as Python's own.
        if isinstance(value, np.generic):
            return value.item()
        raise invalid(f"option value {value!r} is not a number, string, boolean or None")

    return json.dumps(options, default=plain)


def _numeric(array: Any) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise invalid(f"voxels must be numbers, not {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise invalid(f"a volume has 3 or 4 dimensions, this array has {arr.ndim}")
    if arr.size == 0:
        raise invalid(f"empty volume {arr.shape}")
    return arr


def _engine_layout(arr, affine, spacing, slice_axis):
    """The engine's ``[c, z, y, x]`` float32 view, LPS affine and slice axis (i=0, j=1, k=2),
    and the affine or spacing the mask keeps."""
    if affine is not None:
        if spacing is not None:
            raise invalid("give an affine or a spacing, not both (the affine has the spacing)")
        ras = np.array(affine, dtype=np.float64)
        if ras.shape != (4, 4):
            raise invalid(f"the affine must be 4x4, not {ras.shape}")
        vol = arr.T[np.newaxis] if arr.ndim == 3 else arr.transpose(3, 2, 1, 0)
        axis = 2 if slice_axis is None else _axis(slice_axis)
        lps = ras.copy()
        lps[:2] *= -1.0
        return _f32(vol), lps.tolist(), axis, ras, None
    zyx = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(zyx) != 3 or not all(s > 0 and np.isfinite(s) for s in zyx):
        raise invalid(f"spacing must be three positive numbers (z, y, x), not {spacing!r}")
    vol = arr[np.newaxis] if arr.ndim == 3 else arr
    # Index axes i, j, k are x, y, z: array axis a of (z, y, x) is index axis 2 - a.
    axis = 2 - (0 if slice_axis is None else _axis(slice_axis))
    lps = np.diag([zyx[2], zyx[1], zyx[0], 1.0])
    return _f32(vol), lps.tolist(), axis, None, zyx


def _axis(a: int) -> int:
    if a not in (0, 1, 2):
        raise invalid(f"slice_axis must be 0, 1 or 2, not {a!r}")
    return int(a)


def _f32(vol: np.ndarray) -> np.ndarray:
    # Native byte order float32; the layout is left as it is (the engine copies in one pass).
    return vol.astype(np.float32, copy=False)


def _cancel_hooks(cancel, progress):
    """The engine's cancel token and the progress hook (which also polls Event-like objects)."""
    if cancel is None or isinstance(cancel, CancelToken):
        return cancel, progress
    if not callable(getattr(cancel, "is_set", None)):
        raise invalid("cancel must be a slicewise.CancelToken or have is_set()")
    if cancel.is_set():
        raise Error("cancelled", status="CANCELLED", code=10)

    def hook(done: int, total: int) -> Optional[bool]:
        if cancel.is_set():
            return False
        return None if progress is None else progress(done, total)

    return None, hook


def read_volume(
    path: Union[PathLike, Sequence[PathLike]], *, series_uid: Optional[str] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Reads a volume as ``(array, affine)`` in nibabel's convention.

    ``path`` may be a list of paths, one single-channel volume per channel on one voxel grid
    (e.g. nnU-Net's ``CASE_0000.nii.gz``, ``CASE_0001.nii.gz``): they come back stacked as
    ``(i, j, k, c)`` with the first one's affine, ready for :meth:`Model.segment` of a
    multi-channel model; volumes on other grids raise ``FORMAT`` naming both files.

    ``array`` is indexed ``(i, j, k)`` (or ``(i, j, k, c)`` for several channels) in Fortran
    order and ``affine`` maps ``i, j, k`` to RAS mm. For NIfTI this is what nibabel gives as
    ``np.asarray(img.dataobj)`` and ``img.affine``: the on-disk dtype when the values fit it
    exactly (unscaled integer data), float32 otherwise (slicewise holds voxels as float32, so
    float64 files come back as float64 holding float32 values). DICOM series and TIFF stacks
    come back the same way, their LPS geometry converted to RAS. ``series_uid`` picks one
    series of a DICOM folder holding several.
    """
    paths = _paths(path)
    if len(paths) > 1 or not isinstance(path, (str, bytes, os.PathLike)):
        if series_uid is not None:
            raise invalid("series_uid picks a series of one folder, not of a channel list")
        data, affine, dtype, _meta = _native.read_channels([os.fspath(p) for p in paths])
        arr = data.transpose(3, 2, 1, 0)
        return _stored_dtype(arr, np.dtype(dtype)), np.array(affine, dtype=np.float64)
    data, affine, dtype, _meta = _native.read_volume(os.fspath(path), series_uid)
    arr = data[0].T if data.shape[0] == 1 else data.transpose(3, 2, 1, 0)
    return _stored_dtype(arr, np.dtype(dtype)), np.array(affine, dtype=np.float64)


def _stored_dtype(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return arr.astype(dtype, copy=False)
    cast = arr.astype(dtype)
    return cast if np.array_equal(cast, arr) else arr


def write_mask(
    path: PathLike,
    mask: Any,
    affine: Optional[Any] = None,
    *,
    spacing: Optional[Sequence[float]] = None,
) -> None:
    """Writes a label mask atomically: NIfTI (``.nii``, ``.nii.gz``) or TIFF (``.tif``).

    With ``affine`` the mask is indexed ``(i, j, k)`` and the affine maps it to RAS (nibabel's
    convention, as :meth:`Model.segment` returns it); without, it is ``(z, y, x)`` with
    ``spacing`` ``(z, y, x)`` in mm. Values must be integers in 0..255.
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise invalid(f"a mask has 3 dimensions, this one {m.ndim}")
    if m.dtype != np.uint8:
        if m.dtype.kind not in "biu" or (m.size and (m.min() < 0 or m.max() > 255)):
            raise invalid(f"mask values must be integers in 0..255 (dtype {m.dtype})")
        m = m.astype(np.uint8)
    if affine is not None:
        if spacing is not None:
            raise invalid("give an affine or a spacing, not both")
        ras = np.array(affine, dtype=np.float64)
        zyx_mask = m.T
    else:
        zyx = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
        ras = np.diag([-zyx[2], -zyx[1], zyx[0], 1.0])
        zyx_mask = m
    _native.write_mask(os.fspath(path), zyx_mask, ras.tolist())
