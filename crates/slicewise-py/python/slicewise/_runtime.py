"""Finding the ONNX Runtime shared library that slicewise loads."""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def find(explicit: Optional[PathLike] = None) -> Optional[str]:
    """The ONNX Runtime library to load: ``explicit``, else ``$SLICEWISE_ORT_LIB``, else the one
    inside an installed ``onnxruntime`` Python package (found without importing it), else None
    (the engine then searches ``$ORT_DYLIB_PATH`` and its own folders)."""
    if explicit is not None:
        return os.fspath(explicit)
    env = os.environ.get("SLICEWISE_ORT_LIB")
    if env:
        return env
    return _from_onnxruntime_package()


def _from_onnxruntime_package() -> Optional[str]:
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        libs = sorted(glob.glob(os.path.join(folder, "capi", "libonnxruntime.so.*")))
        # The versioned file itself, not a symlink to it: the engine reads its version.
        real = [p for p in libs if not os.path.islink(p)]
        if real or libs:
            return (real or libs)[-1]
    return None
