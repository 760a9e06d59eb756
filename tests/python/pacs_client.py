"""Drives `slicewise serve --dicomweb` against a real Orthanc for the PACS tests: the series goes
into Orthanc through its REST API, MONAI Label's own client (monailabel.client) infers it by
SeriesInstanceUID, and what the server stored back (a DICOM SEG, via STOW-RS) is fetched from
Orthanc and read with highdicom. Each subcommand prints one JSON object.

usage:
  pacs_client.py upload ORTHANC SERIES_DIR
      POST /instances for every file; answers the series' {study, series} UIDs.
  pacs_client.py roundtrip SERVER ORTHANC SERIES_DIR MODEL REF_MASK OUT_SEG
      uploads SERIES_DIR, lists the datastore, infers the series twice through MONAILabelClient
      (NRRD, compared voxel for voxel and by affine with REF_MASK, `slicewise segment`'s NIfTI;
      the second from the cache), infers it with output=dicom_seg, finds the SEG in Orthanc
      (QIDO-RS Modality=SEG), downloads it (REST) to OUT_SEG and reads it with highdicom; then
      checks the viewer's files (/ohif/) and the DICOMweb proxy (/proxy/dicom/).
  pacs_client.py outage SERVER ORTHANC ORTHANC_PID SERIES_DIR MODEL HOLD_IMAGE LOCAL_MODEL
                        LOCAL_IMAGE CACHE_DIR
      with the only worker busy on HOLD_IMAGE (a local image, on a raw socket), asks for the SEG
      of the PACS series, waits until the series is fetched (CACHE_DIR/<uid> complete) and its
      job queued, kills Orthanc (ORTHANC_PID, SIGKILL), drops the holding request and reports
      the SEG request's answer (expected: 502) and what the server answers afterwards (/info/,
      a PACS infer with Orthanc down, LOCAL_MODEL on LOCAL_IMAGE, the proxy).
  pacs_client.py after SERVER ORTHANC MODEL SERIES_UID
      (Orthanc restarted) the SEG series Orthanc holds (QIDO-RS), the SEG request again, and
      the SEG series after it.
"""
import json
import os
import signal
import sys
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # the client imports cgi

import highdicom as hd
import pydicom
import requests
from monailabel.client import MONAILabelClient

from common import emit
from monailabel_client import NRRD_PARAMS, compare, nifti_label, nrrd_label, raw_infer_request

T = 120  # seconds any one HTTP request may take


def client(url):
    return MONAILabelClient(url, tmpdir=tempfile.mkdtemp(prefix="ml-client-"))


def tag(obj, t):
    v = obj.get(t, {}).get("Value", [None])
    return v[0] if v else None


def upload(orthanc, series_dir):
    uids = set()
    for name in sorted(os.listdir(series_dir)):
        with open(os.path.join(series_dir, name), "rb") as f:
            r = requests.post(f"{orthanc}/instances", data=f.read(), timeout=T)
        r.raise_for_status()
        uids.add(r.json()["ParentSeries"])
    (orthanc_series,) = uids
    s = requests.get(f"{orthanc}/series/{orthanc_series}", timeout=T).json()
    st = requests.get(f"{orthanc}/studies/{s['ParentStudy']}", timeout=T).json()
    return {
        "study": st["MainDicomTags"]["StudyInstanceUID"],
        "series": s["MainDicomTags"]["SeriesInstanceUID"],
        "instances": len(s["Instances"]),
    }


def seg_series(orthanc):
    """The SEG series in Orthanc, through its DICOMweb (QIDO-RS) interface."""
    r = requests.get(f"{orthanc}/dicom-web/series", params={"Modality": "SEG"},
                     headers={"Accept": "application/dicom+json"}, timeout=T)
    r.raise_for_status()
    return [tag(s, "0020000E") for s in (r.json() if r.content.strip() else [])]


