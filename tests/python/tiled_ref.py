"""Independent numpy/scipy reference of the tiled model family (nnU-Net 2.8.1's 2d inference,
docs/nnunet-2d-inference.md), for the engine's parity tests.

    tiled_ref.py MODEL.onnx IMAGE.nii.gz OUTDIR [--tta] [--card CARD.json]

Reads the contract (ONNX metadata_props, a card's keys override), reads the image with nibabel
in SimpleITK's array order (channels, z, y, x; spacing (sz, sy, sx)), then follows nnU-Net:
transpose, crop to non-zero (scipy binary_fill_holes for the ZScore mask), normalise in float32,
resample in-plane (skimage's resize reimplemented in numpy: docs/nnunet-2d-verify/ref_resize.py;
nnU-Net's separate-z rule and clip ranges), pad centred, sliding window with scipy's Gaussian,
onnxruntime on one tile at a time (mirrors as separate runs, as nnU-Net does), logits resampled
back (order 1), argmax or regions, uncrop, inverse transpose.
Writes OUTDIR/mask.u8 (z, y, x order, C-contiguous) and OUTDIR/margin.f32 (per voxel: the
top-two logit gap, or the smallest |region logit|; +inf outside the crop box) and prints JSON.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
from scipy.ndimage import binary_fill_holes, gaussian_filter, map_coordinates

Z3 = np.sqrt(3.0) - 2.0
ANISO = None  # from the contract


# ---- skimage.transform.resize(order, mode='edge', anti_aliasing=False), per docs/nnunet-2d-verify
def spline_filter_axis(c, axis):
    """scipy's order-3 prefilter, mode nearest (reflect init), along `axis` (float64)."""
    c = np.moveaxis(c.astype(np.float64), axis, 0).copy()
    n = c.shape[0]
    if n == 1:
        return np.moveaxis(c, 0, axis)
    z = Z3
    c *= (1 - z) * (1 - 1 / z)
    z_n = z ** n
    s = c[0] + z_n * c[n - 1]
    z_i = z
    for i in range(1, n):
        s = s + z_i * (c[i] + z_n * c[n - 1 - i])
        z_i *= z
    c0 = c[0].copy()
    c[0] = s * (z / (1 - z_n * z_n)) + c0
    for i in range(1, n):
        c[i] += z * c[i - 1]
    c[n - 1] *= z / (z - 1)
    for i in range(n - 2, -1, -1):
        c[i] = z * (c[i + 1] - c[i])
    return np.moveaxis(c, 0, axis)


def cubic_weights(t):
    zz = 1.0 - t
    w1 = (t * t * (t - 2.0) * 3.0 + 4.0) / 6.0
    w2 = (zz * zz * (zz - 2.0) * 3.0 + 4.0) / 6.0
    w0 = zz * zz * zz / 6.0
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def resize_axis(a, n_out, axis, order):
    """One axis of the separable resize (no clip)."""
    a = np.moveaxis(a.astype(np.float64), axis, 0)
    n_in = a.shape[0]
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    if order == 0:
        idx = np.clip(np.floor(x + 0.5).astype(int), 0, n_in - 1)
        out = a[idx]
    elif order == 1:
        xc = np.clip(x, 0, n_in - 1)
        i0 = np.floor(xc).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w = (xc - i0).reshape((-1,) + (1,) * (a.ndim - 1))
        out = (1 - w) * a[i0] + w * a[i1]
    else:
        pad = 12
        p = np.concatenate([np.repeat(a[:1], pad, 0), a, np.repeat(a[-1:], pad, 0)])
        c = spline_filter_axis(p, 0)
        xp = x + pad
        f = np.floor(xp).astype(int)
        t = (xp - f).reshape((-1,) + (1,) * (a.ndim - 1))
        out = sum(w * c[np.clip(f - 1 + j, 0, len(c) - 1)] for j, w in enumerate(cubic_weights(t)))
    return np.moveaxis(out, 0, axis)


def resize2d(img, shape, order):
    out = resize_axis(img, shape[1], 1, order)
    return resize_axis(out, shape[0], 0, order)


def separate_axis(current, new, force):
    def aniso(sp):
        return max(sp) / min(sp) > ANISO
    if force is False:
        return None
    if force is True:
        axes = np.where(max(current) / np.array(current) == 1)[0]
    elif aniso(current):
        axes = np.where(max(current) / np.array(current) == 1)[0]
    elif aniso(new):
        axes = np.where(max(new) / np.array(new) == 1)[0]
    else:
        return None
    return None if len(axes) != 1 else int(axes[0])


