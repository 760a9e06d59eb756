"""A numpy model of the engine's slice preprocessing (crates/slicewise/src/infer/preprocess.rs
and crop.rs): the contract's normalisation, the foreground crop, the placement on the model grid
and the bilinear half-pixel resize, and the inverse that brings model outputs back.

Shared by scripts/quantize.py (calibration slices fed as the engine feeds them) and the tests'
engine reference (tests/python/engine_ref.py, which compares the engine with it); it lives here
so that the script does not depend on the test folder. numpy only.
"""
import numpy as np

F32 = np.float32


def norm_params(kind, x):
    """(lo, hi, offset, scale) from the finite values x (float64 statistics)."""
    if kind.startswith("percentile-tissue:"):
        return _tissue(kind, x)
    return _norm_params(kind, x) if not kind.startswith("percentile-fg:") else _fg(kind, x)


def _tissue(kind, x):
    """percentile-tissue:a,b,m: percentile-fg:a,b, then scaled so that the median t of the
    voxels it maps above 0.1 (in float32) maps to m: scale = m / (t - lo)."""
    a, b, m = kind.split(":")[1].split(",")
    p = _fg(f"percentile-fg:{a},{b}", x)
    v = x[np.isfinite(x)]
    t = v[apply_norm(v, p) > F32(0.1)].astype(np.float64)
    if t.size == 0:
        return p
    t = np.percentile(t, 50)
    if not t > np.float64(F32(p[2])):
        return p
    return p[0], p[1], p[2], float(m) / (t - np.float64(F32(p[2])))


def _fg(kind, x):
    """percentile-fg: percentiles of the voxels above the minimum; the minimum itself maps to 0."""
    x = x[np.isfinite(x)].astype(np.float64)
    if x.size == 0:
        return -np.inf, np.inf, 0.0, 0.0
    return _norm_params("percentile:" + kind.split(":")[1], x[x > np.float32(x.min())])


def _norm_params(kind, x):
    inf = np.inf
    x = x[np.isfinite(x)].astype(np.float64)
    if kind == "none":
        return -inf, inf, 0.0, 1.0
    if kind in ("minmax-volume", "minmax-slice", "minmax"):
        if x.size == 0:
            return -inf, inf, 0.0, 0.0
        lo, hi = x.min(), x.max()
        return -inf, inf, lo, (1.0 / (hi - lo) if hi > lo else 0.0)
    if kind == "zscore":
        if x.size == 0:
            return -inf, inf, 0.0, 0.0
        m = x.mean()
        sd = np.sqrt(((x - m) ** 2).mean())
        return -inf, inf, m, (1.0 / sd if sd > 0 else 1.0)
    name, args = kind.split(":")
    a, b = (float(t) for t in args.split(","))
    if name == "percentile":
        if x.size == 0:
            return -inf, inf, 0.0, 0.0
        lo, hi = np.percentile(x, a), np.percentile(x, b)
        return lo, hi, lo, (1.0 / (hi - lo) if hi > lo else 0.0)
    if name == "window":
        lo = a - b / 2.0
        return lo, a + b / 2.0, lo, 1.0 / b
    raise ValueError(kind)


def apply_norm(v, p):
    lo, hi, off, sc = (F32(t) for t in p)
    out = (np.clip(v.astype(F32), lo, hi) - off) * sc
    return np.where(np.isfinite(v), out, F32(0)).astype(F32)


