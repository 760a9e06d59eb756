//! Decoding one TIFF file (single image or multi-page stack) into `f32` pages.
//!
//! Every page becomes one z slice. The `tiff` crate does the decompression and predictors (LZMA
//! and JPEG 2000 chunks go through [`super::codecs`] instead); this module adds what it leaves to the caller: all planes of planar-separate images, unpacking of
//! sub-byte samples, dropping alpha, page-to-page consistency and the size limit.

use std::fs::File;
use std::io::BufReader;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ::tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::{ColorType, TiffError};

use super::codecs::tiff_error;
use crate::error::{Error, Result};
use crate::volume::{DType, ReadOptions};

/// The decoded pages of one file, in file order.
#[derive(Debug)]
pub(crate) struct Stack {
    pub width: usize,
    pub height: usize,
    /// Channels kept per page (alpha dropped).
    pub channels: usize,
    pub pages: usize,
    pub dtype: DType,
    /// True for RGB(A) photometric interpretation.
    pub rgb: bool,
    /// Samples, `[page][channel][y][x]`.
    pub data: Vec<f32>,
    pub warnings: Vec<String>,
    /// Tags of the first page used for geometry.
    pub description: Option<String>,
    pub x_resolution: Option<f64>,
    pub y_resolution: Option<f64>,
    pub resolution_unit: Option<u16>,
}

/// Shape and type of one page, compared across pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageKind {
    width: usize,
    height: usize,
    channels: usize,
    dtype: DType,
    rgb: bool,
}

/// Decodes every full-resolution page of `path`.
pub(crate) fn read_stack(path: &Path, options: &ReadOptions) -> Result<Stack> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut limits = Limits::default();
    // Our own limit is checked before each page; let the crate allocate up to it (8 bytes per
    // value covers f64/u64 samples).
    limits.decoding_buffer_size = usize::try_from(options.max_values.saturating_mul(8))
        .unwrap_or(usize::MAX)
        .max(1 << 20);
    let mut dec = guard(path, || Decoder::new(BufReader::new(file)))?.with_limits(limits);

    let mut stack: Option<(PageKind, Stack)> = None;
    let mut index = 0usize;
    loop {
        let subfile = dec
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .map_err(|e| tiff_error(path, e))?
            .unwrap_or(0);
        // Reduced-resolution copies (thumbnails, pyramid levels) are not slices.
        if subfile & 1 == 0 {
            let z = stack.as_ref().map_or(0, |(_, s)| s.pages);
            let page = decode_page(&mut dec, path, index, z, options)?;
            match &mut stack {
                None => {
                    let description = dec
                        .find_tag(Tag::ImageDescription)
                        .ok()
                        .flatten()
                        .and_then(|v| v.into_string().ok());
                    let x_resolution = rational(&mut dec, Tag::XResolution);
                    let y_resolution = rational(&mut dec, Tag::YResolution);
                    let resolution_unit = dec
                        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
                        .ok()
                        .flatten();
                    stack = Some((
                        page.kind,
                        Stack {
                            width: page.kind.width,
                            height: page.kind.height,
                            channels: page.kind.channels,
                            pages: 1,
                            dtype: page.kind.dtype,
                            rgb: page.kind.rgb,
                            data: page.data,
                            warnings: page.warnings,
                            description,
                            x_resolution,
                            y_resolution,
                            resolution_unit,
                        },
                    ));
                }
                Some((kind, s)) => {
                    if page.kind != *kind {
                        return Err(Error::format(
                            path,
                            format!(
                                "page {index} is {} but page 0 is {}; all pages of a stack must have \
                                 the same size, channels and sample format",
                                describe(&page.kind),
                                describe(kind)
                            ),
                        ));
                    }
                    s.data.extend_from_slice(&page.data);
                    s.pages += 1;
                }
            }
        }
        if !dec.more_images() {
            break;
        }
        guard(path, || dec.next_image())?;
        index += 1;
    }
    stack
        .map(|(_, s)| s)
        .ok_or_else(|| Error::format(path, "TIFF holds no full-resolution image"))
}

fn describe(k: &PageKind) -> String {
    format!(
        "{}x{} {:?} with {} channel(s)",
        k.width, k.height, k.dtype, k.channels
    )
}

