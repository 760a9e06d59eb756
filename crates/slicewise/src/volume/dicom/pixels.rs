//! Decoding a file's pixel data into real-world values, frame by frame.
//!
//! Native (uncompressed) data is decoded here from the PixelData bytes, because dicom-pixeldata's
//! typed conversions reject 1-bit, 32-bit and planar-configuration-1 data. Encapsulated data goes
//! through `decode_pixel_data`, whose output is interleaved native samples.

use std::borrow::Cow;
use std::path::Path;

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_encoding::{TransferSyntax, TransferSyntaxIndex};
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{DecodedPixelData, PixelDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::scan::Header;
use crate::error::{Error, Result};

/// RLE Lossless, decoded by our own [`super::rle`].
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG Extended (process 2 & 4): its 12-bit variant has no Rust decoder.
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// How the stored samples of a file are laid out and turned into values.
struct Layout {
    rows_cols: usize,
    spp: usize,
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    planar: bool,
    monochrome1: bool,
}

impl Layout {
    /// The stored layout `h` declares (decoders that re-lay samples out adjust it).
    fn of(h: &Header) -> Layout {
        Layout {
            rows_cols: h.rows as usize * h.cols as usize,
            spp: h.samples_per_pixel as usize,
            bits_allocated: h.bits_allocated,
            bits_stored: h.bits_stored,
            signed: h.signed,
            planar: h.samples_per_pixel > 1 && h.planar_configuration == 1,
            monochrome1: h.photometric == "MONOCHROME1",
        }
    }

    /// Stored sample `idx` (within a frame's samples) as a number, sign- and MONOCHROME1-corrected.
    #[inline]
    fn sample(&self, frame: &[u8], bit_base: usize, idx: usize) -> f64 {
        let raw: u64 = match self.bits_allocated {
            1 => {
                let bit = bit_base + idx;
                ((frame[bit / 8] >> (bit % 8)) & 1) as u64
            }
            8 => frame[idx] as u64,
            16 => u16::from_le_bytes([frame[2 * idx], frame[2 * idx + 1]]) as u64,
            _ => u32::from_le_bytes([
                frame[4 * idx],
                frame[4 * idx + 1],
                frame[4 * idx + 2],
                frame[4 * idx + 3],
            ]) as u64,
        };
        let bs = self.bits_stored as u32;
        let mut v = if self.signed {
            let m = raw & ((1u64 << bs) - 1);
            if (m >> (bs - 1)) & 1 == 1 {
                m as i64 - (1i64 << bs)
            } else {
                m as i64
            }
        } else {
            raw as i64
        } as f64;
        if self.monochrome1 {
            let (lo, hi) = if self.signed {
                (
                    -((1i64 << (bs - 1)) as f64),
                    ((1i64 << (bs - 1)) - 1) as f64,
                )
            } else {
                (0.0, ((1u64 << bs) - 1) as f64)
            };
            v = lo + hi - v;
        }
        v
    }

    /// Fills `plane` (`[c][y][x]`) from a frame's stored samples with `slope`/`intercept`.
    fn frame(&self, frame: &[u8], bit_base: usize, slope: f64, intercept: f64, plane: &mut [f32]) {
        let rc = self.rows_cols;
        for s in 0..self.spp {
            for p in 0..rc {
                let idx = if self.planar {
                    s * rc + p
                } else {
                    p * self.spp + s
                };
                plane[s * rc + p] = (slope * self.sample(frame, bit_base, idx) + intercept) as f32;
            }
        }
    }
}

/// Decodes every frame of the file of `h`, calling `put(frame index, plane)` with the
/// `[c][y][x]` real-world values of each frame.
pub(crate) fn decode_file(
    h: &Header,
    mut put: impl FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    let path = h.path.as_path();
    let ts = TransferSyntaxRegistry
        .get(&h.ts_uid)
        .ok_or_else(|| Error::unsupported(path, format!("unknown transfer syntax {}", h.ts_uid)))?;
    check_decodable(h, ts)?;
    let (obj, _) = super::scan::open(path, false)?;
    let frames = h.number_of_frames as usize;
    let mut layout = Layout::of(h);
    let samples = layout.rows_cols * layout.spp;
    let mut plane = vec![0f32; samples];

    // The bytes are borrowed from whichever of these the transfer syntax needs.
    let decoded;
    let raw;
    let rle;
    let bytes: &[u8] = if h.ts_uid == RLE_LOSSLESS {
        rle = decode_rle(path, &obj, frames, &layout)?;
        layout.planar = false;
        &rle
    } else if ts.is_encapsulated_pixel_data() {
        decoded = decode_encapsulated(path, &obj, ts)?;
        // The codecs' output is interleaved, at the depth they decoded to.
        layout.bits_allocated = decoded.bits_allocated();
        layout.planar = false;
        if !matches!(layout.bits_allocated, 8 | 16 | 32) {
            return Err(unsupported_ts(h, ts));
        }
        decoded.data()
    } else {
        raw = native_bytes(path, &obj)?;
        &raw
    };
    let frame_bits = samples as u64 * layout.bits_allocated as u64;
    check_length(h, bytes.len(), frame_bits, layout.bits_allocated)?;
    for (f, info) in h.frames.iter().enumerate().take(frames) {
        // 1-bit frames are packed back to back without byte alignment.
        let (frame, bit_base) = if layout.bits_allocated == 1 {
            let start = (f as u64 * frame_bits) as usize;
            (&bytes[start / 8..], start % 8)
        } else {
            let len = (frame_bits / 8) as usize;
            (&bytes[f * len..(f + 1) * len], 0)
        };
        layout.frame(frame, bit_base, info.slope, info.intercept, &mut plane);
        put(f, &plane)?;
    }
    Ok(())
}

/// The error for a transfer syntax we know but cannot decode (this data with it).
fn unsupported_ts(h: &Header, ts: &TransferSyntax) -> Error {
    Error::unsupported(
        &h.path,
        format!(
            "transfer syntax {} ({}) cannot be decoded",
            h.ts_uid,
            ts.name()
        ),
    )
}

/// Refuses, before the pixel data is read, what we cannot turn into values: colour models other
/// than grayscale and RGB in native data, and encapsulated data without a working codec (12-bit
/// JPEG Extended, 1-bit samples).
fn check_decodable(h: &Header, ts: &TransferSyntax) -> Result<()> {
    let photometric = h.photometric.as_str();
    let encapsulated = ts.is_encapsulated_pixel_data();
    if !encapsulated && !matches!(photometric, "MONOCHROME1" | "MONOCHROME2" | "RGB") {
        return Err(Error::unsupported(
            &h.path,
            format!("PhotometricInterpretation {photometric} in uncompressed data"),
        ));
    }
    if encapsulated
        && (!ts.can_decode_all()
            || (h.ts_uid == JPEG_EXTENDED && h.bits_stored > 8)
            || h.bits_allocated == 1)
    {
        return Err(unsupported_ts(h, ts));
    }
    Ok(())
}

/// RLE Lossless PixelData through our own decoder: the interleaved samples of every frame.
fn decode_rle(
    path: &Path,
    obj: &DefaultDicomObject,
    frames: usize,
    layout: &Layout,
) -> Result<Vec<u8>> {
    let elem = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| Error::format(path, "no PixelData"))?;
    let Value::PixelSequence(seq) = elem.value() else {
        return Err(Error::format(path, "RLE PixelData is not encapsulated"));
    };
    super::rle::decode(
        path,
        seq.fragments(),
        frames,
        layout.rows_cols,
        layout.spp,
        (layout.bits_allocated / 8).max(1) as usize,
    )
}

