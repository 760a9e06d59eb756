//! NIfTI reading: `.nii`, `.nii.gz`, `.hdr`/`.img` pairs (either file may be given, either may be
//! gzipped), NIfTI-1 and NIfTI-2, either byte order.
//!
//! The header is parsed by hand ([`header`], shared with the writer in
//! [`formats::nifti`](crate::formats::nifti)) and the voxels are read straight from the
//! (decompressed) stream in chunks, so that no header value can make us panic or allocate more
//! than [`ReadOptions::check_size`] allows, and NIfTI-2 is read the same way as NIfTI-1. The
//! geometry follows nibabel's `img.affine`: the sform when `sform_code != 0`, else the qform when
//! `qform_code != 0`, else nibabel's fallback from `pixdim` (noted in the warnings); a sheared
//! sform is kept exactly. ANALYZE 7.5 headers (no NIfTI magic) are refused as unsupported: the
//! format does not record the orientation, and a guessed one could mirror every mask.

mod geometry;

/// The header codec, shared with the writer; re-exported under its former path.
pub use crate::formats::nifti::header;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::Array4;

use super::{DType, ReadOptions, SourceFormat, Volume, VolumeMeta};
use crate::error::{Error, Result};
use header::Header;

/// Reads a NIfTI-1/-2 file or `.hdr`/`.img` pair into a [`Volume`].
///
/// Voxels are scaled by `scl_slope`/`scl_inter` (a zero or non-finite slope means no scaling, as
/// in nibabel); a 4th dimension (or any one dimension beyond the 3rd) becomes the channels; RGB24
/// and RGBA32 become 3 or 4 channels. Complex and 128-bit data are refused as unsupported.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Volume> {
    let hdr_path = header_path(path)?;
    let mut hr = open_stream(&hdr_path)?;
    let head = read_up_to(&mut hr, header::NIFTI2_HEADER_SIZE, &hdr_path)?;
    if header::is_analyze(&head) {
        // nibabel reads these with a guessed (radiological) orientation; a mask written on a
        // guessed grid could be mirrored, so we refuse rather than guess.
        return Err(Error::unsupported(
            &hdr_path,
            "ANALYZE 7.5 header (no NIfTI magic): the format does not record the image \
             orientation; convert it to NIfTI with the orientation stated",
        ));
    }
    let h = header::parse(&head).map_err(|m| Error::format(&hdr_path, m))?;
    let layout = Layout::new(&h, &hdr_path, options)?;
    let mut warnings = Vec::new();

    let mut offset = vox_offset(&h, &hdr_path)?;
    let (data_path, values) = if h.single_file {
        let min = h.size() as u64 + 4;
        if offset < min {
            warnings.push(format!(
                "vox_offset {offset} is inside the header; reading voxels from byte {min}"
            ));
            offset = min;
        }
        let start = (offset as usize).min(head.len());
        let pre = &head[start..];
        skip(&mut hr, offset - start as u64, &hdr_path, offset)?;
        let values = read_values(&mut pre.chain(hr), &h, &layout, &hdr_path)?;
        (hdr_path.clone(), values)
    } else {
        let img = image_path(&hdr_path)?;
        let mut ir = open_stream(&img)?;
        skip(&mut ir, offset, &img, offset)?;
        let values = read_values(&mut ir, &h, &layout, &img)?;
        (img, values)
    };

    let [x, y, z] = layout.xyz;
    let data = Array4::from_shape_vec((layout.channels, z, y, x), values)
        .map_err(|e| Error::format(&data_path, format!("voxel array shape: {e}")))?;
    let geometry = geometry::from_header(&h, &mut warnings);

    let mut meta = VolumeMeta::new(path, SourceFormat::Nifti, layout.dtype.original());
    meta.description = description(&h);
    if let Some(names) = layout.dtype.channel_names() {
        meta.channel_names = names.iter().map(|s| s.to_string()).collect();
    }
    let slice_dim = (h.dim_info >> 4) & 3;
    meta.acquisition_axis = if slice_dim > 0 {
        slice_dim as usize - 1
    } else {
        2
    };
    meta.warnings = warnings;
    Ok(Volume {
        data,
        geometry,
        meta,
    })
}

