//! Decoding a file's pixel data into real-world values, frame by frame.
//!
//! Native (uncompressed) data is decoded here from the PixelData bytes, because dicom-pixeldata's
//! typed conversions reject 1-bit, 32-bit and planar-configuration-1 data. Encapsulated data goes
//! through `decode_pixel_data`, whose output is interleaved native samples.

use std::borrow::Cow;
use std::path::Path;

use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_encoding::adapters::PixelDataObject;
use dicom_encoding::{TransferSyntax, TransferSyntaxIndex};
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{DecodedPixelData, PixelDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::colour::Palette;
use super::scan::Header;
use crate::error::{Error, Result};
use crate::volume::codestream;

/// RLE Lossless, decoded by our own [`super::rle`].
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG Extended (process 2 & 4): its 12-bit variant is decoded by our own [`super::jpeg12`].
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
/// The JPEG (ISO 10918-1) transfer syntaxes: baseline, extended, lossless (process 14, SV1).
const JPEG_FAMILY: [&str; 4] = [
    "1.2.840.10008.1.2.4.50",
    JPEG_EXTENDED,
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];
/// The JPEG 2000 transfer syntaxes (Part 1 and Part 2 multi-component, and HTJ2K), whose
/// codestreams all begin with a SIZ marker.
const J2K_FAMILY: [&str; 7] = [
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

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
    let (mut obj, _) = super::scan::open(path, false)?;
    if h.photometric == "RGB" && JPEG_RGB_OUT.contains(&h.ts_uid.as_str()) {
        mark_untransformed_rgb(&mut obj);
    }
    let frames = h.number_of_frames as usize;
    let mut layout = Layout::of(h);
    let colour = Colour::of(h);
    let rc = layout.rows_cols;
    let mut plane = vec![0f32; rc * layout.spp];
    let mut rgb = vec![0f32; if colour.is_palette() { 3 * rc } else { 0 }];

    let samples = samples(h, &obj, ts, &mut layout)?;
    let bytes = samples.bytes();
    let frame_bits = (rc * layout.spp) as u64 * layout.bits_allocated as u64;
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
        let rescale = (info.slope, info.intercept);
        put(
            f,
            colour.values(&layout, frame, bit_base, rescale, &mut plane, &mut rgb),
        )?;
    }
    Ok(())
}

/// A file's stored samples, interleaved and little-endian, from whichever source its transfer
/// syntax needs.
enum Samples<'a> {
    /// Native data (borrowed, or re-laid out) or our RLE decoder's output.
    Bytes(Cow<'a, [u8]>),
    /// A dicom-pixeldata codec's output.
    Decoded(DecodedPixelData<'a>),
}

impl Samples<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Samples::Bytes(b) => b,
            Samples::Decoded(d) => d.data(),
        }
    }
}

/// Decodes or borrows the samples of `obj`, adjusting `layout` to how the decoder lays them out.
fn samples<'a>(
    h: &Header,
    obj: &'a DefaultDicomObject,
    ts: &TransferSyntax,
    layout: &mut Layout,
) -> Result<Samples<'a>> {
    let path = h.path.as_path();
    if h.ts_uid == RLE_LOSSLESS {
        let rle = decode_rle(path, obj, h.number_of_frames as usize, layout)?;
        layout.planar = false;
        return Ok(Samples::Bytes(Cow::Owned(rle)));
    }
    if ts.is_encapsulated_pixel_data() {
        let twelve_bit = check_codestreams(h, obj)?;
        if twelve_bit {
            layout.bits_allocated = 16;
            layout.planar = false;
            return decode_jpeg12(h, obj).map(|b| Samples::Bytes(Cow::Owned(b)));
        }
        let decoded = decode_encapsulated(path, obj, ts)?;
        // The codecs' output is interleaved, at the depth they decoded to.
        layout.bits_allocated = decoded.bits_allocated();
        layout.planar = false;
        if !matches!(layout.bits_allocated, 8 | 16 | 32) {
            return Err(unsupported_ts(h, ts));
        }
        return Ok(Samples::Decoded(decoded));
    }
    let raw = native_samples(h, obj, ts)?;
    if h.photometric == "YBR_FULL_422" {
        layout.planar = false; // expanded to interleaved samples
    }
    Ok(Samples::Bytes(raw))
}

