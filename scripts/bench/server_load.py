#!/usr/bin/env python3
"""Load benchmark of `slicewise serve` (not a timed test): N concurrent MONAI Label infer requests
from MONAI Label's own client, p50/p95 latency, how many got 503, and the server's peak RSS.

    SLICEWISE_ORT_LIB=... .venv/bin/python scripts/bench/server_load.py target/release/slicewise [N] [QUEUE]

Starts the server on a free loopback port with the bundled models, uploads the bundled
hippocampus sample once, then fires N infer requests at once (hippocampus model, NIfTI answer).
"""
import concurrent.futures as cf
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO, "models/samples/msd-hippocampus/hippocampus_375.nii.gz")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    queue = sys.argv[3] if len(sys.argv) > 3 else "16"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as store:
        server = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--models", os.path.join(REPO, "models"),
             "--datastore", store, "--queue", queue, "--threads", "1", "--no-ohif"],
            stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(url + "/info/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            MONAILabelClient(url).upload_image(SAMPLE, image_id="sample")
            rss_idle = peak_rss_mib(server.pid)

            def one(_):
                t = time.perf_counter()
                try:
                    MONAILabelClient(url).infer("msd-hippocampus-small", "sample", {})
                    return ("ok", time.perf_counter() - t)
                except MONAILabelClientException as e:
                    return (str(e.status_code or e.msg)[:60], time.perf_counter() - t)

            t0 = time.perf_counter()
            with cf.ThreadPoolExecutor(n) as pool:
                results = list(pool.map(one, range(n)))
            wall = time.perf_counter() - t0
            ok = sorted(s for r, s in results if r == "ok")
            refused = [r for r, _ in results if r != "ok"]
            q = statistics.quantiles(ok, n=20) if len(ok) >= 2 else ok * 19
            print(f"{n} concurrent requests, queue {queue}: {len(ok)} ok, {len(refused)} refused {sorted(set(refused))}")
            print(f"latency of the ok ones: p50 {statistics.median(ok):.3f} s, p95 {q[18]:.3f} s, wall {wall:.2f} s")
            print(f"server peak RSS: {peak_rss_mib(server.pid):.0f} MiB (after start + upload: {rss_idle:.0f} MiB)")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
