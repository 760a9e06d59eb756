"""Benchmark of `slicewise watch --orthanc` (not a test): a burst of N copies of a real MR
series (new Series and SOP Instance UIDs, pydicom) uploaded at once to a fresh Orthanc started
here; reports arrival-to-stored latency (p50, p95: from the upload of a series' last instance
to the watcher's `stored` audit line, so Orthanc's 1 s StableAge is included; and the
watcher's own seconds, from learning of the series), throughput, and the watcher's peak
resident memory (VmHWM). Prints one JSON object.

    bench_watch.py SLICEWISE_BIN MODEL SERIES_DIR N WORKERS
"""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pydicom
from pydicom.uid import generate_uid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin():
    for d in ("/usr/share/orthanc/plugins", "/usr/lib/orthanc"):
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f.startswith("libOrthancDicomWeb.so"):
                    return os.path.join(d, f)
    sys.exit("Orthanc's DICOMweb plugin not found")


def start_orthanc(work, port):
    cfg = {
        "Name": "bench", "StorageDirectory": f"{work}/storage", "IndexDirectory": f"{work}/storage",
        "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomServerEnabled": False, "StableAge": 1, "Plugins": [plugin()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    with open(f"{work}/orthanc.json", "w") as f:
        json.dump(cfg, f)
    exe = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    p = subprocess.Popen([exe, f"{work}/orthanc.json"], stdout=subprocess.DEVNULL,
                         stderr=open(f"{work}/orthanc.log", "w"))
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=2)
            return p
        except OSError:
            time.sleep(0.05)
    sys.exit("Orthanc did not start")


def copies(series_dir, n):
    """n copies of the series as lists of DICOM bytes, each a new series."""
    files = sorted(os.path.join(series_dir, f) for f in os.listdir(series_dir))
    datasets = [pydicom.dcmread(f) for f in files]
    out = []
    for _ in range(n):
        series = generate_uid()
        blobs = []
        for ds in datasets:
            ds.SeriesInstanceUID = series
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            blobs.append(buf.getvalue())
        out.append((series, blobs))
    return out


def audit(state):
    try:
        with open(f"{state}/audit.jsonl") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    binary, model, series_dir, n, workers = sys.argv[1:6]
    n, workers = int(n), int(workers)
    work = tempfile.mkdtemp(prefix="bench-watch-")
    port = free_port()
    orthanc = start_orthanc(work, port)
    state = f"{work}/state"
    burst = copies(series_dir, n)
    watcher = subprocess.Popen(
        [binary, "watch", "--pacs", f"http://127.0.0.1:{port}/dicom-web", "--orthanc",
         "--model", model, "--state", state, "--device", "cpu", "--poll-seconds", "0.2",
         "--workers", str(workers), "--queue", str(max(n, 1))],
        stdout=subprocess.DEVNULL, stderr=open(f"{work}/watch.log", "w"))
    try:
        while not any(e["event"] == "started" for e in audit(state)):
            time.sleep(0.05)
        time.sleep(0.5)
        arrived = {}
        t_burst = time.time()
        for series, blobs in burst:
            for b in blobs:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/instances", data=b,
                                             method="POST")
                urllib.request.urlopen(req).read()
            arrived[series] = time.time()
        upload_s = time.time() - t_burst
        deadline = time.time() + 1800
        stored = {}
        while len(stored) < n and time.time() < deadline:
            for e in audit(state):
                if e["event"] == "stored" and e["series"] in arrived and e["series"] not in stored:
                    stored[e["series"]] = e
                    stored[e["series"]]["_seen"] = time.time()
            time.sleep(0.1)
        events = audit(state)
        with open(f"/proc/{watcher.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    finally:
        watcher.terminate()
        watcher.wait()
        orthanc.terminate()
        orthanc.wait()
    from datetime import datetime
    lat, own = [], []
    for s, e in stored.items():
        t = datetime.fromisoformat(e["t"].replace("Z", "+00:00")).timestamp()
        lat.append(t - arrived[s])
        own.append(e["seconds"])
    span = max(datetime.fromisoformat(e["t"].replace("Z", "+00:00")).timestamp()
               for e in stored.values()) - t_burst if stored else float("nan")
    # Stage times per series, from the watcher's own audit lines: queue wait and fetch (to
    # `fetched`), job (to `segmented`: read, segment, write), STOW-RS (to `stored`).
    stage = {}
    for e in events:
        if e.get("series") in arrived and e["event"] in ("fetched", "segmented", "stored"):
            stage.setdefault(e["series"], {})[e["event"]] = e["seconds"]
    seg = [v["segmented"] - v["fetched"] for v in stage.values() if "segmented" in v and "fetched" in v]
    stow = [v["stored"] - v["segmented"] for v in stage.values() if "stored" in v and "segmented" in v]
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "series": n, "stored": len(stored), "workers": workers,
        "slices_per_series": len(burst[0][1]) if burst else 0,
        "upload_seconds": round(upload_s, 2),
        "arrival_to_stored_p50": round(pct(lat, 50), 2), "arrival_to_stored_p95": round(pct(lat, 95), 2),
        "watcher_seconds_p50": round(pct(own, 50), 2), "watcher_seconds_p95": round(pct(own, 95), 2),
        "job_seconds_p50": round(pct(seg, 50), 3) if seg else None,
        "stow_seconds_p50": round(pct(stow, 50), 3) if stow else None,
        "burst_to_last_stored_seconds": round(span, 2),
        "series_per_minute": round(60 * len(stored) / span, 1),
        "peak_rss_mib": round(hwm / 1024, 1),
    }))


if __name__ == "__main__":
    main()