/// The lossy JPEG processes, whose codec (jpeg-decoder) turns YCbCr components into RGB itself
/// (its lossless path, 1.2.840.10008.1.2.4.57 and .70, leaves components as they are).
const JPEG_RGB_OUT: [&str; 2] = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"];

/// How decoded samples become the volume's channels.
#[derive(Clone, Copy)]
enum Colour<'a> {
    /// Grayscale or RGB: the samples are the values.
    AsStored,
    /// YBR_FULL(_422) samples to convert to RGB (all but lossy JPEG, whose codec converts).
    Ybr,
    /// Palette indices to expand to RGB.
    Palette(&'a Palette),
}

impl<'a> Colour<'a> {
    fn of(h: &'a Header) -> Colour<'a> {
        match (&h.palette, h.photometric.as_str()) {
            (Some(p), _) => Colour::Palette(p),
            (None, "YBR_FULL" | "YBR_FULL_422") if !JPEG_RGB_OUT.contains(&h.ts_uid.as_str()) => {
                Colour::Ybr
            }
            _ => Colour::AsStored,
        }
    }

    fn is_palette(&self) -> bool {
        matches!(self, Colour::Palette(_))
    }

    /// One frame's real-world values: the stored samples through the colour conversion, then
    /// the modality rescale (`(slope, intercept)`). `plane` holds the samples, `rgb` a palette
    /// image's expansion; the result borrows the one that holds the values.
    fn values<'b>(
        &self,
        layout: &Layout,
        frame: &[u8],
        bit_base: usize,
        (slope, intercept): (f64, f64),
        plane: &'b mut [f32],
        rgb: &'b mut [f32],
    ) -> &'b [f32] {
        match self {
            Colour::AsStored => {
                layout.frame(frame, bit_base, slope, intercept, plane);
                plane
            }
            Colour::Ybr => {
                layout.frame(frame, bit_base, 1.0, 0.0, plane);
                super::colour::ybr_to_rgb(plane, layout.rows_cols);
                rescale(plane, slope, intercept);
                plane
            }
            Colour::Palette(p) => {
                layout.frame(frame, bit_base, 1.0, 0.0, plane);
                p.apply(plane, rgb);
                rescale(rgb, slope, intercept);
                rgb
            }
        }
    }
}

/// Applies the modality rescale to values computed without it.
fn rescale(values: &mut [f32], slope: f64, intercept: f64) {
    if slope != 1.0 || intercept != 0.0 {
        for v in values.iter_mut() {
            *v = (slope * f64::from(*v) + intercept) as f32;
        }
    }
}

/// A JPEG frame whose DICOM header says RGB but which carries neither an Adobe (APP14) nor a
/// JFIF (APP0) marker holds untransformed RGB components; jpeg-decoder would take them for YCbCr
/// (pydicom's SC_jpeg_no_color_transform.dcm, and SC_rgb_jpeg.dcm, whose Adobe segment is too
/// short for jpeg-decoder to read). An Adobe marker saying "no transform" makes it
/// decode them as they are. Fragments are patched where a frame starts (SOI) and the offset
/// table, when there is one, is recomputed for the longer fragments.
fn mark_untransformed_rgb(obj: &mut DefaultDicomObject) {
    obj.update_value(tags::PIXEL_DATA, |v| {
        let Value::PixelSequence(seq) = v else {
            return;
        };
        let mut changed = false;
        for frag in seq.fragments_mut().iter_mut() {
            if frag.starts_with(&[0xFF, 0xD8]) && !has_colour_marker(frag) {
                // APP14 "Adobe", version 100, flags 0, 0, transform 0 (none).
                let app14 = [
                    0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00,
                    0x00, 0x00, 0x00,
                ];
                frag.splice(2..2, app14);
                changed = true;
            }
        }
        if changed && !seq.offset_table().is_empty() {
            let mut offsets = Vec::new();
            let mut at = 0u64;
            for frag in seq.fragments() {
                if frag.starts_with(&[0xFF, 0xD8]) {
                    offsets.push(u32::try_from(at).unwrap_or(u32::MAX));
                }
                // Each fragment is an item: 8 bytes of tag and length, then its data.
                at += 8 + frag.len() as u64;
            }
            *seq.offset_table_mut() = offsets.into();
        }
    });
}

