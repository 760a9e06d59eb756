//! TIFF compressions the `tiff` crate does not decode, which tifffile (through imagecodecs)
//! reads: LZMA (34925, an xz stream per chunk, as libtiff writes it) and JPEG 2000 (34712, and
//! Aperio's 33003 / 33005: a codestream per chunk). Each strip or tile is read raw and decoded
//! here (TIFF's horizontal predictor undone for integer samples), bounded by the chunk size the
//! tags declare: the xz decoder under a memory limit and with its output cut at the chunk's
//! size, each JPEG 2000 codestream's SIZ checked against the chunk before openjp2 sees it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ::tiff::decoder::{ChunkType, Decoder, DecodingResult};
use ::tiff::tags::{ByteOrder, Tag};
use ::tiff::TiffError;

use crate::error::{Error, Result};
use crate::volume::{codestream, DType};

/// The memory the xz decoder may use (its dictionary): 64 MiB is xz's largest preset (-9).
const XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// Whether this module decodes TIFF compression `code`.
pub(crate) fn decodes(code: u16) -> bool {
    matches!(code, 34925 | 34712 | 33003 | 33005)
}

/// What a raw chunk read needs to know about the page.
pub(crate) struct Page {
    pub w: usize,
    pub h: usize,
    /// SamplesPerPixel.
    pub spp: usize,
    pub bits: u8,
    pub dtype: DType,
    pub planar: bool,
    pub compression: u16,
}

/// How the page's chunks are laid out.
struct Chunks {
    /// Chunk (strip or tile) width and height.
    cw: usize,
    ch: usize,
    tiled: bool,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// Decodes every chunk of the decoder's current page into `buf`, laid out as the whole image;
/// returns (samples per pixel in the buffer, row stride, plane stride) in bytes, as the `tiff`
/// crate's own reads do.
pub(crate) fn read<R: Read + Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    buf: &mut DecodingResult,
    p: &Page,
) -> Result<(usize, usize, usize)> {
    let predictor = dec
        .find_tag_unsigned::<u16>(Tag::Predictor)
        .map_err(|e| tiff_error(path, e))?
        .unwrap_or(1);
    let float = matches!(p.dtype, DType::F32 | DType::F64);
    let horizontal = predictor == 2 && !float;
    let bad_predictor = !(predictor == 1 || horizontal);
    if bad_predictor || !p.bits.is_multiple_of(8) || (float && p.bits == 16) {
        return Err(Error::unsupported(
            path,
            format!(
                "{} TIFF with predictor {predictor} and {}-bit samples",
                name(p.compression),
                p.bits
            ),
        ));
    }
    let chunks = layout(dec, path, p)?;
    let elem = usize::from(p.bits / 8);
    let (planes, chunk_spp) = if p.planar { (p.spp, 1) } else { (1, p.spp) };
    let row = p.w * chunk_spp * elem;
    let plane = row * p.h;
    let mut image = vec![0u8; plane * planes];
    let (across, down) = (p.w.div_ceil(chunks.cw), p.h.div_ceil(chunks.ch));
    let per_plane = across * down;
    if chunks.offsets.len() < per_plane * planes || chunks.counts.len() < chunks.offsets.len() {
        return Err(Error::format(
            path,
            "fewer chunks than the image size needs",
        ));
    }
    let file_len = dec
        .inner()
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io("read", path, e))?;
    let big_endian = dec.byte_order() == ByteOrder::BigEndian;
    for i in 0..per_plane * planes {
        let (pl, t) = (i / per_plane, i % per_plane);
        let (x0, y0) = ((t % across) * chunks.cw, (t / across) * chunks.ch);
        let (dw, dh) = ((p.w - x0).min(chunks.cw), (p.h - y0).min(chunks.ch));
        let raw = read_raw(dec, path, chunks.offsets[i], chunks.counts[i], file_len)?;
        let ctx = ChunkCtx {
            path,
            index: i,
            // Tiles are coded whole (padded); a strip holds only the rows it covers.
            coded: (chunks.cw, if chunks.tiled { chunks.ch } else { dh }),
            spp: chunk_spp,
            elem,
            bits: p.bits,
        };
        let (mut data, stride) = match p.compression {
            34925 => (xz(&ctx, &raw)?, ctx.coded.0 * chunk_spp * elem),
            _ => j2k(&ctx, &raw)?,
        };
        // xz output is in the file's byte order; openjp2's samples are written little-endian.
        if big_endian && p.compression == 34925 && elem > 1 {
            data.chunks_exact_mut(elem).for_each(|s| s.reverse());
        }
        if horizontal {
            undo_horizontal_differencing(&mut data, stride, chunk_spp, elem);
        }
        let n = dw * chunk_spp * elem;
        for r in 0..dh {
            let d0 = pl * plane + (y0 + r) * row + x0 * chunk_spp * elem;
            match data.get(r * stride..r * stride + n) {
                Some(s) => image[d0..d0 + n].copy_from_slice(s),
                None => return Err(Error::format(path, format!("chunk {i} decodes short"))),
            }
        }
    }
    *buf = typed(image, p.dtype);
    Ok((p.spp, row, plane))
}

