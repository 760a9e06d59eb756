"""The conformance corpus and its reference readings: every DICOM, NIfTI and TIFF file in the
reference packages' own test data on disk (pydicom's test files, nibabel's test data and its
nicom DICOMs), plus files written by other tools (dcmtk's dcmconv, nibabel, tifffile with
imagecodecs) for cases the packages do not ship (big-endian 32-bit, multi-frame RT dose with
absolute offsets, native YBR and palette colour, sheared affines, ANALYZE pairs, TIFF codecs).

usage: conformance_ref.py OUTDIR CT_FILE MR_FILE RGB_TIFF   ->   {"files": [...]}
(From ../shared/data: CT_FILE a real 16-bit CT slice for dcmtk's JPEG codecs and the TIFF codecs,
MR_FILE a real 12-bit MR slice for dcmtk's 12-bit JPEG Extended codec, RGB_TIFF a real 8-bit RGB
MR slice for the TIFF codecs.)

Each entry: path, format (dicom | nifti | tiff), source, and either the reference reading
("ref": true, "data": raw float32 voxels [c, z, y, x] written to OUTDIR, "shape",
"affine_lps" (4x4, or null where the format carries no geometry or the file no positions),
"tol" (the largest absolute voxel difference accepted, with "tol_why")) or "ref": false with
"reason" (the reference reader does not open it as an image). Nothing is downloaded.

Reference conventions (slicewise's, documented in its readers): DICOM voxels are
pixel_array * slope + intercept in float64 (RescaleSlope, or DoseGridScaling for RT dose; per
frame from the functional groups), MONOCHROME1 inverted on the stored range before rescale,
YBR colour converted to RGB (pydicom's own pixel_array does), PALETTE COLOR expanded through
pydicom's apply_color_lut; frames sorted along the slice normal, GridFrameOffsetVector applied as
position + (offset - first offset) * normal (PS3.3 C.8.8.3.2). NIfTI: nibabel's get_fdata and
img.affine (RAS, turned to LPS here). TIFF: tifffile.imread's samples, alpha dropped.
"""
import os
import subprocess
import sys
import warnings

import numpy as np

from common import dump, emit

warnings.simplefilter("ignore")

import nibabel as nib  # noqa: E402
import pydicom  # noqa: E402
import tifffile  # noqa: E402
from pydicom.pixels import apply_color_lut  # noqa: E402

OUT = sys.argv[1]
CT3_FILE = sys.argv[2]
MR12_FILE = sys.argv[3]
RGB_TIFF = sys.argv[4]
GEN = os.path.join(OUT, "generated")
os.makedirs(GEN, exist_ok=True)
entries = []

# Lossy codecs: two conforming decoders may differ by their IDCT / wavelet rounding and chroma
# upsampling. The tolerance accepted there, as a fraction of the stored range.
LOSSY_TS = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
}
LOSSY_FRACTION = 0.02
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
# 12-bit JPEG Extended: two IDCTs (pylibjpeg's libjpeg, libjpeg-6b's accurate integer one that
# slicewise and dcmtk use) round differently by one stored value at most; dcmdjpeg's decode is
# the exact reference (see dcmdjpeg_entries).
JPEG12_STORED_TOL = 1


def lps_from_ras(a):
    a = np.array(a, float)
    a[:2] *= -1
    return a


def fg(ds, i, seq, kw):
    """Attribute kw from functional group seq of frame i (per-frame, else shared)."""
    for top in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        if top in ds:
            items = ds[top].value
            if not items:
                continue
            item = items[min(i, len(items) - 1)] if top.startswith("Per") else items[0]
            if seq in item and item[seq].value and kw in item[seq].value[0]:
                return item[seq].value[0][kw].value
    return None


def dicom_pixels(ds):
    """pixel_array as [frames, rows, cols, samples] float64, colour-converted as pydicom does."""
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    pi = str(ds.PhotometricInterpretation)
    if pi == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    spp = 3 if arr.ndim == (4 if n > 1 else 3) else 1
    if n == 1:
        arr = arr[None]
    if spp == 1:
        arr = arr[..., None]
    return arr.astype(np.float64), n, pi


