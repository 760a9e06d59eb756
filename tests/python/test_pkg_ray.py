"""slicewise.ray.segment on a real local Ray cluster (a head and a second node, loopback only),
against the CLI's outputs for the same manifest."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HIPPO_MODEL, SAMPLE, read_json, run_cli, shared_data

ray = pytest.importorskip("ray", reason="ray is in scripts/requirements-test.txt")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log):
    """`ray start ... --block` in its own process group (stopped with it, see `stop`)."""
    ray_bin = Path(sys.executable).with_name("ray")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", HOME=str(Path(log).parent))
    f = open(log, "w")
    p = subprocess.Popen([str(ray_bin), "start", "--block", "--disable-usage-stats", *args],
                         stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return p, f


def wait_for(log, proc, text, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in Path(log).read_text(errors="replace"):
            return
        assert proc.poll() is None, f"ray start exited:\n{Path(log).read_text()}"
        time.sleep(0.5)
    raise AssertionError(f"ray start not ready in {timeout} s:\n{Path(log).read_text()}")


def stop(procs):
    """Stops exactly the processes these `ray start`s made: their process groups, TERM then
    KILL (never `ray stop`, which would stop every Ray cluster on the machine)."""
    for p, _ in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p, f in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        f.close()


@pytest.fixture(scope="module")
def cluster():
    tmp = tempfile.mkdtemp(prefix="swray-", dir="/tmp")  # short: Ray's socket paths are limited
    port = free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000"]
    procs = []
    # Its own HOME: Ray reads ~/.ray (an auth token left there by another cluster would make
    # the nodes of this one refuse each other).
    home = os.environ.get("HOME")
    os.environ["HOME"] = tmp
    try:
        head = start(["--head", f"--port={port}", "--include-dashboard=false",
                      f"--temp-dir={tmp}", f"--dashboard-agent-listen-port={free_port()}",
                      *common], f"{tmp}/head.log")
        procs.append(head)
        wait_for(f"{tmp}/head.log", head[0], "Ray runtime started")
        worker = start([f"--address=127.0.0.1:{port}",
                        f"--dashboard-agent-listen-port={free_port()}", *common], f"{tmp}/worker.log")
        procs.append(worker)
        wait_for(f"{tmp}/worker.log", worker[0], "Ray runtime started")
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        deadline = time.monotonic() + 120
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            assert time.monotonic() < deadline, ray.nodes()
            time.sleep(0.5)
        yield port
    finally:
        if ray.is_initialized():
            ray.shutdown()
        stop(procs)
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_outputs_equal_the_cli_byte_for_byte_and_the_report_lists_every_job(tmp_path, cluster):
    import slicewise.ray

    images = shared_data() / "msd-hippocampus/images"
    m = tmp_path / "inputs.csv"
    m.write_text("input\n" + "".join(f"{p}\n" for p in (
        SAMPLE, images / "hippocampus_001.nii.gz", images / "hippocampus_003.nii.gz")))
    cli_out = tmp_path / "cli"
    run_cli("segment", "--manifest", m, "--model", HIPPO_MODEL, "--out", cli_out, "--device", "cpu",
            "--threads", "1", "--report", cli_out / "report.json")
    cli = read_json(cli_out / "report.json")

    out = tmp_path / "ray"
    rep = slicewise.ray.segment(m, HIPPO_MODEL, out, num_workers=2, device="cpu", threads=1)
    assert rep == read_json(out / "report.json") and (out / "report.csv").exists()
    assert [j["input"] for j in rep["jobs"]] == [j["input"] for j in cli["jobs"]]
    assert [j["row"] for j in rep["jobs"]] == [0, 1, 2]
    assert rep["summary"]["ok"] == rep["summary"]["jobs"] == 3
    assert rep["options"] == cli["options"]
    assert rep["model"]["name"] == cli["model"]["name"]
    assert rep["model"]["provider"]["used"] == "CPUExecutionProvider"
    for a, b in zip(rep["jobs"], cli["jobs"]):
        assert a["status"] == "ok" and a["labels"] == b["labels"] and a["dims"] == b["dims"]
        name = os.path.basename(a["mask"]["path"])
        assert name == os.path.basename(b["mask"]["path"])
        assert (out / name).read_bytes() == (cli_out / name).read_bytes(), name
        side = read_json(out / name.replace("_mask.nii.gz", ".slicewise.json"))
        assert side["labels"] == a["labels"] and side["status"] == "ok"

    again = slicewise.ray.segment(m, HIPPO_MODEL, out, num_workers=2, device="cpu", threads=1)
    assert again["summary"]["skipped"] == 3, again["summary"]


# 5 of the 22 shared LGG patients (the debug CLI's reference takes ~3.5 s a patient on 2 cores,
# so all 22 would add minutes to CI) and the MR DICOM series, with the LGG model.
LGG_PATIENTS = 5


def lgg_manifest(tmp_path):
    patients = sorted(p for p in (shared_data() / "lgg").iterdir() if p.name.startswith("TCGA_"))
    assert len(patients) == 22, patients
    rows = patients[:LGG_PATIENTS] + [shared_data() / "mr-dicom-series/Study1/13_HCropVolume"]
    m = tmp_path / "lgg.csv"
    m.write_text("input\n" + "".join(f"{p}\n" for p in rows))
    return m, len(rows)


def actor_pids():
    """The PIDs of the live SegmentActor processes (Ray names them `ray::MapWorker(...)`)."""
    import psutil

    pids = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "SegmentActor" in cmd and cmd.startswith("ray::"):
            pids.append(p.pid)
    return pids


def test_a_worker_killed_mid_batch_is_restarted_and_the_outputs_equal_the_cli(tmp_path, cluster):
    """LGG TIFF folders and a DICOM series on the 2-node cluster; one actor process is killed
    (SIGKILL) once the first mask is written. Ray restarts it and reruns its batch: every job is
    in the report once, nothing but a hidden temporary file may be left over, and every mask is the CLI's byte for byte."""
    import threading

    import slicewise.ray
    from conftest import LGG_MODEL

    m, rows = lgg_manifest(tmp_path)
    cli_out = tmp_path / "cli"
    # The DICOM row is a hippocampus crop, no FLAIR: the tumour model's series selection would
    # list it unrun, so both runs take every series (--all-series, all_series=True).
    run_cli("segment", "--manifest", m, "--model", LGG_MODEL, "--out", cli_out, "--device", "cpu",
            "--threads", "1", "--report", cli_out / "report.json", "--all-series")
    cli = read_json(cli_out / "report.json")
    assert cli["summary"]["ok"] == rows

    out = tmp_path / "ray"
    result = {}

    def run():
        try:
            result["report"] = slicewise.ray.segment(m, LGG_MODEL, out, num_workers=2,
                                                     device="cpu", threads=1, all_series=True)
        except BaseException as e:  # noqa: BLE001 (re-raised on the test's thread)
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    killed = None
    deadline = time.monotonic() + 300
    while t.is_alive() and killed is None and time.monotonic() < deadline:
        if any(p.name.endswith("_mask.tif") or p.name.endswith("_mask.nii.gz")
               for p in out.glob("*_mask.*")):
            pids = actor_pids()
            if pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    t.join(600)
    assert not t.is_alive(), "slicewise.ray.segment did not finish"
    if "error" in result:
        raise result["error"]
    assert killed is not None, "the batch ended before a worker could be killed"
    rep = result["report"]
    print(f"killed actor pid {killed}; job statuses {[j['status'] for j in rep['jobs']]}")
    assert [j["row"] for j in rep["jobs"]] == list(range(rows))
    assert [j["input"] for j in rep["jobs"]] == [j["input"] for j in cli["jobs"]]
    # A job finished just before the kill and rerun by the restarted actor finds its files
    # complete and is skipped: either way it is done once.
    assert all(j["status"] in ("ok", "skipped") for j in rep["jobs"]), rep["jobs"]
    assert rep["summary"]["failed"] == 0 and rep["summary"]["jobs"] == rows, rep["summary"]
    # SIGKILL during a write's few milliseconds can strand that write's hidden temporary file
    # (no code runs on SIGKILL); it is never an output: only `.slicewise-*.part` names may remain,
    # and every output below is complete and the CLI's.
    stray = [p.name for p in out.rglob("*.part")]
    assert all(n.startswith(".slicewise-") for n in stray), stray
    written = sorted(p.name for p in out.iterdir() if "_mask." in p.name)
    assert written == sorted(p.name for p in cli_out.iterdir() if "_mask." in p.name)
    assert len(written) == rows
    for a, b in zip(rep["jobs"], cli["jobs"]):
        name = os.path.basename(b["mask"]["path"])
        assert (out / name).read_bytes() == (cli_out / name).read_bytes(), name
        if a["status"] == "ok":
            assert a["labels"] == b["labels"] and a["dims"] == b["dims"]
        side = read_json(out / (name.split("_mask.")[0] + ".slicewise.json"))
        assert side["status"] == "ok" and side["labels"] == b["labels"]