/// TIFF predictor 2: each sample is stored as the difference from the same sample of the pixel
/// to its left, row by row (within the chunk), modulo its width. `data` holds little-endian
/// samples, `stride` bytes per row.
fn undo_horizontal_differencing(data: &mut [u8], stride: usize, spp: usize, elem: usize) {
    let step = spp * elem;
    for row in data.chunks_mut(stride) {
        for i in (step..row.len() - row.len() % elem).step_by(elem) {
            let (left, here) = row.split_at_mut(i);
            let prev = &left[i - step..i - step + elem];
            let mut carry = 0u16;
            for (b, &p) in here[..elem].iter_mut().zip(prev) {
                let sum = u16::from(*b) + u16::from(p) + carry;
                *b = sum as u8;
                carry = sum >> 8;
            }
        }
    }
}

fn name(compression: u16) -> &'static str {
    if compression == 34925 {
        "LZMA"
    } else {
        "JPEG 2000"
    }
}

/// The chunk size and the chunks' offsets and byte counts from the page's tags.
fn layout<R: Read + Seek>(dec: &mut Decoder<R>, path: &Path, p: &Page) -> Result<Chunks> {
    let tiled = dec.get_chunk_type() == ChunkType::Tile;
    let (off_tag, count_tag) = if tiled {
        (Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts)
    };
    let mut vec_tag = |tag| {
        dec.find_tag_unsigned_vec::<u64>(tag)
            .map_err(|e| tiff_error(path, e))?
            .ok_or_else(|| Error::format(path, format!("no {tag:?} tag")))
    };
    let offsets = vec_tag(off_tag)?;
    let counts = vec_tag(count_tag)?;
    let (cw, ch) = if tiled {
        let mut t = |tag| -> Result<usize> {
            dec.find_tag_unsigned::<u32>(tag)
                .map_err(|e| tiff_error(path, e))?
                .map(|v| v as usize)
                .ok_or_else(|| Error::format(path, format!("no {tag:?} tag")))
        };
        (t(Tag::TileWidth)?, t(Tag::TileLength)?)
    } else {
        let rps = dec
            .find_tag_unsigned::<u32>(Tag::RowsPerStrip)
            .map_err(|e| tiff_error(path, e))?
            .map_or(p.h, |v| v as usize);
        (p.w, rps.clamp(1, p.h))
    };
    // A tile larger than the image several times over is no real layout; it would only make
    // the decoders allocate for nothing.
    if cw == 0 || ch == 0 || cw > 4 * p.w.max(16) || ch > 4 * p.h.max(16) {
        return Err(Error::format(
            path,
            format!("chunk size {cw}x{ch} for a {}x{} image", p.w, p.h),
        ));
    }
    Ok(Chunks {
        cw,
        ch,
        tiled,
        offsets,
        counts,
    })
}

/// The raw bytes of one chunk, refused when they run past the end of the file.
fn read_raw<R: Read + Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    offset: u64,
    count: u64,
    file_len: u64,
) -> Result<Vec<u8>> {
    if offset.checked_add(count).is_none_or(|end| end > file_len) {
        return Err(Error::format(
            path,
            "a chunk runs past the end of the file (truncated?)",
        ));
    }
    let r = dec.inner();
    r.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io("read", path, e))?;
    let mut raw = vec![0u8; count as usize];
    r.read_exact(&mut raw)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(raw)
}

/// One chunk's place and sample format.
struct ChunkCtx<'a> {
    path: &'a Path,
    index: usize,
    /// The width and height the chunk is coded at.
    coded: (usize, usize),
    spp: usize,
    elem: usize,
    bits: u8,
}

impl ChunkCtx<'_> {
    fn bytes(&self) -> usize {
        self.coded.0 * self.coded.1 * self.spp * self.elem
    }
}