fn rational<R: std::io::Read + std::io::Seek>(dec: &mut Decoder<R>, tag: Tag) -> Option<f64> {
    use ::tiff::decoder::ifd::Value;
    match dec.find_tag(tag).ok().flatten()? {
        Value::Rational(n, d) if d != 0 => Some(n as f64 / d as f64),
        Value::Float(f) => Some(f as f64),
        Value::Double(f) => Some(f),
        Value::List(v) => match v.first() {
            Some(Value::Rational(n, d)) if *d != 0 => Some(*n as f64 / *d as f64),
            _ => None,
        },
        _ => None,
    }
    .filter(|v| v.is_finite() && *v > 0.0)
}

/// Runs a crate call that may panic on malformed input (the decoder has `assert!`s and
/// `unreachable!`s on layout assumptions) and turns both errors and panics into our errors.
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, TiffError>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| tiff_error(path, e)),
        Err(p) => Err(Error::format(
            path,
            format!(
                "malformed TIFF (the decoder rejected its layout: {})",
                crate::error::caught_panic_message(p)
            ),
        )),
    }
}

struct Page {
    kind: PageKind,
    data: Vec<f32>,
    warnings: Vec<String>,
}

fn dtype_of(path: &Path, format: u16, bits: u8) -> Result<DType> {
    Ok(match (format, bits) {
        (1, 1) => DType::Bool,
        (1, 2..=8) => DType::U8,
        (1, 9..=16) => DType::U16,
        (1, 17..=32) => DType::U32,
        (1, 33..=64) => DType::U64,
        (2, 1..=8) => DType::I8,
        (2, 9..=16) => DType::I16,
        (2, 17..=32) => DType::I32,
        (2, 33..=64) => DType::I64,
        (3, 16 | 32) => DType::F32,
        (3, 64) => DType::F64,
        _ => {
            return Err(Error::unsupported(
                path,
                format!("TIFF sample format {format} with {bits} bits per sample"),
            ))
        }
    })
}

/// Decodes the decoder's current page (`index` in the file, slice `z` of the volume).
fn decode_page<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    index: usize,
    z: usize,
    options: &ReadOptions,
) -> Result<Page> {
    let page_err = |e: Error| match e {
        Error::Format {
            path,
            message,
            source,
        } => Error::Format {
            path,
            message: format!("page {index}: {message}"),
            source,
        },
        Error::Unsupported { path, message } => Error::Unsupported {
            path,
            message: format!("page {index}: {message}"),
        },
        other => other,
    };
    decode_page_inner(dec, path, z, options).map_err(page_err)
}

/// The body of [`decode_page`], which prefixes its format and unsupported-feature errors with
/// the page index.
fn decode_page_inner<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    z: usize,
    options: &ReadOptions,
) -> Result<Page> {
    refuse_unsupported(dec, path)?;
    let tags = read_page_tags(dec, path, z, options)?;
    let mut buf = DecodingResult::U8(Vec::new());
    let (out_samples, row_stride, plane_stride) = read_samples(dec, path, &mut buf, &tags)?;
    let mut warnings = Vec::new();
    let (keep, rgb) = kept_channels(path, &tags, out_samples, &mut warnings)?;
    let geo = Grid {
        w: tags.w,
        h: tags.h,
        keep,
        spp: if tags.planar { 1 } else { out_samples },
        planar: tags.planar,
        row: row_stride,
        plane: plane_stride,
        elem: element_size(&buf),
    };
    let mut data = Vec::with_capacity(keep * tags.w * tags.h);
    if !convert_samples(&geo, &buf, tags.bits, &mut data) {
        return Err(Error::format(
            path,
            "decoded image is smaller than its header says",
        ));
    }
    if matches!(tags.color, ColorType::YCbCr(8)) {
        ycbcr_to_rgb(&mut data, tags.w * tags.h);
    }
    Ok(Page {
        kind: PageKind {
            width: tags.w,
            height: tags.h,
            channels: keep,
            dtype: tags.dtype,
            rgb,
        },
        data,
        warnings,
    })
}

/// A u16 tag of the current page, naming the file on error.
fn tag_u16<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    tag: Tag,
) -> Result<Option<u16>> {
    dec.find_tag_unsigned::<u16>(tag)
        .map_err(|e| tiff_error(path, e))
}