def dicom_frames(ds):
    arr, n, pi = dicom_pixels(ds)
    bs = int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if signed else (0, 2 ** bs - 1)
    offsets = ds.get("GridFrameOffsetVector")
    frames = []
    for i in range(n):
        a = arr[i]
        if pi == "MONOCHROME1":
            a = lo + hi - a
        slope = fg(ds, i, "PixelValueTransformationSequence", "RescaleSlope")
        inter = fg(ds, i, "PixelValueTransformationSequence", "RescaleIntercept")
        if slope is None:
            slope = ds.get("RescaleSlope")
            if slope is None and ds.get("Modality") == "RTDOSE":
                slope = ds.get("DoseGridScaling")
        slope = 1.0 if slope in (None, "") else float(slope)
        inter = ds.get("RescaleIntercept", 0) if inter is None else inter
        inter = 0.0 if inter in (None, "") else float(inter)
        a = a * slope + inter
        ipp = fg(ds, i, "PlanePositionSequence", "ImagePositionPatient") or ds.get("ImagePositionPatient")
        iop = fg(ds, i, "PlaneOrientationSequence", "ImageOrientationPatient") or ds.get("ImageOrientationPatient")
        ps = fg(ds, i, "PixelMeasuresSequence", "PixelSpacing") or ds.get("PixelSpacing")
        has_per_frame = "PerFrameFunctionalGroupsSequence" in ds
        if ipp is not None and iop is not None and n > 1 and not has_per_frame:
            if offsets is None or len(offsets) != n:
                ipp = None  # no per-frame position: frames in file order
            else:
                nrm = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
                nrm /= np.linalg.norm(nrm)
                d = float(offsets[i]) - float(offsets[0])
                ipp = list(np.array(ipp, float) + d * nrm)
        frames.append(dict(i=i, a=a, ipp=ipp, iop=iop, ps=ps))
    return frames


def dicom_affine(ds, frames):
    if not all(f["ipp"] is not None and f["iop"] is not None for f in frames):
        return None
    iop = np.array(frames[0]["iop"], float)
    row, col = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    nrm = np.cross(row, col)
    nrm /= np.linalg.norm(nrm)
    frames.sort(key=lambda f: (float(np.dot(np.array(f["ipp"], float), nrm)), f["i"]))
    ps = frames[0]["ps"]
    ps = np.array(ps, float) if ps is not None and all(float(v) > 0 for v in ps) else np.ones(2)
    first = np.array(frames[0]["ipp"], float)
    if len(frames) > 1:
        step = (np.array(frames[-1]["ipp"], float) - first) / (len(frames) - 1)
    else:
        st = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
        st = float(st) if st not in (None, "") and float(st) > 0 else 1.0
        step = nrm * st
    affine = np.eye(4)
    affine[:3, 0] = row * ps[1]
    affine[:3, 1] = col * ps[0]
    affine[:3, 2] = step
    affine[:3, 3] = first
    return affine


def dicom_entry(path, source):
    e = {"path": path, "format": "dicom", "source": source}
    try:
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds or "Rows" not in ds:
            return {**e, "ref": False, "reason": "no PixelData/Rows: not an image"}
        frames = dicom_frames(ds)
    except Exception as ex:  # noqa: BLE001 - the reason is reported
        return {**e, "ref": False, "reason": f"pydicom: {type(ex).__name__}: {ex}"[:300]}
    affine = dicom_affine(ds, frames)
    vol = np.stack([f["a"] for f in frames])  # z, y, x, c
    vol = vol.transpose(3, 0, 1, 2)
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    bs = int(ds.BitsStored)
    slope = abs(float(ds.get("RescaleSlope", 1) or 1))
    if ts == JPEG_EXTENDED and bs == 12:
        tol = JPEG12_STORED_TOL * slope + 1e-6 * max(1.0, float(np.max(np.abs(vol))))
        why = (f"12-bit JPEG: pylibjpeg's libjpeg and libjpeg-6b's islow IDCT (slicewise's) "
               f"differ by up to {JPEG12_STORED_TOL} stored value")
    elif ts in LOSSY_TS:
        tol = LOSSY_FRACTION * (2 ** bs) * slope
        why = f"lossy {LOSSY_TS[ts]}: {LOSSY_FRACTION:.0%} of the {bs}-bit range"
    else:
        tol = 1e-6 * max(1.0, float(np.max(np.abs(vol))) if vol.size else 1.0)
        why = "exact to float32 rounding of the rescaled value"
    return {**e, "ref": True, "affine_lps": affine, "tol": tol, "tol_why": why,
            "photometric": str(ds.PhotometricInterpretation), "transfer_syntax": ts, "_vol": vol}


