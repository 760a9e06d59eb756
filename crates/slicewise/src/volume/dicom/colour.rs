//! Colour models other than RGB, turned into RGB as pydicom turns them: YBR_FULL and
//! YBR_FULL_422 (`pixel_array`'s default conversion, `convert_color_space`) and PALETTE COLOR
//! (`apply_color_lut`).

use std::path::Path;

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use crate::error::{Error, Result};

/// pydicom's YBR_FULL → RGB matrix (ITU T.871), as float32: `rgb[j] = Σ_k ybr[k] · M[k][j]`
/// with Cb and Cr centred on 128.
const YBR_TO_RGB: [[f32; 3]; 3] = [
    [1.0, 1.0, 1.0],
    [0.0, (-0.114 * 1.772 / 0.587) as f32, 1.772],
    [1.402, (-0.299 * 1.402 / 0.587) as f32, 0.0],
];

/// Converts one frame of 8-bit YBR_FULL samples, `[c][y][x]` with `pixels` per channel, to RGB in
/// place: float32 arithmetic, rounded as `floor(x + 0.5)` and clipped to 0..=255, as pydicom does.
pub(crate) fn ybr_to_rgb(plane: &mut [f32], pixels: usize) {
    let (y, rest) = plane.split_at_mut(pixels);
    let (cb, cr) = rest.split_at_mut(pixels);
    for p in 0..pixels {
        let v = [y[p], cb[p] - 128.0, cr[p] - 128.0];
        let mut out = [0f32; 3];
        for (j, o) in out.iter_mut().enumerate() {
            let s = v[0] * YBR_TO_RGB[0][j] + v[1] * YBR_TO_RGB[1][j] + v[2] * YBR_TO_RGB[2][j];
            *o = (s + 0.5).floor().clamp(0.0, 255.0);
        }
        (y[p], cb[p], cr[p]) = (out[0], out[1], out[2]);
    }
}

/// Native 8-bit YBR_FULL_422 (`Y0 Y1 Cb Cr` for each pair of pixels of a row) expanded to
/// interleaved full-resolution `Y Cb Cr` samples, frame by frame.
pub(crate) fn expand_ybr422(
    path: &Path,
    bytes: &[u8],
    frames: usize,
    rows: usize,
    cols: usize,
) -> Result<Vec<u8>> {
    if cols % 2 == 1 {
        return Err(Error::format(
            path,
            format!("YBR_FULL_422 needs an even number of columns, not {cols}"),
        ));
    }
    let stored = frames * rows * cols * 2;
    let Some(src) = bytes.get(..stored) else {
        return Err(Error::format(
            path,
            format!(
                "PixelData holds {} bytes, {stored} needed for {frames} YBR_FULL_422 frame(s) of \
                 {cols}x{rows} (truncated file?)",
                bytes.len()
            ),
        ));
    };
    let mut out = Vec::with_capacity(frames * rows * cols * 3);
    for q in src.chunks_exact(4) {
        out.extend_from_slice(&[q[0], q[2], q[3], q[1], q[2], q[3]]);
    }
    Ok(out)
}

/// The Palette Color Lookup Table module of an image (PS3.3 C.7.6.3.1.5).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Palette {
    /// Red, green and blue tables, one entry per mapped index.
    luts: [Vec<u16>; 3],
    /// The stored value mapped to entry 0.
    first: i64,
}

const DESCRIPTORS: [Tag; 3] = [
    Tag(0x0028, 0x1101),
    Tag(0x0028, 0x1102),
    Tag(0x0028, 0x1103),
];
const DATA: [Tag; 3] = [
    Tag(0x0028, 0x1201),
    Tag(0x0028, 0x1202),
    Tag(0x0028, 0x1203),
];
/// Segmented Red Palette Color Lookup Table Data.
const SEGMENTED_RED: Tag = Tag(0x0028, 0x1221);