/// An xz (LZMA) chunk, its output cut at the chunk's size.
fn xz(c: &ChunkCtx, raw: &[u8]) -> Result<Vec<u8>> {
    let bad = |m: String| Error::format(c.path, format!("LZMA chunk {}: {m}", c.index));
    let stream = liblzma::stream::Stream::new_auto_decoder(XZ_MEMORY_LIMIT, 0)
        .map_err(|e| bad(e.to_string()))?;
    let want = c.bytes();
    let mut out = Vec::with_capacity(want);
    liblzma::read::XzDecoder::new_stream(raw, stream)
        .take(want as u64)
        .read_to_end(&mut out)
        .map_err(|e| bad(e.to_string()))?;
    if out.len() < want {
        return Err(bad(format!("{} bytes decoded, {want} expected", out.len())));
    }
    Ok(out)
}

/// A JPEG 2000 chunk: its SIZ checked against the chunk, then decoded by openjp2 into
/// little-endian interleaved samples; returns them and their row stride in bytes.
fn j2k(c: &ChunkCtx, raw: &[u8]) -> Result<(Vec<u8>, usize)> {
    let what = format!("the JPEG 2000 codestream of chunk {}", c.index);
    let want = (c.coded.0 as u64, c.coded.1 as u64, c.spp as u32);
    codestream::check(
        c.path,
        &what,
        codestream::j2k_declared(raw),
        want,
        u32::from(c.bits),
    )?;
    let decoded = std::panic::catch_unwind(|| jpeg2k::Image::from_bytes(raw));
    let image = match decoded {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Err(Error::format(c.path, format!("{what}: {e}"))),
        Err(_) => {
            return Err(Error::format(
                c.path,
                format!("{what}: the JPEG 2000 decoder failed (panicked)"),
            ))
        }
    };
    let comps = image.components();
    let pixels = c.coded.0 * c.coded.1;
    if comps.len() != c.spp || comps.iter().any(|k| k.data().len() != pixels) {
        return Err(Error::format(
            c.path,
            format!("{what} decodes to components of another size"),
        ));
    }
    let mut out = vec![0u8; pixels * c.spp * c.elem];
    for (k, comp) in comps.iter().enumerate() {
        for (i, v) in comp.data().iter().enumerate() {
            let at = (i * c.spp + k) * c.elem;
            out[at..at + c.elem].copy_from_slice(&v.to_le_bytes()[..c.elem]);
        }
    }
    Ok((out, c.coded.0 * c.spp * c.elem))
}

/// Little-endian sample bytes as the `tiff` crate's buffer of `dtype`.
fn typed(bytes: Vec<u8>, dtype: DType) -> DecodingResult {
    fn words<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().expect("N bytes")))
            .collect()
    }
    match dtype {
        DType::U16 => DecodingResult::U16(words(&bytes, u16::from_le_bytes)),
        DType::I16 => DecodingResult::I16(words(&bytes, i16::from_le_bytes)),
        DType::U32 => DecodingResult::U32(words(&bytes, u32::from_le_bytes)),
        DType::I32 => DecodingResult::I32(words(&bytes, i32::from_le_bytes)),
        DType::U64 => DecodingResult::U64(words(&bytes, u64::from_le_bytes)),
        DType::I64 => DecodingResult::I64(words(&bytes, i64::from_le_bytes)),
        DType::F32 => DecodingResult::F32(words(&bytes, f32::from_le_bytes)),
        DType::F64 => DecodingResult::F64(words(&bytes, f64::from_le_bytes)),
        DType::I8 => DecodingResult::I8(bytes.into_iter().map(|b| b as i8).collect()),
        _ => DecodingResult::U8(bytes),
    }
}

/// Maps a `tiff` crate error to ours, naming the file.
pub(crate) fn tiff_error(path: &Path, e: TiffError) -> Error {
    match e {
        TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, format!("truncated TIFF ({io})"))
        }
        // The codecs (LZW, deflate, JPEG) report corrupt data as I/O errors of these kinds: the
        // file is bad, not the disk.
        TiffError::IoError(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            ) =>
        {
            Error::format(path, format!("corrupt compressed TIFF data ({io})"))
        }
        TiffError::IoError(io) => Error::io("read", path, io),
        TiffError::FormatError(f) => Error::format(path, format!("invalid TIFF: {f}")),
        TiffError::UnsupportedError(u) => Error::unsupported(path, format!("TIFF feature: {u}")),
        TiffError::LimitsExceeded => Error::too_large(path, "TIFF exceeds the decoding limits"),
        other => Error::format(path, format!("invalid TIFF: {other}")),
    }
}