def nifti_entry(path, source):
    e = {"path": path, "format": "nifti", "source": source}
    try:
        img = nib.load(path)
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti1Pair, nib.Nifti2Image, nib.Nifti2Pair,
                                nib.AnalyzeImage)):
            return {**e, "ref": False, "reason": f"nibabel loads it as {type(img).__name__}"}
        raw = np.asanyarray(img.dataobj)
        if raw.dtype.names:
            arr = np.stack([raw[n].astype(np.float64) for n in raw.dtype.names], axis=-1)
        else:
            arr = img.get_fdata()
    except Exception as ex:  # noqa: BLE001
        return {**e, "ref": False, "reason": f"nibabel: {type(ex).__name__}: {ex}"[:300]}
    if arr.ndim < 3:
        arr = arr.reshape(arr.shape + (1,) * (3 - arr.ndim))
    arr = arr.reshape(arr.shape[:3] + (-1,))
    vol = np.transpose(arr, (3, 2, 1, 0))
    finite = vol[np.isfinite(vol)]
    tol = 1e-6 * max(1.0, float(np.max(np.abs(finite))) if finite.size else 1.0)
    return {**e, "ref": True, "affine_lps": lps_from_ras(img.affine), "tol": tol,
            "tol_why": "float32 rounding of the scaled value", "image_class": type(img).__name__,
            "_vol": vol}


def tiff_entry(path, source, tol=0.0, why="exact"):
    e = {"path": path, "format": "tiff", "source": source}
    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            arr = series.asarray()
            axes = series.axes
            page = tf.pages[0]
            extra = len(page.extrasamples)
            compression = page.compression.name
    except Exception as ex:  # noqa: BLE001
        return {**e, "ref": False, "reason": f"tifffile: {type(ex).__name__}: {ex}"[:300]}
    # tifffile names a plain stack of pages Q or I: those are our slices.
    axes = axes.replace("S", "C").replace("Q", "Z").replace("I", "Z")
    a = np.asarray(arr)
    for ax in "CZ":
        if ax not in axes:
            a = a[np.newaxis]
            axes = ax + axes
    if set(axes) != set("CZYX"):
        return {**e, "ref": False, "reason": f"tifffile series axes {series.axes}"}
    a = np.transpose(a, [axes.index(ax) for ax in "CZYX"]).astype(np.float64)
    if extra:
        a = a[: a.shape[0] - extra]
    return {**e, "ref": True, "affine_lps": None, "tol": tol, "tol_why": why,
            "compression": compression, "_vol": a}


def walk(root, keep):
    out = []
    for r, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(r, f)
            if keep(f) and os.path.isfile(p):
                out.append(p)
    return sorted(out)


def is_dicom_candidate(name):
    low = name.lower()
    return not low.endswith((".py", ".pyc", ".txt", ".json", ".md", ".dump", ".icc", ".gz",
                             ".rst", ".bin", "readme"))


# --- generated DICOM: written by dcmtk and by pydicom ------------------------------------------
def pydicom_file(name):
    from pydicom.data import get_testdata_file
    return get_testdata_file(name, download=False)