impl Palette {
    /// Reads the three tables of a PALETTE COLOR image. Segmented tables and tables of other than
    /// 8- or 16-bit entries are unsupported; missing or inconsistent ones a format error.
    pub(crate) fn read(path: &Path, obj: &InMemDicomObject) -> Result<Palette> {
        if obj.get(SEGMENTED_RED).is_some() {
            return Err(Error::unsupported(
                path,
                "segmented palette colour lookup tables",
            ));
        }
        let mut luts: [Vec<u16>; 3] = Default::default();
        let mut first = 0;
        for (k, lut) in luts.iter_mut().enumerate() {
            let desc = obj
                .get(DESCRIPTORS[k])
                .and_then(|e| e.to_multi_int::<i64>().ok())
                .filter(|d| d.len() == 3)
                .ok_or_else(|| {
                    Error::format(
                        path,
                        "PALETTE COLOR without a valid lookup table descriptor",
                    )
                })?;
            let entries = if desc[0] == 0 {
                65536
            } else {
                desc[0] as usize
            };
            first = desc[1];
            let data = obj
                .get(DATA[k])
                .and_then(|e| e.value().to_bytes().ok().map(|b| b.into_owned()))
                .ok_or_else(|| Error::format(path, "PALETTE COLOR without lookup table data"))?;
            *lut = table(path, &data, entries)?;
        }
        if luts.iter().any(|l| l.len() != luts[0].len()) {
            return Err(Error::format(
                path,
                "palette lookup tables differ in length",
            ));
        }
        Ok(Palette { luts, first })
    }

    /// Maps one frame of stored indices (`pixels` values) to `[3][pixels]` RGB entries; indices
    /// below the first mapped value take entry 0 and those beyond the table its last entry.
    pub(crate) fn apply(&self, indices: &[f32], out: &mut [f32]) {
        let n = indices.len();
        let last = self.luts[0].len() as i64 - 1;
        for (p, &v) in indices.iter().enumerate() {
            let i = (v as i64 - self.first).clamp(0, last) as usize;
            for (c, lut) in self.luts.iter().enumerate() {
                out[c * n + p] = f32::from(lut[i]);
            }
        }
    }
}

/// One table from its data bytes: the entry size is what the data length says (as pydicom
/// decides it), 8 or 16 bits.
fn table(path: &Path, data: &[u8], entries: usize) -> Result<Vec<u16>> {
    if data.len() == entries {
        Ok(data.iter().map(|&b| u16::from(b)).collect())
    } else if data.len() == 2 * entries {
        Ok(data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect())
    } else {
        Err(Error::unsupported(
            path,
            format!(
                "palette lookup table of {} bytes for {entries} entries (only 8- or 16-bit entries)",
                data.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ybr_grey_and_primaries_convert_like_pydicom() {
        // Grey stays grey; pydicom's conversion of (76, 85, 255) is (255, 0, 0) after clipping.
        let mut p = vec![128.0, 76.0, 128.0, 85.0, 128.0, 255.0];
        ybr_to_rgb(&mut p, 2);
        assert_eq!(p, vec![128.0, 254.0, 128.0, 0.0, 128.0, 0.0]);
    }

    #[test]
    fn ybr422_pairs_share_chroma() {
        let e = expand_ybr422(Path::new("x"), &[10, 20, 30, 40], 1, 1, 2).unwrap();
        assert_eq!(e, vec![10, 30, 40, 20, 30, 40]);
        assert!(expand_ybr422(Path::new("x"), &[1, 2, 3], 1, 1, 2).is_err());
        assert!(expand_ybr422(Path::new("x"), &[1, 2, 3, 4, 5, 6], 1, 1, 3).is_err());
    }

    #[test]
    fn palette_clamps_indices_to_the_table() {
        let pal = Palette {
            luts: [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]],
            first: 10,
        };
        let mut out = vec![0.0; 9];
        pal.apply(&[5.0, 11.0, 99.0], &mut out);
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }
}
