"""Drives `slicewise serve` with MONAI Label's own Python client (monailabel.client, from the
monailabel 0.8.5 wheel: the client that 3D Slicer's MONAILabel extension also runs) and with
plain `requests`, for the server tests. Each subcommand prints one JSON object.

usage:
  monailabel_client.py roundtrip URL IMAGE MODEL REF_MASK [TOKEN]
      info, upload IMAGE, infer MODEL as NRRD and as NIfTI, and the Slicer-style session flow;
      each label is compared voxel for voxel and by affine with REF_MASK (slicewise segment's
      NIfTI of the same file, read with nibabel; NRRD read with pynrrd).
  monailabel_client.py requests URL SPEC_JSON
      SPEC_JSON: a list of {method, path, headers?, multipart?: {fields?, files?: {field: path}},
      body?, content_type?}; answers {"responses": [{status, headers, json | text}]}.
  monailabel_client.py concurrent URL MODEL IMAGE_ID REF_MASK N
      N infer requests at once through MONAILabelClient; for each, the status and whether the
      label equals REF_MASK.
  monailabel_client.py dicom-series URL MODEL SERIES_DIR REF_MASK OUT_SEG [OUT_RTSTRUCT]
      uploads a DICOM series as several `file` parts (image id "mr"), infers it as NRRD through
      MONAILabelClient (compared with REF_MASK), as DICOM SEG (output=dicom_seg, saved to
      OUT_SEG for seg_check.py) and, when OUT_RTSTRUCT is given, as an RT Structure Set
      (output=rtstruct, saved there for rtstruct_check.py).
  monailabel_client.py channels URL MODEL CASE REF_MASK IMAGE...
      uploads IMAGE i as datastore image CASE_000i through MONAILabelClient, infers MODEL on
      image id CASE (a multi-channel model reads CASE_0000, CASE_0001, ...) as NIfTI and
      compares the label with REF_MASK; then infers the missing case CASE_x and reports the error.
  monailabel_client.py hold-and-drop URL MODEL IMAGE_ID
      starts an infer on a raw socket, waits for its job to run, sends a second infer (expected
      503 with Retry-After while workers and queue are full), closes the socket and waits for
      the job to end; reports what /jobs/ says of it.
"""
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # the client imports cgi

import nibabel as nib
import nrrd
import numpy as np
import requests
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException

from common import emit

NRRD_PARAMS = {"result_extension": ".nrrd", "result_dtype": "uint8", "result_compress": False}


def client(url, token=None):
    c = MONAILabelClient(url, tmpdir=tempfile.mkdtemp(prefix="ml-client-"))
    if token:
        c.update_auth({"token_type": "Bearer", "access_token": token})
    return c


def nifti_label(path):
    img = nib.load(path)
    return np.asarray(img.dataobj), img.affine


def nrrd_label(path):
    """Voxels (i, j, k) and the index-to-RAS affine of an NRRD label file."""
    data, h = nrrd.read(path)
    if h.get("space") != "left-posterior-superior":
        raise SystemExit(f"unexpected NRRD space {h.get('space')}")
    a = np.eye(4)
    a[:3, :3] = np.array(h["space directions"], float).T
    a[:3, 3] = np.array(h["space origin"], float)
    a[:2] *= -1  # LPS to RAS
    return data, a, {"type": h.get("type"), "encoding": h.get("encoding"), "sizes": list(h["sizes"])}


def compare(data, affine, ref):
    ref_data, ref_affine = ref
    same_shape = tuple(data.shape) == tuple(ref_data.shape)
    return {
        "shape": list(data.shape),
        "ref_shape": list(ref_data.shape),
        "dtype": str(data.dtype),
        "equal": bool(same_shape and np.array_equal(data, ref_data)),
        "affine_max_diff": float(np.abs(affine - ref_affine).max()),
        "counts": {int(v): int(n) for v, n in zip(*np.unique(data, return_counts=True))},
    }