/// Whether the JPEG markers before the first frame header include a full APP14 (Adobe) or a JFIF
/// APP0 segment.
fn has_colour_marker(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while let (Some(&0xFF), Some(&m), Some(len)) = (
        jpeg.get(i),
        jpeg.get(i + 1),
        jpeg.get(i + 2..i + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
    ) {
        match m {
            // A full Adobe segment (12 bytes after the length); jpeg-decoder ignores shorter
            // ones (pydicom's SC_rgb_jpeg.dcm has one), so they do not count.
            0xEE if len >= 14 => return true,
            0xE0 if jpeg.get(i + 4..i + 8) == Some(b"JFIF") => return true,
            // A frame or scan header: no marker before it.
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA => return false,
            _ => i += 2 + len,
        }
    }
    false
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
/// than grayscale and RGB in native data, and encapsulated data without a working codec (1-bit
/// samples).
fn check_decodable(h: &Header, ts: &TransferSyntax) -> Result<()> {
    let photometric = h.photometric.as_str();
    let encapsulated = ts.is_encapsulated_pixel_data();
    let known = matches!(
        photometric,
        "MONOCHROME1" | "MONOCHROME2" | "RGB" | "YBR_FULL" | "YBR_FULL_422" | "PALETTE COLOR"
    );
    if !encapsulated && !known {
        return Err(Error::unsupported(
            &h.path,
            format!("PhotometricInterpretation {photometric} in uncompressed data"),
        ));
    }
    check_colour(h)?;
    if encapsulated && (!ts.can_decode_all() || h.bits_allocated == 1) {
        return Err(unsupported_ts(h, ts));
    }
    Ok(())
}

/// Refuses colour data we cannot convert as pydicom does: YBR at other than 8 bits (pydicom
/// converts only 8-bit YBR), YBR_FULL_422 with other than 3 samples, palettes on more than one
/// sample or at other than 8 or 16 bits.
fn check_colour(h: &Header) -> Result<()> {
    let bad = match h.photometric.as_str() {
        "YBR_FULL" | "YBR_FULL_422" if h.bits_allocated != 8 || h.samples_per_pixel != 3 => true,
        "PALETTE COLOR" => h.samples_per_pixel != 1 || !matches!(h.bits_allocated, 8 | 16),
        _ => false,
    };
    if bad {
        return Err(Error::unsupported(
            &h.path,
            format!(
                "PhotometricInterpretation {} with {} sample(s) of {} bits",
                h.photometric, h.samples_per_pixel, h.bits_allocated
            ),
        ));
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

/// Checks the size every frame's JPEG or JPEG 2000 codestream declares against the header's
/// Rows × Columns × SamplesPerPixel (and its precision against BitsAllocated) before a codec
/// allocates what a corrupt header says. True when the frames are 12-bit JPEG, which
/// [`decode_jpeg12`] decodes.
fn check_codestreams(h: &Header, obj: &DefaultDicomObject) -> Result<bool> {
    let ts = h.ts_uid.as_str();
    let (is_jpeg, is_j2k) = (JPEG_FAMILY.contains(&ts), J2K_FAMILY.contains(&ts));
    if !is_jpeg && !is_j2k {
        return Ok(false);
    }
    let want = (
        u64::from(h.cols),
        u64::from(h.rows),
        u32::from(h.samples_per_pixel),
    );
    let mut twelve_bit = false;
    for f in 0..h.number_of_frames {
        let data = frame_data(h, obj, f)?;
        let (kind, declared) = if is_jpeg {
            ("JPEG", codestream::jpeg_declared(&data))
        } else {
            ("JPEG 2000", codestream::j2k_declared(&data))
        };
        if let Ok(d) = declared {
            twelve_bit |= ts == JPEG_EXTENDED && d.precision == 12;
        }
        let what = format!("the {kind} codestream of frame {}", f + 1);
        codestream::check(&h.path, &what, declared, want, u32::from(h.bits_allocated))?;
    }
    if twelve_bit && h.samples_per_pixel != 1 {
        return Err(Error::unsupported(
            &h.path,
            "12-bit JPEG Extended with more than one sample per pixel",
        ));
    }
    Ok(twelve_bit)
}

/// The encapsulated data of frame `f` (0-based), its fragments joined as the codecs join them.
fn frame_data<'a>(h: &Header, obj: &'a DefaultDicomObject, f: u32) -> Result<Cow<'a, [u8]>> {
    obj.frame_pixel_data(f).ok_or_else(|| {
        Error::format(
            &h.path,
            format!(
                "no encapsulated data for frame {} of {}",
                f + 1,
                h.number_of_frames
            ),
        )
    })
}

/// 12-bit JPEG Extended frames through our own decoder: 16-bit little-endian samples.
fn decode_jpeg12(h: &Header, obj: &DefaultDicomObject) -> Result<Vec<u8>> {
    let want = super::jpeg12::Expected {
        cols: h.cols as usize,
        rows: h.rows as usize,
        components: usize::from(h.samples_per_pixel),
    };
    let mut out = Vec::with_capacity(want.cols * want.rows * 2 * h.number_of_frames as usize);
    for f in 0..h.number_of_frames {
        let data = frame_data(h, obj, f)?;
        let frame = super::jpeg12::decode(&h.path, &data, want)?;
        out.extend(frame.samples.iter().flat_map(|v| v.to_le_bytes()));
    }
    Ok(out)
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
        Err(p) => Err(Error::format(
            path,
            format!(
                "the {} decoder failed (panicked) on this file: {}",
                ts.name(),
                crate::error::caught_panic_message(p)
            ),
        )),
    }
}

/// The native PixelData of `h` as little-endian interleaved samples; YBR_FULL_422's shared
/// chroma expanded to full resolution.
fn native_samples<'a>(
    h: &Header,
    obj: &'a DefaultDicomObject,
    ts: &TransferSyntax,
) -> Result<Cow<'a, [u8]>> {
    let big_endian = ts.endianness() == dicom_encoding::transfer_syntax::Endianness::Big;
    let raw = native_bytes(&h.path, obj, big_endian, h.bits_allocated)?;
    if h.photometric != "YBR_FULL_422" {
        return Ok(raw);
    }
    let (frames, rows, cols) = (
        h.number_of_frames as usize,
        h.rows as usize,
        h.cols as usize,
    );
    super::colour::expand_ybr422(&h.path, &raw, frames, rows, cols).map(Cow::Owned)
}