/// Refuses, from the tags alone, the colour models and compressions we do not decode, with a
/// message that says what the page is.
fn refuse_unsupported<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
) -> Result<()> {
    let photometric = tag_u16(dec, path, Tag::PhotometricInterpretation)?;
    let compression = tag_u16(dec, path, Tag::Compression)?.unwrap_or(1);
    match photometric {
        Some(3) => {
            return Err(Error::unsupported(
                path,
                "palette-colour TIFF (PhotometricInterpretation 3); convert it to grayscale or RGB",
            ))
        }
        // JPEG-compressed YCbCr is decoded (the JPEG codec upsamples the chroma); raw YCbCr
        // with its subsampled layout is not.
        Some(6) if compression != 7 => {
            return Err(Error::unsupported(
                path,
                "YCbCr TIFF without JPEG compression (PhotometricInterpretation 6)",
            ))
        }
        _ => {}
    }
    if let Some(name) = undecodable_compression(compression) {
        return Err(Error::unsupported(
            path,
            format!(
                "{name}-compressed TIFF (Compression {compression}): no decoder for it here; save \
                 it uncompressed or with LZW or deflate"
            ),
        ));
    }
    Ok(())
}

/// The name of a TIFF compression neither the `tiff` crate (as built here, with zstd) nor our
/// [`super::codecs`] (LZMA, JPEG 2000) decodes.
fn undecodable_compression(code: u16) -> Option<&'static str> {
    Some(match code {
        2 => "CCITT modified Huffman",
        3 => "CCITT Group 3 fax",
        6 => "old-style JPEG",
        34887 => "LERC",
        34892 => "lossy JPEG (DNG)",
        34927 | 50001 => "WebP",
        34933 => "PNG",
        34934 => "JPEG XR",
        50002 => "JPEG XL",
        _ => return None,
    })
}

/// What the tags of a page say about its samples.
struct PageTags {
    w: usize,
    h: usize,
    color: ColorType,
    /// Bits per sample.
    bits: u8,
    dtype: DType,
    /// SamplesPerPixel as stored (at least 1).
    spp: usize,
    /// Number of ExtraSamples (alpha and other non-colour samples).
    extra: usize,
    /// PlanarConfiguration 2: each sample in its own plane.
    planar: bool,
    /// The Compression tag (1 when absent).
    compression: u16,
}

/// Reads the shape and sample tags of the current page and checks the page, and the stack of
/// `z` pages before it plus this one, against the size limit before anything is decoded.
fn read_page_tags<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    z: usize,
    options: &ReadOptions,
) -> Result<PageTags> {
    let (w, h) = guard(path, || dec.dimensions())?;
    if w == 0 || h == 0 {
        return Err(Error::format(path, format!("image size {w}x{h}")));
    }
    let color = guard(path, || dec.colortype())?;
    let bits = color.bit_depth();
    let format = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(|e| tiff_error(path, e))?
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let dtype = dtype_of(path, format, bits)?;
    let spp = usize::from(
        tag_u16(dec, path, Tag::SamplesPerPixel)?
            .unwrap_or(1)
            .max(1),
    );
    let extra = dec
        .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
        .map_err(|e| tiff_error(path, e))?
        .map_or(0, |v| v.len());
    let planar = tag_u16(dec, path, Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
    let compression = tag_u16(dec, path, Tag::Compression)?.unwrap_or(1);
    let (w, h) = (w as usize, h as usize);
    // The raw samples of the page and our output for the whole stack so far must fit the limit.
    options.check_size(path, &[spp as u64, h as u64, w as u64])?;
    options.check_size(path, &[spp as u64, z as u64 + 1, h as u64, w as u64])?;
    Ok(PageTags {
        w,
        h,
        color,
        bits,
        dtype,
        spp,
        extra,
        planar,
        compression,
    })
}

/// Decodes the page's samples into `buf`; returns (samples per pixel in the buffer, row stride,
/// plane stride), strides in bytes.
fn read_samples<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    buf: &mut DecodingResult,
    t: &PageTags,
) -> Result<(usize, usize, usize)> {
    if super::codecs::decodes(t.compression) {
        let page = super::codecs::Page {
            w: t.w,
            h: t.h,
            spp: t.spp,
            bits: t.bits,
            dtype: t.dtype,
            planar: t.planar,
            compression: t.compression,
        };
        return super::codecs::read(dec, path, buf, &page);
    }
    // `read_tiles` copies whole bytes, so packed sub-byte tiles take the whole-image read.
    let tiled = dec.get_chunk_type() == ChunkType::Tile && t.bits >= 8;
    if tiled {
        return read_tiles(dec, path, buf, t.w, t.h, t.spp, t.planar, t.color);
    }
    let layout = guard(path, || dec.read_image_to_buffer(buf))?;
    let read_bytes = buf.as_buffer(0).byte_len();
    if read_bytes < layout.complete_len {
        return Err(Error::too_large(
            path,
            "not all planes of a planar-separate image fit the decoding limit",
        ));
    }
    // Samples per pixel in the decoded buffer (the crate drops extra samples beyond RGBA).
    let out_samples = if t.planar {
        layout.planes
    } else {
        usize::from(t.color.num_samples())
    };
    Ok((
        out_samples,
        layout.row_stride.map_or(0, |n| n.get()),
        layout.plane_stride.map_or(0, |n| n.get()),
    ))
}