/// `descrip`, with `intent_name` appended when set (VolumeMeta has no field of its own for it).
fn description(h: &Header) -> Option<String> {
    match (h.descrip.is_empty(), h.intent_name.is_empty()) {
        (true, true) => None,
        (false, true) => Some(h.descrip.clone()),
        (true, false) => Some(format!("[intent: {}]", h.intent_name)),
        (false, false) => Some(format!("{} [intent: {}]", h.descrip, h.intent_name)),
    }
}

/// On-disk sample types we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    Rgb24,
    Rgba32,
}

impl Sample {
    fn from_code(code: i16, path: &Path) -> Result<Sample> {
        Ok(match code {
            2 => Sample::U8,
            256 => Sample::I8,
            4 => Sample::I16,
            512 => Sample::U16,
            8 => Sample::I32,
            768 => Sample::U32,
            1024 => Sample::I64,
            1280 => Sample::U64,
            16 => Sample::F32,
            64 => Sample::F64,
            128 => Sample::Rgb24,
            2304 => Sample::Rgba32,
            32 | 1792 | 2048 => {
                return Err(Error::unsupported(
                    path,
                    format!("complex voxel data (NIfTI datatype {code})"),
                ))
            }
            1 => {
                return Err(Error::unsupported(
                    path,
                    "1-bit voxel data (NIfTI datatype 1)",
                ))
            }
            1536 => {
                return Err(Error::unsupported(
                    path,
                    "128-bit float voxel data (NIfTI datatype 1536)",
                ))
            }
            _ => {
                return Err(Error::format(
                    path,
                    format!("unknown NIfTI datatype {code}"),
                ))
            }
        })
    }

    /// Bytes of one stored value (one colour component for RGB).
    fn size(self) -> usize {
        match self {
            Sample::U8 | Sample::I8 | Sample::Rgb24 | Sample::Rgba32 => 1,
            Sample::I16 | Sample::U16 => 2,
            Sample::I32 | Sample::U32 | Sample::F32 => 4,
            Sample::I64 | Sample::U64 | Sample::F64 => 8,
        }
    }

    /// Interleaved components per voxel (colour types only).
    fn components(self) -> usize {
        match self {
            Sample::Rgb24 => 3,
            Sample::Rgba32 => 4,
            _ => 1,
        }
    }

    fn original(self) -> DType {
        match self {
            Sample::U8 | Sample::Rgb24 | Sample::Rgba32 => DType::U8,
            Sample::I8 => DType::I8,
            Sample::I16 => DType::I16,
            Sample::U16 => DType::U16,
            Sample::I32 => DType::I32,
            Sample::U32 => DType::U32,
            Sample::I64 => DType::I64,
            Sample::U64 => DType::U64,
            Sample::F32 => DType::F32,
            Sample::F64 => DType::F64,
        }
    }

    fn channel_names(self) -> Option<&'static [&'static str]> {
        match self {
            Sample::Rgb24 => Some(&["R", "G", "B"]),
            Sample::Rgba32 => Some(&["R", "G", "B", "A"]),
            _ => None,
        }
    }
}

/// The validated shape of the voxel data.
struct Layout {
    /// Spatial size (x, y, z).
    xyz: [usize; 3],
    /// Output channels (4th+ dimension, or colour components).
    channels: usize,
    dtype: Sample,
    /// Stored values in total (voxels × 4th-dim × components).
    values: usize,
}

