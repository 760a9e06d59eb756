"""Benchmarks of the slicewise Python package (a measurement, not a test).

usage: bench_pkg.py CLI_BIN [REPEATS] [RAY_VOLUMES]
  CLI_BIN      the release `slicewise` binary (target/release/slicewise)
  REPEATS      runs per figure (default 10)
  RAY_VOLUMES  hippocampus volumes for the Ray throughput (default 8, from ../shared/data)

Prints JSON: per-volume seconds on the bundled sample for the CLI (one process per volume, and
one job of a batch) and the Python API (`Model.segment` on a nibabel array, `segment_file`),
the API's overhead over the engine's own stages, and volumes per second for a batch through the
CLI (one process), two CLI shards side by side, and slicewise.ray with 1 and 2 workers on a
local Ray (2 CPUs). Peak RSS (VmHWM, MiB): the CLI process of one job, this process after the
API figures, and each slicewise.ray actor process (read from /proc while it lives). One ONNX
Runtime thread everywhere (SLICEWISE_ORT_LIB must be set).
"""
import json
import os
import resource
import threading
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import slicewise

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "models/samples/msd-hippocampus/hippocampus_375.nii.gz"
MODEL = REPO / "models/msd-hippocampus-small.onnx"


def median_time(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cli(bin_, *args):
    subprocess.run([bin_, *map(str, args)], check=True, capture_output=True)


def hwm_mib(pid):
    """A live process's peak resident set (VmHWM) in MiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def actor_pids():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::") and "SegmentActor" in cmd:
                pids.append(int(d))
    return pids


class ActorRss:
    """Polls the VmHWM of the SegmentActor processes a Ray run starts, while it lasts; `peaks`
    maps pid -> MiB."""

    def __init__(self):
        self.peaks, self._stop = {}, threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            for pid in set(actor_pids()) - self._before:
                v = hwm_mib(pid)
                if v is not None:
                    self.peaks[pid] = max(v, self.peaks.get(pid, 0))
            self._stop.wait(0.1)

    def __enter__(self):
        self._before = set(actor_pids())  # an earlier run's actors, not yet gone
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def cli_peak_rss_mib(bin_, *args):
    """Peak RSS of one CLI process (wait4's ru_maxrss, KiB on Linux)."""
    p = subprocess.Popen([bin_, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0
    return usage.ru_maxrss / 1024


def bench_api(bin_, n, tmp):
    out = {}
    cli_args = ["segment", SAMPLE, "--model", MODEL, "--out", tmp / "cli", "--device", "cpu",
                "--threads", "1", "--overwrite", "--report", tmp / "cli/report.json"]
    out["cli_process_s"] = median_time(lambda: cli(bin_, *cli_args), n)
    with open(tmp / "cli/report.json") as f:
        rep = json.load(f)
    out["cli_job_total_s"] = rep["jobs"][0]["timings"]["total"]
    out["cli_model_load_s"] = rep["model"]["load_seconds"]
    out["cli_peak_rss_mib"] = cli_peak_rss_mib(bin_, *cli_args)
    t = time.perf_counter()
    model = slicewise.Model(MODEL, device="cpu", threads=1)
    out["py_model_load_s"] = time.perf_counter() - t
    img = nib.load(SAMPLE)
    arr = np.asarray(img.dataobj)
    segs = []
    out["py_segment_s"] = median_time(lambda: segs.append(model.segment(arr, affine=img.affine)), n)
    engine = [s.timings["preprocess"] + s.timings["inference"] + s.timings["postprocess"] for s in segs]
    out["py_engine_stages_s"] = statistics.median(engine)
    out["py_overhead_s"] = out["py_segment_s"] - out["py_engine_stages_s"]
    out["py_nibabel_read_segment_write_s"] = median_time(lambda: slicewise.write_mask(
        tmp / "py.nii.gz",
        model.segment(np.asarray(nib.load(SAMPLE).dataobj), affine=img.affine).mask,
        img.affine), n)
    out["py_segment_file_s"] = median_time(
        lambda: model.segment_file(SAMPLE, tmp / "pyfile", overwrite=True), n)
    out["py_process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def bench_batch(bin_, volumes, tmp):
    images = Path(os.environ.get("SLICEWISE_SHARED_DATA", REPO.parent / "shared/data")) / "msd-hippocampus/images"
    rows = sorted(images.glob("*.nii.gz"))[:volumes]
    m = tmp / "inputs.csv"
    m.write_text("input\n" + "".join(f"{p}\n" for p in rows))
    out = {"volumes": len(rows)}
    base = ["segment", "--manifest", m, "--model", MODEL, "--device", "cpu", "--threads", "1",
            "--overwrite"]
    t = time.perf_counter()
    cli(bin_, *base, "--out", tmp / "b1")
    out["cli_one_process_vol_per_s"] = len(rows) / (time.perf_counter() - t)
    t = time.perf_counter()
    procs = [subprocess.Popen([bin_, *map(str, base), "--out", tmp / "b2", "--shard", f"{i}/2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
    assert all(p.wait() == 0 for p in procs)
    out["cli_two_shards_vol_per_s"] = len(rows) / (time.perf_counter() - t)
    import ray
    import slicewise.ray as sray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for workers in (1, 2):
            sray.segment(m, MODEL, tmp / f"warm{workers}", num_workers=workers, device="cpu", threads=1)
            t = time.perf_counter()
            with ActorRss() as rss:
                sray.segment(m, MODEL, tmp / f"r{workers}", num_workers=workers, device="cpu",
                             threads=1)
            out[f"ray_{workers}_workers_vol_per_s"] = len(rows) / (time.perf_counter() - t)
            out[f"ray_{workers}_workers_peak_rss_mib"] = sorted(round(v, 1) for v in rss.peaks.values())
    finally:
        ray.shutdown()
    return out


def main():
    bin_ = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    volumes = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {"api": bench_api(bin_, n, tmp), "batch": bench_batch(bin_, volumes, tmp)}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