def gen_dicom():
    from pydicom.uid import ExplicitVRLittleEndian
    made = []
    # dcmtk writes Explicit VR Big Endian versions of 32-bit RT dose and 16-bit MR.
    for src, name in [("rtdose.dcm", "dcmtk_rtdose_big_endian.dcm"),
                      ("MR_small.dcm", "dcmtk_mr_big_endian.dcm"),
                      ("SC_rgb_small_odd.dcm", "dcmtk_rgb_big_endian.dcm")]:
        dst = os.path.join(GEN, name)
        subprocess.run(["dcmconv", "+tb", pydicom_file(src), dst], check=True,
                       capture_output=True)
        made.append(dst)
    # dcmtk's codecs: RLE of 32-bit multi- and single-frame RT dose, 16-bit MR and 8-bit RGB;
    # JPEG lossless (process 14 SV1 and process 14) of 16-bit CT and MR; JPEG baseline of RGB.
    for tool, opts, src, name in [
        ("dcmcrle", [], pydicom_file("rtdose.dcm"), "dcmtk_rle_rtdose.dcm"),
        ("dcmcrle", [], pydicom_file("rtdose_1frame.dcm"), "dcmtk_rle_rtdose_1frame.dcm"),
        ("dcmcrle", [], pydicom_file("MR_small.dcm"), "dcmtk_rle_mr.dcm"),
        ("dcmcrle", [], pydicom_file("SC_rgb_small_odd.dcm"), "dcmtk_rle_rgb.dcm"),
        ("dcmcjpeg", ["+e1"], CT3_FILE, "dcmtk_jpeg_lossless_sv1_ct.dcm"),
        ("dcmcjpeg", ["+el"], pydicom_file("MR_small.dcm"), "dcmtk_jpeg_lossless_mr.dcm"),
        ("dcmcjpeg", ["+eb"], pydicom_file("SC_rgb_small_odd.dcm"), "dcmtk_jpeg_baseline_rgb.dcm"),
        ("dcmcjpeg", ["+el"], pydicom_file("SC_rgb_small_odd.dcm"), "dcmtk_jpeg_lossless_rgb.dcm"),
        # JPEG Extended (process 4) at 12 bits: a real 12-bit MR slice, and the 16-bit CT slice,
        # which dcmtk rescales into 12 bits (it writes the matching RescaleSlope/Intercept).
        ("dcmcjpeg", ["+ee"], MR12_FILE, "dcmtk_jpeg_extended12_mr.dcm"),
        ("dcmcjpeg", ["+ee"], CT3_FILE, "dcmtk_jpeg_extended12_ct.dcm"),
        ("dcmcjpeg", ["+e1"], pydicom_file("SC_rgb_small_odd.dcm"), "dcmtk_jpeg_lossless_sv1_rgb.dcm"),
    ]:
        dst = os.path.join(GEN, name)
        subprocess.run([tool, *opts, src, dst], check=True, capture_output=True)
        made.append(dst)
    # Signed 32-bit, big endian (pydicom writes the value bytes as given: big-endian samples).
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    a = ds.pixel_array.astype(np.int32) * 40000 - 300000000
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 1
    ds.PixelData = a.astype("<i4").tobytes()
    ds["PixelData"].VR = "OW"
    le = os.path.join(GEN, "gen_signed32_little_endian.dcm")
    ds.save_as(le)
    made.append(le)
    p = os.path.join(GEN, "gen_signed32_big_endian.dcm")
    subprocess.run(["dcmconv", "+tb", le, p], check=True, capture_output=True)
    made.append(p)
    # RT dose with absolute offsets (first offset = the z of ImagePositionPatient, axial).
    ds = pydicom.dcmread(pydicom_file("rtdose.dcm"))
    z0 = float(ds.ImagePositionPatient[2])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.GridFrameOffsetVector = [z0 + float(v) for v in ds.GridFrameOffsetVector]
    p = os.path.join(GEN, "gen_rtdose_absolute_offsets.dcm")
    ds.save_as(p)
    made.append(p)
    # RT dose with offsets that decrease (frames stored top to bottom).
    ds = pydicom.dcmread(pydicom_file("rtdose.dcm"))
    ds.GridFrameOffsetVector = [-float(v) for v in ds.GridFrameOffsetVector]
    p = os.path.join(GEN, "gen_rtdose_decreasing_offsets.dcm")
    ds.save_as(p)
    made.append(p)
    # Native YBR_FULL (interleaved and planar) from an RGB image's YBR conversion.
    from pydicom.pixels import convert_color_space
    src = pydicom.dcmread(pydicom_file("SC_rgb_rle_2frame.dcm"))
    ybr = convert_color_space(src.pixel_array, "RGB", "YBR_FULL")
    for planar in (0, 1):
        ds = src.copy()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PhotometricInterpretation = "YBR_FULL"
        ds.PlanarConfiguration = planar
        data = ybr if planar == 0 else ybr.transpose(0, 3, 1, 2)
        ds.PixelData = np.ascontiguousarray(data).tobytes()
        p = os.path.join(GEN, f"gen_ybr_full_planar{planar}.dcm")
        ds.save_as(p)
        made.append(p)
    # Native YBR_FULL_422 (two luma samples share a Cb, Cr pair).
    ds = src.copy()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    f, r, c, _ = ybr.shape
    pairs = ybr.reshape(f, r, c // 2, 2, 3)
    packed = np.stack([pairs[..., 0, 0], pairs[..., 1, 0], pairs[..., 0, 1], pairs[..., 0, 2]], -1)
    ds.PixelData = np.ascontiguousarray(packed).tobytes()
    p = os.path.join(GEN, "gen_ybr_full_422.dcm")
    ds.save_as(p)
    made.append(p)
    # PALETTE COLOR with 16-bit LUTs and a first mapped value above 0, on 16-bit indices.
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    idx = (ds.pixel_array.astype(np.int64) % 300).astype(np.uint16)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.PixelRepresentation = 0
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelData = idx.astype("<u2").tobytes()
    rng = np.random.default_rng(7)
    for k in range(3):  # red, green, blue
        lut = rng.integers(0, 65535, size=256, dtype=np.uint16)
        ds.add_new(0x00281101 + k, "US", [256, 20, 16])
        ds.add_new(0x00281201 + k, "OW", lut.astype("<u2").tobytes())
    for kw in ("RescaleSlope", "RescaleIntercept"):
        if kw in ds:
            delattr(ds, kw)
    p = os.path.join(GEN, "gen_palette16.dcm")
    ds.save_as(p)
    made.append(p)
    return made


def dcmdjpeg_entries(paths):
    """12-bit JPEG files with a second reference: dcmtk's dcmdjpeg decompresses them (libjpeg-6b,
    the accurate integer IDCT slicewise's decoder implements), pydicom reads the result, and
    slicewise's reading of the compressed file must equal it exactly."""
    out = []
    for src in paths:
        dst = os.path.join(GEN, os.path.basename(src)[:-4] + "_dcmdjpeg.dcm")
        subprocess.run(["dcmdjpeg", src, dst], check=True, capture_output=True)
        e = dicom_entry(dst, "dcmdjpeg")
        if e.get("ref"):
            top = float(np.max(np.abs(e["_vol"]))) if e["_vol"].size else 1.0
            e.update(path=src, tol=1e-6 * max(1.0, top),
                     tol_why="exact: dcmdjpeg's libjpeg-6b decode, float32 rounding of the rescale")
        out.append(e)
    return out


# --- generated NIfTI: nibabel with shear, ANALYZE ------------------------------------------------
def gen_nifti():
    made = []
    rng = np.random.default_rng(3)
    data = rng.standard_normal((6, 5, 4)).astype(np.float32)
    shear = np.array([[0.9, 0.3, 0.1, -10.0], [0.05, 1.1, -0.2, 20.0], [0.0, 0.15, 2.5, 5.0],
                      [0, 0, 0, 1]])
    p = os.path.join(GEN, "gen_shear_sform.nii.gz")
    nib.save(nib.Nifti1Image(data, shear), p)
    made.append(p)
    img = nib.Nifti2Image(data, shear @ np.diag([-1.0, 1, 1, 1]))
    p = os.path.join(GEN, "gen_shear_nifti2.nii")
    nib.save(img, p)
    made.append(p)
    p = os.path.join(GEN, "gen_analyze.hdr")
    nib.save(nib.AnalyzeImage(rng.integers(0, 100, (6, 5, 4)).astype(np.int16),
                              np.diag([2.0, 3.0, 4.0, 1.0])), p)
    made.append(p)
    return made


# --- generated TIFF: tifffile with imagecodecs codecs --------------------------------------------
def gen_tiff():
    made = []
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 255, (3, 24, 40), dtype=np.uint8)
    gray16 = rng.integers(0, 4095, (2, 24, 40), dtype=np.uint16)
    rgb = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    smooth = (np.add.outer(np.arange(24), np.arange(40)) * 3 % 256).astype(np.uint8)
    cases = [
        ("zstd_u16", gray16, {"compression": "zstd"}, 0.0),
        ("lzma_u8", gray, {"compression": "lzma"}, 0.0),
        ("deflate_old_u8", gray, {"compression": "deflate"}, 0.0),
        ("adobe_deflate_u16", gray16, {"compression": "adobe_deflate"}, 0.0),
        ("packbits_u8", gray, {"compression": "packbits"}, 0.0),
        ("jpeg_gray_u8", smooth, {"compression": "jpeg"}, 0.02 * 256),
        ("jpeg_rgb_ycbcr_u8", np.stack([smooth, smooth[::-1], 255 - smooth], -1),
         {"compression": "jpeg", "photometric": "ycbcr"}, 0.02 * 256),
        # Per-pixel colour noise, 2x2 subsampled chroma: the decoders' chroma upsampling
        # (libjpeg's in imagecodecs, zune-jpeg's triangle filter) differs most here.
        ("jpeg_rgb_noise_u8", rgb, {"compression": "jpeg", "photometric": "rgb"}, 16.0),
        ("jpeg2000_u8", gray[0], {"compression": "jpeg2000"}, 0.0),
        ("webp_rgb_u8", rgb, {"compression": "webp", "photometric": "rgb"}, 0.0),
        ("png_u8", gray[0], {"compression": "png"}, 0.0),
        ("lerc_f32", gray.astype(np.float32), {"compression": "lerc"}, 0.0),
    ]
    # Real data through the codecs the tiff crate lacks (LZMA, JPEG 2000) or has behind a
    # feature (zstd): a signed 16-bit CT slice, an RGB MR slice; strips, tiles, planar, big endian.
    ct = pydicom.dcmread(CT3_FILE).pixel_array.astype(np.int16)
    ct_stack = np.stack([ct, ct[::-1], ct[:, ::-1]])
    mr_rgb = tifffile.imread(RGB_TIFF)
    cases += [
        ("zstd_ct_i16", ct, {"compression": "zstd"}, 0.0),
        ("zstd_ct_predictor_i16", ct, {"compression": "zstd", "predictor": True}, 0.0),
        ("lzma_ct_i16", ct, {"compression": "lzma"}, 0.0),
        ("lzma_ct_strips_i16", ct_stack, {"compression": "lzma", "rowsperstrip": 100}, 0.0),
        ("lzma_ct_tiled_big_endian_i16", ct_stack,
         {"compression": "lzma", "tile": (192, 128), "byteorder": ">"}, 0.0),
        ("lzma_mr_rgb_planar_u8", mr_rgb,
         {"compression": "lzma", "photometric": "rgb", "planarconfig": "separate"}, 0.0),
        ("jpeg2000_ct_i16", ct, {"compression": "jpeg2000"}, 0.0),
        ("jpeg2000_ct_tiled_i16", ct_stack, {"compression": "jpeg2000", "tile": (256, 256)}, 0.0),
        ("jpeg2000_mr_rgb_u8", mr_rgb, {"compression": "jpeg2000", "photometric": "rgb"}, 0.0),
        ("zstd_mr_rgb_tiled_u8", mr_rgb,
         {"compression": "zstd", "photometric": "rgb", "tile": (128, 128)}, 0.0),
    ]
    for name, data, kw, tol in cases:
        p = os.path.join(GEN, name + ".tif")
        kw = dict(kw)
        kw.setdefault("photometric", "minisblack" if data.ndim != 3 or data.shape[-1] != 3 else "rgb")
        try:
            tifffile.imwrite(p, data, **kw)
        except Exception as ex:  # noqa: BLE001 - a codec imagecodecs lacks: not in the corpus
            print(f"conformance_ref: cannot write {name}: {ex}", file=sys.stderr)
            continue
        why = "exact"
        if tol:
            why = (f"lossy JPEG: {tol / 256:.1%} of the 8-bit range (IDCT rounding, colour "
                   "conversion and chroma upsampling differ between conforming decoders)")
        made.append((p, tol, why))
    return made