def resample(vol, new_shape, current, new, kw):
    """nnU-Net's resample_data_or_seg for one channel whose a0 keeps its size (float64 result)."""
    vol = vol.astype(np.float64)
    if tuple(vol.shape) == tuple(new_shape):
        return vol
    axis = separate_axis(current, new, kw["force_separate_z"])
    order, order_z = kw["order"], kw["order_z"]
    if axis is None:  # one 3-D resize: a0's zoom is 1, so per plane, clipped to the volume's range
        out = np.stack([resize2d(p, new_shape[1:], order) for p in vol])
        return np.clip(out, vol.min(), vol.max()) if order > 1 else out
    if axis == 0:  # per plane, clipped to each plane's range
        out = [resize2d(p, new_shape[1:], order) for p in vol]
        return np.stack([np.clip(o, p.min(), p.max()) if order > 1 else o for o, p in zip(out, vol)])
    # Separate along in-plane axis `axis`: 2-D resize of the planes orthogonal to it (each clipped
    # to its own range), then map_coordinates along it with order_z, mode nearest.
    other = [k for k in range(3) if k != axis]
    tmp_shape = list(new_shape)
    tmp_shape[axis] = vol.shape[axis]
    tmp = np.zeros(tmp_shape)
    for i in range(vol.shape[axis]):
        sl = [slice(None)] * 3
        sl[axis] = i
        src = vol[tuple(sl)]
        r = resize2d(src, [new_shape[k] for k in other], order)
        tmp[tuple(sl)] = np.clip(r, src.min(), src.max()) if order > 1 else r
    n_in, n_out = vol.shape[axis], new_shape[axis]
    coords = list(np.meshgrid(*[np.arange(s, dtype=float) for s in new_shape], indexing="ij"))
    coords[axis] = (coords[axis] + 0.5) * n_in / n_out - 0.5
    return map_coordinates(tmp, coords, order=order_z, mode="nearest")


# ---- nnU-Net's pieces
def normalize(img, scheme, mask):
    img = img.astype(np.float32)
    s = scheme["scheme"]
    if s == "zscore" and scheme.get("use_mask"):
        mean, std = img[mask].mean(), img[mask].std()
        img[mask] = (img[mask] - mean) / max(std, 1e-8)
    elif s == "zscore":
        img -= img.mean()
        img /= max(img.std(), 1e-8)
    elif s == "ct":
        np.clip(img, scheme["lower"], scheme["upper"], out=img)
        img -= scheme["mean"]
        img /= max(scheme["std"], 1e-8)
    elif s == "rescale01":
        img -= img.min()
        img /= max(img.max(), 1e-8)
    elif s == "rgb01":
        img /= 255.0
    return img


def steps(size, p, step):
    n = int(np.ceil((size - p) / (p * step))) + 1
    actual = (size - p) / (n - 1) if n > 1 else 99999999999
    return [int(np.round(actual * i)) for i in range(n)]