def roundtrip(url, image, model, ref_mask, token=None):
    # A fresh client per call, as Slicer's extension makes one (`_client()`): the client's
    # multipart calls write content-type and length into its shared auth headers, which would
    # corrupt its next upload.
    c = lambda: client(url, token)  # noqa: E731
    ref = nifti_label(ref_mask)
    out = {"auth_enabled": c().auth_enabled()}
    info = c().info()
    out["info"] = {k: info.get(k) for k in ("name", "version", "labels")}
    out["models"] = info["models"]
    out["top_level_config"] = "config" in info
    out["upload"] = c().upload_image(image, image_id="hippocampus_375")
    out["datastore_ids"] = sorted(c().datastore()["objects"])
    image_id = out["upload"]["image"]

    path, params = c().infer(model, image_id, dict(NRRD_PARAMS))
    data, affine, header = nrrd_label(path)
    out["nrrd"] = dict(compare(data, affine, ref), header=header, file=os.path.basename(path))
    out["params"] = params

    path, params = c().infer(model, image_id, {})
    data, affine = nifti_label(path)
    out["nifti"] = dict(compare(data, affine, ref), file=os.path.basename(path))

    # 3D Slicer segments a volume it loaded itself through a session.
    session = c().create_session(image)
    sid = session["session_id"]
    out["session_info"] = c().get_session(sid)
    path, _ = c().infer(model, "volume node name", dict(NRRD_PARAMS), session_id=sid)
    data, affine, _ = nrrd_label(path)
    out["session"] = compare(data, affine, ref)
    out["session_removed"] = c().remove_session(sid)["name"] == sid
    emit(out)


def do_request(url, spec):
    headers = dict(spec.get("headers", {}))
    kwargs = {"headers": headers, "timeout": 120}
    mp = spec.get("multipart")
    handles = []
    if mp is not None:
        files = {}
        for field, path in mp.get("files", {}).items():
            f = open(path, "rb")
            handles.append(f)
            files[field] = (os.path.basename(path), f)
        kwargs["data"] = mp.get("fields", {})
        kwargs["files"] = files or None
        if not files:
            # requests sends fields alone urlencoded; force multipart like the MONAI clients.
            kwargs["files"] = {"_": (None, "")}
    elif "body" in spec:
        kwargs["data"] = spec["body"].encode()
        headers["Content-Type"] = spec.get("content_type", "application/octet-stream")
    try:
        r = requests.request(spec["method"], url + spec["path"], **kwargs)
    except requests.RequestException as e:
        return {"status": -1, "error": repr(e)[:500]}
    finally:
        for f in handles:
            f.close()
    res = {"status": r.status_code, "headers": {k.lower(): v for k, v in r.headers.items()}}
    try:
        res["json"] = r.json()
    except ValueError:
        res["text"] = r.text[:2000] if "text" in r.headers.get("content-type", "") or not r.content else f"<{len(r.content)} bytes>"
    return res


def requests_cmd(url, spec_json):
    specs = json.loads(spec_json)
    emit({"responses": [do_request(url, s) for s in specs]})


def concurrent(url, model, image_id, ref_mask, n):
    ref = nifti_label(ref_mask)
    results = [None] * n

    def one(i):
        try:
            path, _ = client(url).infer(model, image_id, dict(NRRD_PARAMS))
            data, affine, _ = nrrd_label(path)
            results[i] = dict(compare(data, affine, ref), status=200)
        except MONAILabelClientException as e:
            m = re.search(r"Status: (\d+)", e.msg or "")
            results[i] = {"status": int(m.group(1)) if m else -1, "message": e.msg[:300]}
        except Exception as e:  # a broken answer is a failure to report, not a crash
            results[i] = {"status": -1, "message": repr(e)[:300]}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit({"results": results})


