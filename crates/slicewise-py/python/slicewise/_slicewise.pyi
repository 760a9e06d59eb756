# Type stubs of the native extension (crates/slicewise-py/src). The public, documented API is
# slicewise/__init__.py's; these low-level calls take arrays in the engine's [c, z, y, x] order
# and pass jobs, records and options as JSON text.
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]
_Affine = List[List[float]]

__version__: str

class CancelToken:
    """A cancellation token: ``cancel()`` from any thread stops a segmentation between batches."""

    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

class Model:
    def __init__(
        self,
        path: _Path,
        device: str = "auto",
        threads: Optional[int] = None,
        runtime: Optional[_Path] = None,
    ) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def threads(self) -> Optional[int]: ...
    @property
    def load_seconds(self) -> float: ...
    def contract_json(self) -> str: ...
    def provider_json(self) -> str: ...
    def fallback_reason(self) -> Optional[str]: ...
    def segment(
        self,
        data: npt.NDArray[np.float32],
        affine: _Affine,
        axis: int,
        options: str,
        progress: Optional[Callable[[int, int], Optional[bool]]] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Tuple[npt.NDArray[np.uint8], str, str, str, List[str]]: ...

class Runner:
    def __init__(self, model: Model, settings: str, inputs: Sequence[_Path]) -> None: ...
    def run(self, job: str) -> str: ...

def read_volume(
    path: _Path, series_uid: Optional[str] = None
) -> Tuple[npt.NDArray[np.float32], _Affine, str, str]: ...
def read_channels(
    paths: Sequence[_Path],
) -> Tuple[npt.NDArray[np.float32], _Affine, str, str]: ...
def write_mask(path: _Path, mask: npt.NDArray[np.uint8], affine: _Affine) -> None: ...
def read_manifest(path: _Path) -> List[Path]: ...
def plan(
    inputs: Sequence[_Path],
    rows: bool = False,
    model: Optional[Model] = None,
    series: Optional[str] = None,
    all_series: bool = False,
) -> List[str]: ...
def plan_cases(
    inputs: Sequence[Sequence[_Path]],
    channels: int,
    model: Optional[Model] = None,
    series: Optional[str] = None,
    all_series: bool = False,
) -> List[str]: ...
def check_out(inputs: Sequence[_Path], out: _Path) -> Optional[str]: ...
def model_record(model: Model) -> str: ...
def options_json(settings: str, device_name: str, threads: Optional[int] = None) -> str: ...
def default_segment_options() -> str: ...
def write_report(
    path: _Path, model: str, options: str, records: List[str], seconds: float
) -> None: ...
def status_names() -> List[Tuple[str, int]]: ...