def main():
    pyd = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    nibdir = os.path.dirname(nib.__file__)
    dicoms = [(p, "pydicom") for p in walk(pyd, is_dicom_candidate)]
    dicoms += [(p, "nibabel") for p in walk(os.path.join(nibdir, "nicom", "tests", "data"),
                                            lambda f: f.endswith(".dcm"))]
    dicoms += [(p, "nibabel") for p in walk(os.path.join(nibdir, "tests", "data"),
                                            lambda f: f.endswith(".dcm"))]
    dicoms += [(p, "generated") for p in gen_dicom()]
    niftis = [(p, "nibabel") for p in walk(os.path.join(nibdir, "tests", "data"),
                                           lambda f: f.endswith((".nii", ".nii.gz", ".hdr", ".img",
                                                                 ".hdr.gz", ".img.gz")))]
    niftis += [(p, "generated") for p in gen_nifti()]
    for p, source in dicoms:
        entries.append(dicom_entry(p, source))
    twelve_bit_jpeg = ("JPGExtended.dcm", "JPEG-lossy.dcm", "dcmtk_jpeg_extended12_mr.dcm",
                       "dcmtk_jpeg_extended12_ct.dcm")
    twelve = [p for p, _ in dicoms if os.path.basename(p) in twelve_bit_jpeg]
    entries.extend(dcmdjpeg_entries(twelve))
    for p, source in niftis:
        entries.append(nifti_entry(p, source))
    for p, tol, why in gen_tiff():
        entries.append(tiff_entry(p, "generated", tol, why))
    for i, e in enumerate(entries):
        vol = e.pop("_vol", None)
        if vol is not None:
            e["data"] = os.path.join(OUT, f"{i}.f32")
            e["shape"] = list(vol.shape)
            dump(vol, e["data"])
    emit({"files": entries})


main()