def fetch_instance(orthanc, sop_uid):
    """The stored file of an instance, through Orthanc's REST API."""
    found = requests.post(f"{orthanc}/tools/lookup", data=sop_uid, timeout=T).json()
    (inst,) = [f for f in found if f["Type"] == "Instance"]
    return requests.get(f"{orthanc}/instances/{inst['ID']}/file", timeout=T).content


def roundtrip(server, orthanc, series_dir, model, ref_mask, out_seg):
    ref = nifti_label(ref_mask)
    up = upload(orthanc, series_dir)
    uid = up["series"]
    out = {"upload": up}
    listing = client(server).datastore()
    out["listed"] = uid in listing.get("objects", {})
    out["listed_info"] = listing.get("objects", {}).get(uid, {}).get("image", {}).get("info")

    for run in ("first", "cached"):
        t0 = time.time()
        path, params = client(server).infer(model, uid, dict(NRRD_PARAMS))
        seconds = time.time() - t0
        data, affine, header = nrrd_label(path)
        out[run] = dict(compare(data, affine, ref), header=header, seconds=seconds)
    out["params"] = params

    t0 = time.time()
    r = requests.post(f"{server}/infer/{model}", params={"image": uid, "output": "dicom_seg"},
                      files={"params": (None, "{}")}, timeout=T)
    out["seg_seconds"] = time.time() - t0
    out["seg_status"] = r.status_code
    out["seg_content_type"] = r.headers.get("Content-Type")
    out["seg_location"] = r.headers.get("Content-Location")
    if r.status_code != 200:
        out["seg_error"] = r.text[:1000]
        emit(out)
        return
    answered = pydicom.dcmread(pydicom.filebase.DicomBytesIO(r.content))

    stored_series = seg_series(orthanc)
    out["stored_seg_series"] = stored_series
    stored = fetch_instance(orthanc, answered.SOPInstanceUID)
    with open(out_seg, "wb") as f:
        f.write(stored)
    out["stored_equals_answer"] = stored == r.content
    seg = hd.seg.segread(out_seg)
    out["seg"] = {
        "sop_class": seg.SOPClassUID,
        "series": seg.SeriesInstanceUID,
        "study": seg.StudyInstanceUID,
        "referenced_series": [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence],
        "segment_labels": [s.SegmentLabel for s in seg.SegmentSequence],
        "algorithm": [s.get("SegmentAlgorithmName") for s in seg.SegmentSequence],
        "frames": int(seg.NumberOfFrames),
        "source_instances": len({u[2] for u in seg.get_source_image_uids()}),
    }
    out["viewer"] = viewer_and_proxy(server, up)
    emit(out)