/// The channels a page keeps (alpha and other extra samples dropped, with a warning) and whether
/// they are RGB; checks that the decoded buffer holds that many samples per pixel.
fn kept_channels(
    path: &Path,
    t: &PageTags,
    out_samples: usize,
    warnings: &mut Vec<String>,
) -> Result<(usize, bool)> {
    let (keep, rgb) = match t.color {
        ColorType::RGB(_) => (3, true),
        ColorType::RGBA(_) => {
            warnings.push("alpha channel dropped".to_string());
            (3, true)
        }
        ColorType::Gray(_) => (1, false),
        // Only JPEG-compressed YCbCr gets here (see refuse_unsupported); it becomes RGB.
        ColorType::YCbCr(8) => (3, true),
        ColorType::Multiband { .. } if t.extra > 0 && t.extra < t.spp => {
            warnings.push(format!("{} extra (alpha) sample(s) dropped", t.extra));
            (t.spp - t.extra, false)
        }
        ColorType::Multiband { .. } => (out_samples, false),
        other => {
            return Err(Error::unsupported(
                path,
                format!("TIFF colour type {other:?}"),
            ))
        }
    };
    if keep > out_samples {
        return Err(Error::format(
            path,
            format!("{out_samples} decoded samples per pixel, expected at least {keep}"),
        ));
    }
    Ok((keep, rgb))
}

/// JFIF's full-range YCbCr → RGB (what libjpeg, and so tifffile, applies to JPEG-compressed
/// YCbCr TIFF), in place on `[c][y][x]` 8-bit samples, rounded and clipped to 0..=255.
fn ycbcr_to_rgb(data: &mut [f32], pixels: usize) {
    let (y, rest) = data.split_at_mut(pixels);
    let (cb, cr) = rest.split_at_mut(pixels);
    for p in 0..pixels {
        let (l, b, r) = (y[p], cb[p] - 128.0, cr[p] - 128.0);
        let px = |v: f32| v.round().clamp(0.0, 255.0);
        (y[p], cb[p], cr[p]) = (
            px(l + 1.402 * r),
            px(l - 0.344_136 * b - 0.714_136 * r),
            px(l + 1.772 * b),
        );
    }
}

/// Bytes per sample in the decoded buffer.
fn element_size(buf: &DecodingResult) -> usize {
    match buf {
        DecodingResult::U8(_) | DecodingResult::I8(_) => 1,
        DecodingResult::U16(_) | DecodingResult::I16(_) | DecodingResult::F16(_) => 2,
        DecodingResult::U32(_) | DecodingResult::I32(_) | DecodingResult::F32(_) => 4,
        _ => 8,
    }
}