/// Native PixelData as little-endian samples: borrowed as the parser decoded it, except 32-bit
/// samples in Explicit VR Big Endian, which are re-assembled.
fn native_bytes<'a>(
    path: &Path,
    obj: &'a DefaultDicomObject,
    big_endian: bool,
    bits_allocated: u16,
) -> Result<Cow<'a, [u8]>> {
    let elem = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| Error::format(path, "no PixelData"))?;
    match elem.value() {
        Value::Primitive(PrimitiveValue::U16(words)) if big_endian && bits_allocated == 32 => {
            Ok(Cow::Owned(big_endian_u32(words)))
        }
        Value::Primitive(p) => Ok(p.to_bytes()),
        _ => Err(Error::format(path, "PixelData is not a plain value")),
    }
}

/// The little-endian 32-bit samples of big-endian OW PixelData. The parser hands OW over as
/// 16-bit words in native order, which is right for 16-bit samples and for 8-bit ones (OW swaps
/// bytes within each word, and pydicom reads them so), but a 4-byte big-endian sample is two
/// words, most significant first. An odd last word is no whole sample: left out, so the length
/// check sees it.
fn big_endian_u32(words: &[u16]) -> Vec<u8> {
    words
        .chunks_exact(2)
        .flat_map(|w| ((u32::from(w[0]) << 16) | u32::from(w[1])).to_le_bytes())
        .collect()
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