impl Layout {
    fn new(h: &Header, path: &Path, options: &ReadOptions) -> Result<Layout> {
        let dtype = Sample::from_code(h.datatype, path)?;
        let ndim = h.dim[0];
        if !(1..=7).contains(&ndim) {
            return Err(Error::format(
                path,
                format!("dim[0] is {ndim} (expected 1 to 7)"),
            ));
        }
        let ndim = ndim as usize;
        let mut dims = [1u64; 7];
        for (i, slot) in dims.iter_mut().enumerate().take(ndim) {
            let d = h.dim[i + 1];
            if d <= 0 {
                return Err(Error::format(
                    path,
                    format!("dim[{}] is {d} (must be positive)", i + 1),
                ));
            }
            *slot = d as u64;
        }
        let extra: Vec<u64> = dims[3..].iter().copied().filter(|&d| d > 1).collect();
        if extra.len() > 1 {
            return Err(Error::unsupported(
                path,
                format!(
                    "{ndim}-D image with dimensions {:?}: only one dimension beyond the 3rd can become channels",
                    &dims[..ndim]
                ),
            ));
        }
        let frames = extra.first().copied().unwrap_or(1);
        let comps = dtype.components() as u64;
        if comps > 1 && frames > 1 {
            return Err(Error::unsupported(
                path,
                "colour data with more than one volume (4th dimension)",
            ));
        }
        let channels = frames * comps;
        let values = options.check_size(path, &[channels, dims[2], dims[1], dims[0]])?;
        // check_size bounds the f32 array; the raw bytes are at most 8× as many.
        values
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::too_large(path, "voxel data size overflows"))?;
        let usz =
            |v: u64| usize::try_from(v).map_err(|_| Error::too_large(path, "dimension too large"));
        Ok(Layout {
            xyz: [usz(dims[0])?, usz(dims[1])?, usz(dims[2])?],
            channels: usz(channels)?,
            dtype,
            values,
        })
    }
}

fn vox_offset(h: &Header, path: &Path) -> Result<u64> {
    let o = h.vox_offset;
    if !o.is_finite() || o < 0.0 || o > (1u64 << 53) as f64 {
        return Err(Error::format(path, format!("invalid vox_offset {o}")));
    }
    Ok(o as u64)
}

/// The header file for `path`: itself, or the `.hdr` next to a given `.img`.
fn header_path(path: &Path) -> Result<PathBuf> {
    let (stem, ext, gz) = split_name(path);
    if !ext.eq_ignore_ascii_case("img") {
        return Ok(path.to_path_buf());
    }
    sibling(path, &stem, &["hdr", "HDR"], gz).ok_or_else(|| {
        Error::format(
            path,
            format!("no header file ({stem}.hdr) next to this image file"),
        )
    })
}

/// The `.img` file holding the voxels of a pair whose header is `hdr`.
fn image_path(hdr: &Path) -> Result<PathBuf> {
    let (stem, ext, gz) = split_name(hdr);
    if ext.eq_ignore_ascii_case("img") {
        return Ok(hdr.to_path_buf());
    }
    sibling(hdr, &stem, &["img", "IMG"], gz).ok_or_else(|| {
        Error::format(
            hdr,
            format!("header of a .hdr/.img pair, but its image file {stem}.img is missing"),
        )
    })
}

/// (stem, last extension without `.gz`, whether it ended in `.gz`).
fn split_name(path: &Path) -> (String, String, bool) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let (base, gz) = if lower.ends_with(".gz") {
        (&name[..name.len() - 3], true)
    } else {
        (&name[..], false)
    };
    match base.rfind('.') {
        Some(i) => (base[..i].to_string(), base[i + 1..].to_string(), gz),
        None => (base.to_string(), String::new(), gz),
    }
}

fn sibling(path: &Path, stem: &str, exts: &[&str], gz_first: bool) -> Option<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut names = Vec::new();
    for gz in [gz_first, !gz_first] {
        for e in exts {
            names.push(if gz {
                format!("{stem}.{e}.gz")
            } else {
                format!("{stem}.{e}")
            });
        }
    }
    names.into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Opens a file, transparently decompressing gzip (detected from its first bytes, not its name).
fn open_stream(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut r = BufReader::with_capacity(1 << 18, f);
    let head = r.fill_buf().map_err(|e| Error::io("read", path, e))?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// An I/O error while reading: corrupt compressed data is a format error, the rest I/O errors.
fn read_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            Error::format(path, format!("corrupt or truncated data: {e}"))
        }
        _ => Error::io("read", path, e),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8], path: &Path) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(path, e)),
        }
    }
    Ok(n)
}

fn read_up_to(r: &mut dyn Read, n: usize, path: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let got = fill(r, &mut buf, path)?;
    buf.truncate(got);
    Ok(buf)
}