def gaussian(patch):
    tmp = np.zeros(patch)
    tmp[tuple(p // 2 for p in patch)] = 1
    g = gaussian_filter(tmp, [p / 8 for p in patch], 0, mode="constant", cval=0)
    g = g / (g.max() / 10)
    g = g.astype(np.float32).astype(np.float16)
    g[g == 0] = g[g != 0].min()
    return g.astype(np.float32)


def contract(model_path, card):
    meta = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    if card:
        with open(card) as f:
            for k, v in json.load(f).items():
                k = k if k.startswith("slicewise.") else "slicewise." + k
                meta[k] = v if isinstance(v, str) else json.dumps(v)
    return meta


def main():
    global ANISO
    args = sys.argv[1:]
    tta = "--tta" in args
    card = args[args.index("--card") + 1] if "--card" in args else None
    model_path, image_path, outdir = [a for a in args if not a.startswith("--") and a != card][:3]
    meta = contract(model_path, card)
    spec = json.loads(meta["slicewise.tiled"])
    ANISO = spec["anisotropy_threshold"]
    kind = meta["slicewise.output_kind"]
    n_ch = int(meta["slicewise.channels"])
    sources = json.loads(meta.get("slicewise.source_channels", json.dumps(list(range(n_ch)))))
    if isinstance(sources, str):
        sources = [int(x) for x in sources.split(",")]
    labels = [l["value"] for l in json.loads(meta["slicewise.labels"])]

    img = nib.load(image_path)
    raw = np.asarray(img.dataobj, dtype=np.float32)
    raw = raw[..., None] if raw.ndim == 3 else raw.reshape(raw.shape[:3] + (-1,))
    data = np.stack([raw[..., c].transpose(2, 1, 0) for c in sources]).astype(np.float32)  # (C, z, y, x)
    spacing = [float(abs(s)) for s in img.header.get_zooms()[:3][::-1]]
    t = spec["transpose"]
    data = data.transpose([0] + [i + 1 for i in t])
    sp = [spacing[i] for i in t]
    shape_before = data.shape[1:]

    nz = np.any(data != 0, axis=0)
    if spec["crop_nonzero"] and nz.any():
        idx = np.nonzero(nz)
        bbox = [(int(i.min()), int(i.max()) + 1) for i in idx]
    else:
        bbox = [(0, s) for s in shape_before]
    box = tuple(slice(a, b) for a, b in bbox)
    data = data[(slice(None),) + box]
    mask = binary_fill_holes(nz)[box]
    cropped = data.shape[1:]
    target = [sp[0]] + list(spec["spacing"])
    new_shape = [int(round(i / j * k)) for i, j, k in zip(sp, target, cropped)]
    data = np.stack([normalize(data[c], spec["normalization"][c], mask) for c in range(len(data))])
    data = np.stack([resample(c, new_shape, sp, target, spec["resample_data"]) for c in data]).astype(np.float32)

    p1, p2 = spec["patch"]
    P = [max(new_shape[1], p1), max(new_shape[2], p2)]
    before = [(P[0] - new_shape[1]) // 2, (P[1] - new_shape[2]) // 2]
    padded = np.zeros((len(data), new_shape[0], P[0], P[1]), np.float32)
    padded[:, :, before[0]:before[0] + new_shape[1], before[1]:before[1] + new_shape[2]] = data
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    g = gaussian((p1, p2))
    flips = [()]
    if tta:
        axes = [a + 2 for a in spec["mirror_axes"] or []]
        flips += [(a,) for a in axes] + ([tuple(axes)] if len(axes) == 2 else [])
    heads = sess.get_outputs()[0].shape[1]
    acc = np.zeros((heads,) + padded.shape[1:], np.float64)
    n_pred = np.zeros(padded.shape[1:], np.float64)
    for d in range(new_shape[0]):
        for sx in steps(P[0], p1, spec["step"]):
            for sy in steps(P[1], p2, spec["step"]):
                x = padded[None, :, d, sx:sx + p1, sy:sy + p2]
                pred = sess.run([out], {inp: x})[0].astype(np.float64)
                for f in flips[1:]:
                    pred += np.flip(sess.run([out], {inp: np.ascontiguousarray(np.flip(x, f))})[0], f)
                pred = pred[0] / len(flips)
                acc[:, d, sx:sx + p1, sy:sy + p2] += pred * g
                n_pred[d, sx:sx + p1, sy:sy + p2] += g
    logits = (acc / n_pred)[:, :, before[0]:before[0] + new_shape[1], before[1]:before[1] + new_shape[2]]
    logits = np.stack([resample(l, cropped, target, sp, spec["resample_logits"]) for l in logits])

    if kind == "regions":
        seg = np.zeros(cropped, np.uint8)
        for i, v in enumerate(labels):
            seg[logits[i] > 0] = v
        margin = np.abs(logits).min(0)
    else:
        cls = logits.argmax(0)
        lut = np.array([0] + labels, np.uint8)
        seg = lut[cls]
        top = np.sort(logits, 0)
        margin = top[-1] - top[-2]
    full = np.zeros(shape_before, np.uint8)
    full[box] = seg
    gap = np.full(shape_before, np.inf, np.float32)
    gap[box] = margin
    back = np.argsort(t)
    full = np.ascontiguousarray(full.transpose(back))
    gap = np.ascontiguousarray(gap.transpose(back))
    os.makedirs(outdir, exist_ok=True)
    full.tofile(os.path.join(outdir, "mask.u8"))
    gap.astype("<f4").tofile(os.path.join(outdir, "margin.f32"))
    counts = {int(v): int(c) for v, c in zip(*np.unique(full, return_counts=True))}
    print(json.dumps({"shape": list(full.shape), "bbox": bbox, "new_shape": new_shape, "counts": counts,
                      "separate": separate_axis(sp, target, spec["resample_data"]["force_separate_z"])}))


if __name__ == "__main__":
    main()