def tab(n_in, n_out):
    o = np.arange(n_out, dtype=np.float64)
    s = np.clip((o + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (s - i0).astype(F32)


def resize(a, out_r, out_c):
    """Bilinear, half-pixel centres, over the last two axes, float32 arithmetic."""
    r0, r1, wy = tab(a.shape[-2], out_r)
    c0, c1, wx = tab(a.shape[-1], out_c)
    one = F32(1)
    A, B = a[..., r0, :], a[..., r1, :]
    top = (one - wx) * A[..., c0] + wx * A[..., c1]
    bot = (one - wx) * B[..., c0] + wx * B[..., c1]
    return ((one - wy)[:, None] * top + wy[:, None] * bot).astype(F32)


def placement(rows, cols, h, w, keep):
    if not keep:
        return 0, 0, h, w
    s = min(h / rows, w / cols)
    hh = min(max(int(round(rows * s)), 1), h)
    ww = min(max(int(round(cols * s)), 1), w)
    return (h - hh) // 2, (w - ww) // 2, hh, ww


def extent(counts):
    """First and one-past-last index holding the central 99.8 % of counts (crop.rs: TRIM)."""
    total = int(counts.sum())
    if total == 0:
        return None
    cut = int(np.floor(total * 0.001))
    cum = np.cumsum(counts)
    first = int(np.argmax(cum > cut))
    keep = np.nonzero((counts > 0) & (cum - counts < total - cut))[0]
    return first, max(int(keep[-1]), first) + 1


def grow(lo, hi, n):
    m = int(np.floor((hi - lo) * 0.04 + 0.5))
    return max(lo - m, 0), min(hi + m, n)


def crop_box(normed, t):
    """The foreground box of normalised slices [S, rows, cols]: values above t, counted per row
    and column over all slices, trimmed, grown by 4 % each side; the whole slice if none."""
    fg = normed > F32(t)
    S, rows, cols = normed.shape
    r, c = extent(fg.sum(axis=(0, 2))), extent(fg.sum(axis=(0, 1)))
    if r is None or c is None:
        return 0, rows, 0, cols
    return grow(*r, rows) + grow(*c, cols)


def prepare(c, x, axis):
    """The model inputs of volume x [C, Z, Y, X] along `axis` as the engine builds them:
    (prep [S, C_model, h, w] (C_model = C(2k+1) with 2.5D context k), crop box (r0, r1, c0, c1), placement (top, left, hh, ww),
    (S, rows, cols) of the uncropped slices)."""
    h, w = int(c["height"]), int(c["width"])
    src = [int(t) for t in c.get("source_channels", "0").split(",")]
    if x.shape[0] == 1:
        # The engine's rule: a one-channel volume serves every model channel (grey FLAIR).
        src = [0] * len(src)
    kind = c["normalization"]
    keep = str(c.get("keep_aspect", "false")).lower() in ("true", "1")
    vaxis = 3 - axis
    # Slices as [S, C, rows, cols].
    vol = np.moveaxis(x, vaxis, 1)
    S, full_rows, full_cols = vol.shape[1], vol.shape[2], vol.shape[3]
    box = (0, full_rows, 0, full_cols)
    if c.get("crop_foreground") is not None:
        ch = src[0]
        if kind == "minmax-slice":
            normed = np.stack([apply_norm(vol[ch, i], norm_params(kind, vol[ch, i])) for i in range(S)])
        else:
            normed = apply_norm(vol[ch], norm_params(kind, x[ch]))
        box = crop_box(normed, float(c["crop_foreground"]))
    b0, b1, b2, b3 = box
    vol = np.ascontiguousarray(vol[:, :, b0:b1, b2:b3])
    rows, cols = b1 - b0, b3 - b2
    top, left, hh, ww = placement(rows, cols, h, w, keep)
    prep = np.zeros((S, len(src), h, w), F32)
    for k, ch in enumerate(src):
        if kind == "minmax-slice":
            for s_ in range(S):
                p = norm_params(kind, vol[ch, s_])
                prep[s_, k, top:top + hh, left:left + ww] = resize(apply_norm(vol[ch, s_], p), hh, ww)
        else:
            p = norm_params(kind, x[ch])
            prep[:, k, top:top + hh, left:left + ww] = resize(apply_norm(vol[ch], p), hh, ww)
    return with_context(prep, int(c.get("context_slices", 0))), box, (top, left, hh, ww), (S, full_rows, full_cols)


def with_context(prep, k):
    """2.5D context (`context_slices` k): each channel of prep [S, C, h, w] becomes its slices
    s-k..s+k, clamped to the volume (edges replicated), channel-major: [S, C(2k+1), h, w]."""
    if k == 0:
        return prep
    S = prep.shape[0]
    idx = np.clip(np.arange(S)[:, None] + np.arange(-k, k + 1)[None, :], 0, S - 1)  # [S, 2k+1]
    out = prep[idx]  # [S, 2k+1, C, h, w]
    return np.ascontiguousarray(out.transpose(0, 2, 1, 3, 4).reshape(S, -1, *prep.shape[2:]))


def restore(probs, box, placement):
    """The model outputs [S, K, h, w] back on the crop box's grid [S, K, rows, cols]: the placed
    region resized back (the inverse of `prepare`'s placement and resize)."""
    b0, b1, b2, b3 = box
    top, left, hh, ww = placement
    return resize(np.ascontiguousarray(probs[:, :, top:top + hh, left:left + ww]), b1 - b0, b3 - b2)