/// Appends the kept samples of `buf` to `data` as `f32`, channel-major, through the gather for
/// its sample type; false when the buffer is shorter than `geo` says.
fn convert_samples(geo: &Grid, buf: &DecodingResult, bits: u8, data: &mut Vec<f32>) -> bool {
    if bits < 8 {
        match buf {
            DecodingResult::U8(v) => geo.unpack_bits(v, bits, data),
            _ => false,
        }
    } else {
        match buf {
            DecodingResult::U8(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::I8(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::U16(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::I16(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::U32(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::I32(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::U64(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::I64(v) => geo.gather(v, |x| x as f32, data),
            DecodingResult::F16(v) => geo.gather(v, |x| x.to_f32(), data),
            DecodingResult::F32(v) => geo.gather(v, |x| x, data),
            DecodingResult::F64(v) => geo.gather(v, |x| x as f32, data),
        }
    }
}

/// Where the samples of a decoded page lie in the crate's buffer (strides in bytes).
struct Grid {
    w: usize,
    h: usize,
    keep: usize,
    /// Interleaved samples per pixel (1 for planar).
    spp: usize,
    planar: bool,
    row: usize,
    plane: usize,
    elem: usize,
}

impl Grid {
    /// Byte offset of the first sample of channel `c`, row `y`.
    fn row_start(&self, c: usize, y: usize) -> usize {
        if self.planar {
            c * self.plane + y * self.row
        } else {
            y * self.row
        }
    }

    /// Appends channel-major samples; false when the buffer is too short.
    fn gather<T: Copy>(&self, src: &[T], conv: impl Fn(T) -> f32, out: &mut Vec<f32>) -> bool {
        for c in 0..self.keep {
            for y in 0..self.h {
                let start = self.row_start(c, y) / self.elem + if self.planar { 0 } else { c };
                for x in 0..self.w {
                    match src.get(start + x * self.spp) {
                        Some(&v) => out.push(conv(v)),
                        None => return false,
                    }
                }
            }
        }
        true
    }

    /// Like `gather` for packed samples of fewer than 8 bits (MSB first, rows byte-aligned).
    fn unpack_bits(&self, src: &[u8], bits: u8, out: &mut Vec<f32>) -> bool {
        let bits = usize::from(bits);
        let mask = (1u16 << bits) - 1;
        for c in 0..self.keep {
            for y in 0..self.h {
                let start = self.row_start(c, y);
                for x in 0..self.w {
                    let bit = (x * self.spp + if self.planar { 0 } else { c }) * bits;
                    let Some(&byte) = src.get(start + bit / 8) else {
                        return false;
                    };
                    let shift = 8 - bits - bit % 8;
                    out.push(((u16::from(byte) >> shift) & mask) as f32);
                }
            }
        }
        true
    }
}

/// Reads a tiled page tile by tile into `buf` laid out as the whole image; returns (samples per
/// pixel in the buffer, row stride, plane stride) in bytes.
///
/// The crate's whole-image read decodes partial edge tiles row by row, and its LZW reader then
/// fails ("no lzw end code found") on tiles tifffile writes. Reading each tile whole, into a
/// buffer whose row stride is the tile's, takes the crate's single-read path, which works.
#[allow(clippy::too_many_arguments)]
fn read_tiles<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    buf: &mut DecodingResult,
    w: usize,
    h: usize,
    spp: usize,
    planar: bool,
    color: ColorType,
) -> Result<(usize, usize, usize)> {
    let bad = |m: &str| Error::format(path, m.to_string());
    let chunk_spp = if planar {
        1
    } else {
        usize::from(color.num_samples())
    };
    let planes = if planar { spp } else { 1 };
    let elem = usize::from(color.bit_depth()) / 8;
    let (tw, th) = guard(path, || Ok(dec.chunk_dimensions()))?;
    let (tw, th) = (tw as usize, th as usize);
    if tw == 0 || th == 0 {
        return Err(bad("tile size 0"));
    }
    let across = w.div_ceil(tw);
    let per_plane = across * h.div_ceil(th);
    let count = guard(path, || dec.tile_count())? as usize;
    if count < per_plane * planes {
        return Err(bad("fewer tiles than the image size needs"));
    }
    let row = w * chunk_spp * elem;
    let plane = row * h;
    let tile_row = tw * chunk_spp * elem;
    let layout = guard(path, || dec.image_buffer_layout())?;
    guard(path, || buf.resize_to(&layout, &Limits::unlimited()))?;
    let mut tile = DecodingResult::U8(Vec::new());
    for i in 0..per_plane * planes {
        let idx = i as u32;
        let (dw, dh) = guard(path, || Ok(dec.chunk_data_dimensions(idx)))?;
        guard(path, || dec.read_chunk_to_buffer(&mut tile, idx, tile_row))?;
        let (p, t) = (i / per_plane, i % per_plane);
        let (tx, ty) = (t % across, t / across);
        let src = tile.as_buffer(0);
        let src = src.as_bytes();
        let mut dst = buf.as_buffer(0);
        let dst = dst.as_bytes_mut();
        let n = dw as usize * chunk_spp * elem;
        for r in 0..dh as usize {
            let s0 = r * tile_row;
            let d0 = p * plane + (ty * th + r) * row + tx * tw * chunk_spp * elem;
            match (src.get(s0..s0 + n), dst.get_mut(d0..d0 + n)) {
                (Some(s), Some(d)) => d.copy_from_slice(s),
                _ => return Err(bad("tile data does not fit the image")),
            }
        }
    }
    Ok((if planar { planes } else { chunk_spp }, row, plane))
}
