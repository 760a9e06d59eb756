#!/usr/bin/env python3
"""Peak-memory benchmark of `slicewise segment` on a CT-sized volume (a benchmark, not a timed test):
asserts that the peak RSS stays within 1.3x the float volume plus the model and a small constant.

    SLICEWISE_ORT_LIB=... .venv/bin/python scripts/bench/peak_rss.py [BIN] [--model M]
        [--batch-size N] [--threads N] [--slices Z]

Makes once, under .cache/bench/, a synthetic 512x512xZ float32 CT (Z = 300: 300 MiB of voxels; air
at -1000 HU around an elliptical body of noisy soft tissue with a bone ring, so that about 60 % of
the voxels are above the minimum, as in a real CT) and a 512x512x16 crop of it. Runs `BIN segment`
(default target/release/slicewise) on each under /usr/bin/time -v. The crop's peak is the
baseline: the runtime, the model, its arena at this batch size and the process's constants, with
a 16 MiB volume. The assertion:

    peak(big) - peak(crop) <= 1.3 * (float bytes(big) - float bytes(crop)) + 32 MiB

1.3x holds the float volume (1x) and the uint8 mask (0.25x) with 5 % to spare: a second copy of
the volume or of the mask anywhere on the way (reading, statistics, writing) breaks it.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def synthetic_ct(z):
    """A deterministic CT-like volume, [x, y, z] float32 HU."""
    x, y = np.meshgrid(np.arange(512), np.arange(512), indexing="ij")
    r = ((x - 256) / 230.0) ** 2 + ((y - 256) / 170.0) ** 2
    body = r < 1.0
    bone = body & (r > 0.85)
    rng = np.random.default_rng(7)
    vol = np.empty((512, 512, z), np.float32)
    for k in range(z):
        s = np.full((512, 512), -1000.0, np.float32)
        s[body] = 40.0 + rng.normal(0.0, 15.0, int(body.sum())).astype(np.float32)
        s[bone] = 700.0 + rng.normal(0.0, 50.0, int(bone.sum())).astype(np.float32)
        vol[..., k] = s
    return vol


def volumes(z):
    """Paths of the big volume and its 16-slice crop, made once."""
    d = os.path.join(REPO, ".cache/bench")
    big, crop = os.path.join(d, f"ct-512x512x{z}.nii"), os.path.join(d, "ct-512x512x16.nii")
    if not (os.path.isfile(big) and os.path.isfile(crop)):
        os.makedirs(d, exist_ok=True)
        vol = synthetic_ct(z)
        affine = np.diag([0.7, 0.7, 1.5, 1.0])
        for path, data in ((big, vol), (crop, vol[..., :16])):
            nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), path + ".part.nii")
            os.replace(path + ".part.nii", path)
    return big, crop


def peak_rss(cmd):
    """Peak RSS in bytes of `cmd` (which must succeed), from GNU time."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"peak_rss: {' '.join(cmd)} failed:\n{r.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr)
    return int(m.group(1)) * 1024, wall.group(1) if wall else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin", nargs="?", default=os.path.join(REPO, "target/release/slicewise"))
    ap.add_argument("--model", default=os.path.join(REPO, "models/lgg-flair-small.onnx"))
    ap.add_argument("--batch-size", default="8")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--slices", type=int, default=300)
    a = ap.parse_args()
    big, crop = volumes(a.slices)
    float_bytes = {p: 512 * 512 * n * 4 for p, n in ((big, a.slices), (crop, 16))}
    peaks = {}
    with tempfile.TemporaryDirectory() as out:
        for p in (crop, big):
            cmd = [a.bin, "segment", p, "--model", a.model, "--out", out, "--device", "cpu",
                   "--threads", a.threads, "--batch-size", a.batch_size, "--overwrite"]
            peaks[p] = peak_rss(cmd)
    (pc, wc), (pb, wb) = peaks[crop], peaks[big]
    grown, vol = pb - pc, float_bytes[big] - float_bytes[crop]
    limit = 1.3 * vol + 32 * MIB
    print(f"model {os.path.basename(a.model)}, batch {a.batch_size}, threads {a.threads}")
    print(f"crop 512x512x16:  peak {pc / MIB:7.1f} MiB ({wc})")
    print(f"big  512x512x{a.slices}: peak {pb / MIB:7.1f} MiB ({wb}); float volume {float_bytes[big] / MIB:.0f} MiB")
    print(f"growth {grown / MIB:.1f} MiB = {grown / vol:.3f} x the float volume growth "
          f"(limit 1.3 x + 32 MiB = {limit / MIB:.1f} MiB)")
    if grown > limit:
        sys.exit("peak_rss: FAIL: the peak grows faster than 1.3x the float volume")
    print("peak_rss: ok")


if __name__ == "__main__":
    main()
