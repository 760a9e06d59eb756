"""Drives the OHIF viewer that `slicewise serve --ohif` serves in a real headless Chromium
(Debian's), over the DevTools protocol (a websocket, with websocket-client): opens the study in
the monai-label mode, connects the MONAI Label panel to the server, runs a segmentation model and
waits for the label to land in the viewer's labelmap. Prints one JSON object.

usage: ohif_browser.py SERVER STUDY_UID MODEL OUT_DIR [REF_MASK]

OUT_DIR receives screenshots (loaded.png, segmented.png) and the page's console log. With
REF_MASK (`slicewise segment`'s NIfTI of the same series, read with nibabel) the labelmap's
non-zero voxels are compared with it index for index, in the viewer's own voxel order (x fastest,
then y, then the volume's slices).
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import nibabel as nib
import numpy as np
import websocket

from common import emit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Page:
    """One DevTools session on a page: commands by id, events kept for the console log."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=120, suppress_origin=True)
        self.next_id = 0
        self.console = []

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.event(msg)

    def event(self, msg):
        m = msg.get("method")
        if m == "Runtime.consoleAPICalled":
            p = msg["params"]
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append(f"{p.get('type')}: {text[:500]}")
        elif m == "Runtime.exceptionThrown":
            d = msg["params"]["exceptionDetails"]
            self.console.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))[:1000]}")

    def js(self, expr):
        """Evaluates `expr` (awaiting promises) and returns its JSON value."""
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:80]}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            v = self.js(expr)
            if v:
                return v
            time.sleep(0.25)
        raise TimeoutError(f"waited {timeout} s for {what}")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def start_chromium(profile):
    proc = subprocess.Popen([
        CHROMIUM, "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
        "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
        # WebGL (cornerstone3D renders with it) on the CPU: SwiftShader.
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--window-size=1600,1000", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "about:blank",
    ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    end = time.time() + 60
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if time.time() > end or proc.poll() is not None:
            raise SystemExit("chromium did not start")
        time.sleep(0.1)
    port = int(open(port_file).read().split()[0])
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
    page = [t for t in targets if t["type"] == "page"][0]
    return proc, page["webSocketDebuggerUrl"]


def js_escape(s):
    """JavaScript's escape(), which the panel's CookieUtils undoes with unescape()."""
    return urllib.parse.quote(s, safe="@*_+-./")


def main():
    server, study, model, out_dir = sys.argv[1:5]
    ref_mask = sys.argv[5] if len(sys.argv) > 5 else None
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-")
    proc, ws_url = start_chromium(profile)
    page = Page(ws_url)
    out = {"steps": []}
    t0 = time.time()

    def step(name):
        out["steps"].append({"step": name, "t": round(time.time() - t0, 2)})

    try:
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Network.enable")
        # The panel takes the server URL from this cookie (default: this host on port 8000).
        page.call("Network.setCookie", name="MONAILABEL_SERVER_URL", value=js_escape(server + "/"),
                  url=server + "/")
        url = f"{server}/ohif/monai-label?StudyInstanceUIDs={study}"
        page.call("Page.navigate", url=url)
        step("navigate")
        page.wait("!!(window.services && window.services.displaySetService "
                  "&& window.services.displaySetService.getActiveDisplaySets().length)", 120, "the study's display sets")
        step("display sets")
        page.wait("!!document.querySelector('.monaiLabelPanel')", 60, "the MONAI Label panel")
        # Wait for the volume to be in the viewport before segmenting into it.
        page.wait("""(() => { const c = window.cornerstone; if (!c) return false;
            const e = c.getEnabledElements(); if (!e.length) return false;
            const v = e[0].viewport; return !!(v && v.getActors && v.getActors().length); })()""",
                  120, "an image in the viewport")
        time.sleep(2)
        step("image shown")
        page.screenshot(os.path.join(out_dir, "loaded.png"))
        out["server_url_field"] = page.js("document.getElementById('monailabelServerURL').value")
        page.js("document.querySelector('.monaiLabelPanel .settingsTable button').click()")
        page.wait("document.body.innerText.includes('Auto-Segmentation')", 60, "the panel to connect")
        step("connected")
        out["models_offered"] = page.js(
            "[...document.querySelectorAll('.monaiLabelPanel select.selectBox option')].map(o => o.value)")
        # Pick the model (React listens to the native change event) and run it.
        page.js(f"""(() => {{
            const sel = [...document.querySelectorAll('.monaiLabelPanel select.selectBox')]
                .find(s => [...s.options].some(o => o.value === {json.dumps(model)}));
            const set = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set;
            set.call(sel, {json.dumps(model)});
            sel.dispatchEvent(new Event('change', {{bubbles: true}}));
            sel.closest('.modelSelector').querySelector('button[title="Run Segmentation"]').click();
        }})()""")
        step("run clicked")
        result = page.wait("""(() => { const t = document.body.innerText;
            if (t.includes('Running Segmentation - Successful')) return 'ok';
            if (t.includes('Failed to Run Segmentation')) return 'failed'; return null; })()""",
                           300, "the segmentation answer")
        out["notification"] = result
        step("answered")
        # The label lands in labelmap '1' right after the notification.
        counts = page.wait("""(() => { const v = window.services.segmentationService.getLabelmapVolume('1');
            if (!v) return null; const d = v.voxelManager.getCompleteScalarDataArray();
            const c = {}; let n = 0; for (let i = 0; i < d.length; i++) { if (d[i]) { c[d[i]] = (c[d[i]] || 0) + 1; n++; } }
            return n ? {counts: c, length: d.length, dims: v.dimensions} : null; })()""", 60, "a non-empty labelmap")
        out["labelmap"] = counts
        step("labelmap filled")
        out["segments"] = page.js("""(() => { const s = window.services.segmentationService.getSegmentation('1');
            return s ? Object.values(s.segments).filter(x => x).map(x => x.label) : null; })()""")
        if ref_mask:
            data = np.asarray(nib.load(ref_mask).dataobj)
            want = np.flatnonzero(data.ravel(order="F") != 0).tolist()
            got = page.js("""(() => { const d = window.services.segmentationService.getLabelmapVolume('1')
                .voxelManager.getCompleteScalarDataArray(); const r = [];
                for (let i = 0; i < d.length; i++) if (d[i]) r.push(i); return r; })()""")
            out["voxels"] = {"viewer": len(got), "label": len(want), "same": got == want}
            if got != want:
                # The same mask with its slices in the other order?
                flipped = np.flatnonzero(data[:, :, ::-1].ravel(order="F") != 0).tolist()
                out["voxels"]["same_if_slices_reversed"] = got == flipped
        time.sleep(1.5)  # let the overlay render before the picture
        page.screenshot(os.path.join(out_dir, "segmented.png"))
        step("screenshot")
    except Exception as e:  # report how far it got, with a picture of where it stopped
        out["error"] = repr(e)[:2000]
        try:
            page.screenshot(os.path.join(out_dir, "failed.png"))
        except Exception:
            pass
    finally:
        with open(os.path.join(out_dir, "console.log"), "w") as f:
            f.write("\n".join(page.console))
        out["console_errors"] = [c for c in page.console if c.startswith(("error", "exception"))][:20]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    emit(out)


if __name__ == "__main__":
    main()
