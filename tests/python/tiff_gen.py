"""Writes TIFF fixtures with tifffile into OUTDIR and the reference voxels tifffile reads back.

Usage: tiff_gen.py OUTDIR. Prints {"cases": [...]}, each case with: name, file, ref (raw f32 in
[c, z, y, x] order, as tifffile.imread returns the stored samples, rearranged; MinIsWhite cases
inverted to "higher = brighter"), shape [c, z, y, x], spacing [x, y, z] in mm or null, and
error (expected error kind) for files slicewise must refuse.
"""
import os
import sys

import numpy as np
import tifffile

from common import dump, emit

out = sys.argv[1]
rng = np.random.default_rng(42)
cases = []


def ref_czyx(arr, axes):
    """Rearranges tifffile's array with the given axes letters to [c, z, y, x]."""
    a = np.asarray(arr)
    for ax in "CZ":
        if ax not in axes:
            a = a[np.newaxis]
            axes = ax + axes
    return np.transpose(a, [axes.index(ax) for ax in "CZYX"])


def case(name, data, axes, kwargs, spacing=None, keep_c=None, error=None):
    path = os.path.join(out, name + ".tif")
    kwargs.setdefault("photometric", "minisblack")
    tifffile.imwrite(path, data, **kwargs)
    with tifffile.TiffFile(path) as tf:
        miniswhite = tf.pages[0].photometric == tifffile.PHOTOMETRIC.MINISWHITE
    # Our convention for MinIsWhite: higher = brighter, i.e. max - stored.
    invert = None
    if miniswhite:
        invert = 1 if data.dtype == bool else np.iinfo(data.dtype).max
    c = {"name": name, "file": path, "spacing": spacing, "error": error}
    if error is None:
        got = tifffile.imread(path)
        ref = ref_czyx(got, axes).astype(np.float64)
        if keep_c is not None:
            ref = ref[:keep_c]
        if invert is not None:
            ref = invert - ref
        rp = path + ".f32"
        dump(ref, rp)
        c["ref"] = rp
        c["shape"] = list(ref.shape)
    cases.append(c)


def rand(dtype, shape):
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


for dt in ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]:
    case(f"stack_{dt}", rand(dt, (4, 23, 37)), "ZYX", {})
    case(f"lzw_pred_{dt}", rand(dt, (3, 23, 37)), "ZYX", {"compression": "lzw", "predictor": True})
case("single_u8", rand("uint8", (23, 37)), "YX", {})
case("deflate_u16", rand("uint16", (3, 23, 37)), "ZYX", {"compression": "zlib"})
case("deflate_pred_f32", rand("float32", (3, 23, 37)), "ZYX", {"compression": "zlib", "predictor": True})
case("packbits_u8", rand("uint8", (3, 23, 37)) // 64, "ZYX", {"compression": "packbits"})
case("bigtiff_f32", rand("float32", (3, 23, 37)), "ZYX", {"bigtiff": True})
case("bigtiff_lzw_i16", rand("int16", (3, 23, 37)), "ZYX", {"bigtiff": True, "compression": "lzw"})
case("rgb_u8", rand("uint8", (3, 23, 37, 3)), "ZYXC", {"photometric": "rgb"})
case("rgb_u16_lzw", rand("uint16", (2, 23, 37, 3)), "ZYXC", {"photometric": "rgb", "compression": "lzw"})
case("planar_rgb_u8", rand("uint8", (3, 3, 23, 37)), "ZCYX",
     {"photometric": "rgb", "planarconfig": "separate"})
case("planar_rgb_u16_lzw", rand("uint16", (2, 3, 23, 37)), "ZCYX",
     {"photometric": "rgb", "planarconfig": "separate", "compression": "lzw", "predictor": True})
case("rgba_u8", rand("uint8", (2, 23, 37, 4)), "ZYXC",
     {"photometric": "rgb", "extrasamples": ["unassalpha"]}, keep_c=3)
case("gray_alpha_u8", rand("uint8", (2, 23, 37, 2)), "ZYXC",
     {"photometric": "minisblack", "extrasamples": ["unassalpha"], "planarconfig": "contig"}, keep_c=1)
case("miniswhite_u8", rand("uint8", (3, 23, 37)), "ZYX", {"photometric": "miniswhite"})
case("miniswhite_u16", rand("uint16", (2, 23, 37)), "ZYX", {"photometric": "miniswhite"})
case("bilevel", rand("uint8", (23, 37)) > 127, "YX", {})
case("bilevel_stack", rand("uint8", (3, 23, 37)) > 127, "ZYX", {})
case("bilevel_miniswhite", rand("uint8", (23, 37)) > 127, "YX", {"photometric": "miniswhite"})
for comp in [None, "lzw", "zlib", "packbits"]:
    kw = {"tile": (16, 16)}
    if comp:
        kw["compression"] = comp
    case(f"tiled_{comp or 'none'}_u16", rand("uint16", (2, 37, 45)), "ZYX", kw)
case("tiled_lzw_pred_f32", rand("float32", (2, 37, 45)), "ZYX",
     {"tile": (16, 16), "compression": "lzw", "predictor": True})
case("tiled_rgb_u8", rand("uint8", (37, 45, 3)), "YXC", {"tile": (16, 16), "photometric": "rgb"})
case("imagej_um", rand("float32", (5, 23, 37)), "ZYX",
     {"imagej": True, "resolution": (1 / 0.5, 1 / 0.25), "metadata": {"axes": "ZYX", "spacing": 2.5, "unit": "um"}},
     spacing=[0.0005, 0.00025, 0.0025])
case("imagej_mm_u16", rand("uint16", (4, 23, 37)), "ZYX",
     {"imagej": True, "resolution": (1 / 0.9375, 1 / 0.9375), "metadata": {"axes": "ZYX", "spacing": 6.0, "unit": "mm"}},
     spacing=[0.9375, 0.9375, 6.0])
case("imagej_channels", rand("float32", (4, 2, 23, 37)), "ZCYX",
     {"imagej": True, "metadata": {"axes": "ZCYX", "spacing": 3.0, "unit": "mm"}, "resolution": (2.0, 2.0)},
     spacing=[0.5, 0.5, 3.0])
case("ome", rand("uint16", (4, 23, 37)), "ZYX",
     {"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.75,
                                "PhysicalSizeZ": 2.0, "PhysicalSizeXUnit": "µm",
                                "PhysicalSizeYUnit": "mm", "PhysicalSizeZUnit": "mm"}},
     spacing=[0.0005, 0.75, 2.0])