def viewer_and_proxy(server, up):
    """The OHIF viewer's files and the DICOMweb proxy its app-config.js points at."""
    res = {}

    def get(path, **kw):
        r = requests.get(server + path, timeout=T, **kw)
        return r, {"status": r.status_code, "type": r.headers.get("Content-Type", "")}

    r, res["index"] = get("/ohif/")
    res["index"]["ohif"] = "window.PUBLIC_URL = '/ohif/'" in r.text
    r, res["config"] = get("/ohif/app-config.js")
    res["config"]["qido_root"] = "qidoRoot: '/proxy/dicom/qido'" in r.text
    r, res["spa_route"] = get(f"/ohif/monai-label?StudyInstanceUIDs={up['study']}")
    res["spa_route"]["index"] = "window.PUBLIC_URL" in r.text
    r, res["outside"] = get("/ohif/%2e%2e/%2e%2e/Cargo.toml")
    res["outside"]["index"] = "window.PUBLIC_URL" in r.text

    r, res["qido_studies"] = get("/proxy/dicom/qido/studies", headers={"Accept": "application/dicom+json"})
    res["qido_studies"]["studies"] = [tag(s, "0020000D") for s in r.json()] if r.ok else []
    base = f"/proxy/dicom/wado/studies/{up['study']}/series/{up['series']}"
    r, res["metadata"] = get(base + "/metadata")
    meta = r.json() if r.ok else []
    res["metadata"]["instances"] = len(meta)
    if meta:
        sop = tag(meta[0], "00080018")
        # How OHIF's cornerstone loader fetches pixels (imageRendering: 'wadors').
        r, res["frame"] = get(f"{base}/instances/{sop}/frames/1", headers={
            "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
        res["frame"]["bytes"] = len(r.content)
    r, res["escape"] = get("/proxy/dicom/qido/%2e%2e/%2e%2e/system")
    res["escape"]["error"] = r.json().get("error") if "json" in res["escape"]["type"] else None
    return res


def jobs(server):
    return requests.get(server + "/jobs/", timeout=T).json()["jobs"]


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    return None


def outage(server, orthanc, orthanc_pid, series_dir, model, hold_image, local_model, local_image,
           cache_dir):
    up = upload(orthanc, series_dir)
    uid = up["series"]
    results = {}

    def post(key, mdl, image, output):
        try:
            r = requests.post(f"{server}/infer/{mdl}", params={"image": image, "output": output},
                              files={"params": (None, "{}")}, timeout=T)
            ctype = r.headers.get("Content-Type", "")
            results[key] = {"status": r.status_code, "type": ctype,
                            "json": r.json() if "json" in ctype else None}
        except requests.RequestException as e:
            results[key] = {"status": -1, "error": repr(e)[:500]}

    # The only worker, busy on a long local job (held on a raw socket, dropped below).
    hold = raw_infer_request(server, model, hold_image)
    running = wait_for(lambda: [j for j in jobs(server) if j["image"] == hold_image and j["state"] == "running"], 60)
    if not running:
        raise SystemExit(f"the holding job never ran: {jobs(server)}")
    seg = threading.Thread(target=post, args=("seg", model, uid, "dicom_seg"))
    seg.start()
    # Fetched (the cache folder is renamed into place complete) and waiting for the worker.
    cached = os.path.join(cache_dir, uid)
    fetched = wait_for(lambda: os.path.isdir(cached) and len(os.listdir(cached)) == up["instances"], 60)
    queued = wait_for(lambda: [j for j in jobs(server) if j["image"] == uid and j["state"] == "queued"], 10)
    os.kill(int(orthanc_pid), signal.SIGKILL)
    out = {
        "fetched_before_kill": bool(fetched),
        "queued_at_kill": bool(queued),
        # Still busy: the SEG job had not reached STOW-RS when Orthanc went away.
        "hold_running_at_kill": any(j["image"] == hold_image and j["state"] == "running"
                                    for j in jobs(server)),
    }
    hold.close()  # frees the worker within one batch: the SEG job runs, then meets no PACS
    seg.join()
    out["seg"] = results["seg"]
    out["seg_job"] = [j for j in jobs(server) if j["image"] == uid]
    out["info_status"] = requests.get(server + "/info/", timeout=T).status_code
    post("again", model, uid, "image")  # cached, but the PACS is asked first
    out["again"] = results["again"]
    post("local", local_model, local_image, "json")
    out["local"] = {k: results["local"].get(k) for k in ("status", "type")}
    r = requests.get(server + "/proxy/dicom/qido/studies", timeout=T)
    ctype = r.headers.get("Content-Type", "")
    out["proxy"] = {"status": r.status_code, "json": r.json() if "json" in ctype else None}
    out["series"] = uid
    emit(out)


def after(server, orthanc, model, uid):
    """Orthanc back: nothing of the failed request is stored, and the same request now works."""
    out = {"segs_before": seg_series(orthanc)}
    r = requests.post(f"{server}/infer/{model}", params={"image": uid, "output": "dicom_seg"},
                      files={"params": (None, "{}")}, timeout=T)
    out["status"] = r.status_code
    out["segs_after"] = seg_series(orthanc)
    emit(out)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "upload":
        emit(upload(*args))
    elif cmd == "roundtrip":
        roundtrip(*args)
    elif cmd == "outage":
        outage(*args)
    elif cmd == "after":
        after(*args)
    else:
        raise SystemExit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