/// Encapsulated PixelData through dicom-pixeldata's codecs. Third-party codecs may panic on
/// corrupt streams: keep that from reaching callers.
fn decode_encapsulated<'a>(
    path: &Path,
    obj: &'a DefaultDicomObject,
    ts: &TransferSyntax,
) -> Result<DecodedPixelData<'a>> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data()));
    match r {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(Error::format(
            path,
            format!("cannot decode {} pixel data: {e}", ts.name()),
        )),
        Err(_) => Err(Error::format(
            path,
            format!("the {} decoder failed (panicked) on this file", ts.name()),
        )),
    }
}

/// Native PixelData, borrowed as stored.
fn native_bytes<'a>(path: &Path, obj: &'a DefaultDicomObject) -> Result<Cow<'a, [u8]>> {
    let elem = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| Error::format(path, "no PixelData"))?;
    match elem.value() {
        Value::Primitive(p) => Ok(p.to_bytes()),
        _ => Err(Error::format(path, "PixelData is not a plain value")),
    }
}

/// Refuses PixelData shorter than the header's frames need (a truncated file), before any frame
/// is sliced out of it.
fn check_length(h: &Header, len: usize, frame_bits: u64, bits_allocated: u16) -> Result<()> {
    let frames = h.number_of_frames as usize;
    let need_bits = frame_bits * frames as u64;
    if (len as u64) * 8 < need_bits {
        return Err(Error::format(
            &h.path,
            format!(
                "PixelData holds {} bytes, {} needed for {frames} frame(s) of {}x{}x{} at {} bits \
                 (truncated file?)",
                len,
                need_bits.div_ceil(8),
                h.cols,
                h.rows,
                h.samples_per_pixel,
                bits_allocated
            ),
        ));
    }
    Ok(())
}