/// Skips `n` bytes; fewer available means `vox_offset` points beyond the file.
fn skip(r: &mut dyn Read, n: u64, path: &Path, offset: u64) -> Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink()).map_err(|e| read_error(path, e))?;
    if got < n {
        return Err(Error::format(
            path,
            format!("vox_offset {offset} is beyond the end of the file"),
        ));
    }
    Ok(())
}

/// Reads `layout.values` samples and converts them to f32 (scaled), in chunks, straight into the
/// output order (colour components de-interleaved into channels).
fn read_values(r: &mut dyn Read, h: &Header, layout: &Layout, path: &Path) -> Result<Vec<f32>> {
    let size = layout.dtype.size();
    let total_bytes = layout.values * size;
    let scale = if h.scl_slope != 0.0 && h.scl_slope.is_finite() && layout.dtype.components() == 1 {
        let inter = if h.scl_inter.is_finite() {
            h.scl_inter
        } else {
            0.0
        };
        if h.scl_slope == 1.0 && inter == 0.0 {
            None
        } else {
            Some((h.scl_slope, inter))
        }
    } else {
        None
    };
    let mut out: Vec<f32> = Vec::with_capacity(layout.values);
    let chunk = (1usize << 18) / size * size;
    let mut buf = vec![0u8; chunk.min(total_bytes.max(size))];
    let mut done = 0usize;
    while done < total_bytes {
        let want = (total_bytes - done).min(buf.len());
        let got = fill(r, &mut buf[..want], path)?;
        if got < want {
            return Err(Error::format(
                path,
                format!(
                    "truncated voxel data: expected {total_bytes} bytes, found {}",
                    done + got
                ),
            ));
        }
        convert(&buf[..want], layout.dtype, h.big_endian, scale, &mut out);
        done += want;
    }
    let comps = layout.dtype.components();
    if comps > 1 {
        let n = out.len() / comps;
        let mut planar = Vec::with_capacity(out.len());
        for c in 0..comps {
            planar.extend(out.iter().skip(c).step_by(comps));
        }
        debug_assert_eq!(planar.len(), n * comps);
        out = planar;
    }
    Ok(out)
}

/// Appends `bytes` decoded as `dtype` to `out`, applying `scale` (slope, intercept) in f64.
fn convert(bytes: &[u8], dtype: Sample, be: bool, scale: Option<(f64, f64)>, out: &mut Vec<f32>) {
    fn run<const N: usize>(
        bytes: &[u8],
        be: bool,
        scale: Option<(f64, f64)>,
        out: &mut Vec<f32>,
        f: impl Fn([u8; N]) -> f64,
    ) {
        let get = |c: &[u8]| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            if be {
                a.reverse();
            }
            f(a)
        };
        let it = bytes.chunks_exact(N);
        match scale {
            None => out.extend(it.map(|c| get(c) as f32)),
            Some((s, i)) => out.extend(it.map(|c| (get(c) * s + i) as f32)),
        }
    }
    match dtype {
        Sample::U8 | Sample::Rgb24 | Sample::Rgba32 => {
            run::<1>(bytes, be, scale, out, |a| a[0] as f64)
        }
        Sample::I8 => run::<1>(bytes, be, scale, out, |a| a[0] as i8 as f64),
        Sample::I16 => run::<2>(bytes, be, scale, out, |a| i16::from_le_bytes(a) as f64),
        Sample::U16 => run::<2>(bytes, be, scale, out, |a| u16::from_le_bytes(a) as f64),
        Sample::I32 => run::<4>(bytes, be, scale, out, |a| i32::from_le_bytes(a) as f64),
        Sample::U32 => run::<4>(bytes, be, scale, out, |a| u32::from_le_bytes(a) as f64),
        Sample::I64 => run::<8>(bytes, be, scale, out, |a| i64::from_le_bytes(a) as f64),
        Sample::U64 => run::<8>(bytes, be, scale, out, |a| u64::from_le_bytes(a) as f64),
        Sample::F32 => run::<4>(bytes, be, scale, out, |a| f32::from_le_bytes(a) as f64),
        Sample::F64 => run::<8>(bytes, be, scale, out, f64::from_le_bytes),
    }
}