case("palette", rand("uint8", (23, 37)), "YX",
     {"photometric": "palette", "colormap": rand("uint16", (3, 256))}, error="unsupported")
case("mixed_sizes", rand("uint8", (23, 37)), "YX", {})
tifffile.imwrite(cases[-1]["file"], rand("uint8", (11, 7)), append=True)
cases[-1]["error"] = "format"

# Codecs the tiff crate lacks (slicewise decodes LZMA and JPEG 2000 chunks itself): with the
# horizontal predictor, in strips; then damaged copies, which must be format errors naming the file.
case("lzma_predictor_u16", rand("uint16", (2, 23, 37)), "ZYX",
     {"compression": "lzma", "predictor": True, "rowsperstrip": 5})
case("lzma_predictor_rgb_u8", rand("uint8", (23, 37, 3)), "YXC",
     {"compression": "lzma", "predictor": True, "photometric": "rgb"})
case("jpeg2000_strips_u16", rand("uint16", (23, 37)) >> 4, "YX",
     {"compression": "jpeg2000", "rowsperstrip": 8})


def damaged(src, name, edit):
    """A copy of case src's file with its first chunk's bytes changed by edit(bytes, start)."""
    with tifffile.TiffFile(src) as tf:
        start = tf.pages[0].dataoffsets[0]
    data = bytearray(open(src, "rb").read())
    edit(data, start)
    path = os.path.join(out, name + ".tif")
    open(path, "wb").write(data)
    cases.append({"name": name, "file": path, "spacing": None, "error": "format"})


def ff_run(d, s):
    d[s + 20:s + 36] = b"\xff" * 16


def siz_width(d, s):
    d[s + 8:s + 12] = (0x00200200).to_bytes(4, "big")  # Xsiz: 2097664


lzma_src = next(c["file"] for c in cases if c["name"] == "lzma_predictor_u16")
j2k_src = next(c["file"] for c in cases if c["name"] == "jpeg2000_strips_u16")
damaged(lzma_src, "lzma_corrupt", ff_run)
damaged(j2k_src, "jpeg2000_corrupt_siz", siz_width)
damaged(j2k_src, "jpeg2000_corrupt_data", ff_run)

# tifffile's own view of what it wrote, for the spacing cases (independent of our expectations).
for c in cases:
    if c["name"].startswith("imagej"):
        with tifffile.TiffFile(c["file"]) as tf:
            ij = tf.imagej_metadata
            xr = tf.pages[0].tags["XResolution"].value
            yr = tf.pages[0].tags["YResolution"].value
            scale = {"um": 1e-3, "micron": 1e-3, "mm": 1.0}[ij.get("unit", "mm")]
            c["spacing"] = [xr[1] / xr[0] * scale, yr[1] / yr[0] * scale, ij["spacing"] * scale]
emit({"cases": cases})
