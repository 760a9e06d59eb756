"""Batch segmentation on a Ray cluster, writing what ``slicewise segment`` writes.

::

    import slicewise.ray
    report = slicewise.ray.segment("inputs.csv", "models/m.onnx", "/data/out",
                                   num_workers=4, num_gpus_per_worker=1)

The jobs are planned on the driver exactly as the CLI plans them (same order, same output
names), spread over a Ray Data actor pool whose actors each load the model once, and run by the
CLI's own job code: the masks, previews and ``<base>.slicewise.json`` sidecars are the files
``slicewise segment --manifest inputs.csv --out /data/out`` writes (the masks byte for byte),
jobs complete from an earlier run are skipped, and the report (JSON + CSV) is the CLI's.
Requires ``ray[data]`` (``pip install "slicewise[ray]"``); output folders must be shared by the
driver and the workers (one machine, or a shared file system).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import Model, _native, job_settings
from ._errors import invalid

PathLike = Union[str, "os.PathLike[str]"]


class SegmentActor:
    """A Ray Data actor: loads the model once, then runs each batch's jobs in turn."""

    def __init__(
        self,
        model: str,
        device: str,
        threads: Optional[int],
        runtime: Optional[str],
        settings: str,
        inputs: List[str],
    ) -> None:
        self.model = Model(model, device=device, threads=threads, runtime=runtime)
        self.runner = _native.Runner(self.model._native, settings, inputs)
        self.record = _native.model_record(self.model._native)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        records = [self.runner.run(str(job)) for job in batch["job"]]
        return {
            "seq": np.asarray(batch["seq"]),
            "record": np.array(records, dtype=object),
            "model": np.array([self.record] * len(records), dtype=object),
        }


def segment(
    manifest: Union[PathLike, Sequence[PathLike]],
    model: PathLike,
    out_dir: PathLike,
    *,
    num_workers: int = 1,
    num_gpus_per_worker: float = 0,
    num_cpus_per_worker: float = 1,
    device: str = "auto",
    threads: Optional[int] = None,
    runtime: Optional[PathLike] = None,
    report: Optional[PathLike] = None,
    series: Optional[str] = None,
    all_series: bool = False,
    **options: Any,
) -> Dict[str, Any]:
    """Segments every input of ``manifest`` on the Ray cluster ``ray.init()`` connects to.

    Args:
        manifest: a manifest file (CSV with an ``input`` column, or one path per line; the
            CLI's ``--manifest``) or a list of inputs (the CLI's positional inputs).
        model: the ``.onnx`` model, at this path on every worker.
        out_dir: the output folder (the CLI's ``--out``), shared by all workers.
        num_workers: actors in the pool (each loads the model once).
        num_gpus_per_worker: GPUs each actor reserves (with ``device="auto"`` or ``"cuda"``).
        num_cpus_per_worker: CPUs each actor reserves.
        device, threads, runtime: as for :class:`slicewise.Model`, on each worker (``runtime``
            defaults to the driver's ``$SLICEWISE_ORT_LIB`` when set).
        report: the report's path (default ``out_dir/report.json``; CSV next to it).
        series, all_series: which DICOM series run, as for :meth:`slicewise.Model.segment_file`
            (default: those the model's series selection takes; the driver reads its rules).
        **options: the CLI's job options: ``batch_size``, ``threshold``, ``largest_component``,
            ``fill_holes``, ``min_size``, ``tta``, ``format``, ``preview``, ``overwrite``.

    Returns:
        The report as written (a dict: ``model``, ``options``, ``jobs``, ``summary``).
    """
    import ray

    started = time.perf_counter()
    is_manifest = isinstance(manifest, (str, os.PathLike))
    rows = _rows(manifest)
    problem = _native.check_out(rows, os.fspath(out_dir))
    if problem:
        raise invalid(problem)
    settings = job_settings(out_dir, options)
    if runtime is None:
        runtime = os.environ.get("SLICEWISE_ORT_LIB")
    jobs = _native.plan(rows, is_manifest, _rules_model(model, runtime, all_series), series,
                        all_series)
    if not ray.is_initialized():
        ray.init()
    items = [{"seq": i, "job": j} for i, j in enumerate(jobs)]
    results = (
        ray.data.from_items(items)
        .map_batches(
            SegmentActor,
            fn_constructor_kwargs={
                "model": os.fspath(model),
                "device": device,
                "threads": threads,
                "runtime": None if runtime is None else os.fspath(runtime),
                "settings": settings,
                "inputs": rows,
            },
            # An actor that dies (its process killed, its node lost) is restarted and its batch
            # rerun: Ray Data's defaults for actor pools (max_restarts=-1, max_task_retries=-1;
            # passing them here is deprecated). A rerun job redoes or skips its files, which are
            # written whole (temporary file, then rename) or not at all.
            batch_size=1,
            batch_format="numpy",
            concurrency=num_workers,
            num_cpus=num_cpus_per_worker,
            num_gpus=num_gpus_per_worker,
        )
        .take_all()
    )
    return _write_report(report, out_dir, results, settings, device, threads, started)


def _rules_model(model: PathLike, runtime: Optional[PathLike], all_series: bool):
    """The model on the driver's CPU, for its series selection (None when every series runs)."""
    if all_series:
        return None
    return Model(model, device="cpu", threads=1, runtime=runtime)._native


def _rows(manifest: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(manifest, (str, os.PathLike)):
        rows = [os.fspath(p) for p in _native.read_manifest(os.fspath(manifest))]
    else:
        rows = [os.fspath(p) for p in manifest]
    if not rows:
        raise invalid("no inputs to segment")
    return rows


def _write_report(report, out_dir, results, settings, device, threads, started) -> Dict[str, Any]:
    """The CLI's report from the actors' records, in job order."""
    ordered = sorted(results, key=lambda r: int(r["seq"]))
    records: List[str] = [str(r["record"]) for r in ordered]
    model_record = str(ordered[0]["model"]) if ordered else None
    if model_record is None:
        raise invalid("no jobs: the inputs hold no volumes")
    path = os.fspath(report) if report is not None else os.path.join(os.fspath(out_dir), "report.json")
    options = _native.options_json(settings, device, threads)
    _native.write_report(path, model_record, options, records, time.perf_counter() - started)
    with open(path, encoding="utf-8") as f:
        return json.load(f)