def dicom_series(url, model, series_dir, ref_mask, out_seg, out_rt=None):
    names = sorted(os.listdir(series_dir))
    handles = [open(os.path.join(series_dir, n), "rb") for n in names]
    try:
        files = [("file", (n, f, "application/dicom")) for n, f in zip(names, handles)]
        up = requests.put(f"{url}/datastore/?image=mr", files=files, data={"params": "{}"}, timeout=120)
    finally:
        for f in handles:
            f.close()
    out = {"upload_status": up.status_code, "upload": up.json(), "files": len(names)}
    path, _ = client(url).infer(model, "mr", dict(NRRD_PARAMS))
    data, affine, _ = nrrd_label(path)
    out["nrrd"] = compare(data, affine, nifti_label(ref_mask))
    seg = requests.post(f"{url}/infer/{model}?image=mr&output=dicom_seg",
                        files={"params": (None, "{}")}, timeout=120)
    with open(out_seg, "wb") as f:
        f.write(seg.content)
    out["seg_status"] = seg.status_code
    out["seg_content_type"] = seg.headers.get("Content-Type")
    if out_rt:
        rt = requests.post(f"{url}/infer/{model}?image=mr&output=rtstruct",
                           files={"params": (None, "{}")}, timeout=120)
        with open(out_rt, "wb") as f:
            f.write(rt.content)
        out["rt_status"] = rt.status_code
        out["rt_content_type"] = rt.headers.get("Content-Type")
    emit(out)


def raw_infer_request(url, model, image_id):
    host, port = url.split("//")[1].split(":")
    boundary = "xXxBoundaryxXx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{{}}\r\n"
            f"--{boundary}--\r\n").encode()
    head = (f"POST /infer/{model}?image={image_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s = socket.create_connection((host, int(port)))
    s.sendall(head + body)
    return s


def jobs(url):
    return requests.get(url + "/jobs/", timeout=30).json()["jobs"]


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return None


def hold_and_drop(url, model, image_id):
    sock = raw_infer_request(url, model, image_id)
    # Mid-segmentation: some slices done.
    running = wait_for(lambda: [j for j in jobs(url) if j["state"] == "running" and j["done"] > 0], 120)
    if not running:
        raise SystemExit(f"no job got going: {jobs(url)}")
    job_id = running[0]["id"]
    busy = requests.post(f"{url}/infer/{model}?image={image_id}", files={"params": (None, "{}")}, timeout=60)
    t0 = time.time()
    sock.close()
    over = ("done", "failed", "cancelled")
    ended = wait_for(lambda: [j for j in jobs(url) if j["id"] == job_id and j["state"] in over], 120)
    out = {
        "busy_status": busy.status_code,
        "busy_retry_after": busy.headers.get("Retry-After"),
        "busy_json": busy.json(),
        "job": ended[0] if ended else [j for j in jobs(url) if j["id"] == job_id],
        "seconds_to_stop": time.time() - t0,  # until the engine had stopped and freed its worker
    }
    # The worker is free again: the next request is served.
    out["after_status"] = requests.get(url + "/info/", timeout=30).status_code
    emit(out)


def channels(url, model, case, ref_mask, *images):
    out = {"uploads": [client(url).upload_image(img, image_id=f"{case}_{i:04d}")
                       for i, img in enumerate(images)]}
    path, params = client(url).infer(model, case, {})
    data, affine = nifti_label(path)
    out["nifti"] = compare(data, affine, nifti_label(ref_mask))
    out["params"] = params
    # One channel only: the second is missing.
    client(url).upload_image(images[0], image_id=f"{case}x_0000")
    try:
        client(url).infer(model, f"{case}x", {})
        out["missing"] = {"status": 200}
    except MONAILabelClientException as e:
        # The client puts the HTTP status into its message ("Status: 404; Response: ...").
        status = e.status_code or int(re.search(r"Status: (\d+)", str(e.msg)).group(1))
        out["missing"] = {"status": status, "message": str(e.msg)}
    emit(out)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "roundtrip":
        roundtrip(*args)
    elif cmd == "requests":
        requests_cmd(*args)
    elif cmd == "concurrent":
        concurrent(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "dicom-series":
        dicom_series(*args)
    elif cmd == "channels":
        channels(*args)
    elif cmd == "hold-and-drop":
        hold_and_drop(*args)
    else:
        raise SystemExit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
