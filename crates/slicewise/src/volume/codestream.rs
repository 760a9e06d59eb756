//! The image size a JPEG (SOF) or JPEG 2000 (SIZ) codestream declares, read from its header
//! before any codec sees it.
//!
//! Why: the codecs allocate what the codestream declares. A corrupted JPEG 2000 header in a
//! 0.5 MB DICOM file (one flipped bit in Xsiz or Ysiz) made openjp2 allocate 4.4 GB and run for
//! 15 s before failing, and a width larger than the DICOM header's made the codec adapter
//! panic. Comparing the declared size with the container's (DICOM Rows × Columns × Samples per
//! Pixel, a TIFF strip or tile) first bounds every codec allocation by the image the file
//! says it holds.

use std::path::Path;

use crate::error::{Error, Result};

/// What a codestream's header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Declared {
    pub width: u64,
    pub height: u64,
    pub components: u32,
    /// The largest sample precision of any component, in bits.
    pub precision: u32,
}

/// Where a JPEG 2000 tile is smaller than this many samples on average, the tiling is absurd
/// (each tile costs the decoder its own structures) and the codestream is refused.
const MIN_TILE_AREA: u64 = 64;

/// The size a JPEG 2000 codestream (raw, or inside a JP2 file) declares in its SIZ marker.
pub(crate) fn j2k_declared(data: &[u8]) -> std::result::Result<Declared, String> {
    let soc = find_codestream(data).ok_or("no JPEG 2000 codestream (SOC and SIZ markers)")?;
    let s = &data[soc + 4..];
    let u16_at = |o: usize| {
        s.get(o..o + 2)
            .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let u32_at = |o: usize| {
        s.get(o..o + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    };
    let short = || "SIZ marker cut short".to_string();
    let lsiz = u16_at(0).ok_or_else(short)?;
    let f = |i: usize| u32_at(4 + 4 * i).ok_or_else(short);
    let (x, y, xo, yo) = (f(0)?, f(1)?, f(2)?, f(3)?);
    let (xt, yt, xto, yto) = (f(4)?, f(5)?, f(6)?, f(7)?);
    let csiz = u16_at(36).ok_or_else(short)?;
    if csiz == 0 || lsiz != 38 + 3 * csiz {
        return Err(format!(
            "SIZ marker of length {lsiz} for {csiz} component(s)"
        ));
    }
    let tiling_ok = xo < x
        && yo < y
        && xt > 0
        && yt > 0
        && xto <= xo
        && yto <= yo
        && xto + xt > xo
        && yto + yt > yo;
    if !tiling_ok {
        return Err(format!(
            "inconsistent SIZ marker (image {x}x{y} at offset {xo},{yo}, tiles {xt}x{yt} at \
             {xto},{yto})"
        ));
    }
    let (width, height) = (x - xo, y - yo);
    let tiles = (x - xto).div_ceil(xt) * (y - yto).div_ceil(yt);
    if tiles > 1 && tiles * MIN_TILE_AREA > width * height {
        return Err(format!(
            "{tiles} tiles of {xt}x{yt} for a {width}x{height} image"
        ));
    }
    let mut precision = 0;
    for c in 0..csiz as usize {
        let b = s.get(38 + 3 * c..41 + 3 * c).ok_or_else(short)?;
        if b[1] == 0 || b[2] == 0 {
            return Err("component subsampling of 0 in the SIZ marker".into());
        }
        precision = precision.max(u32::from(b[0] & 0x7F) + 1);
    }
    Ok(Declared {
        width,
        height,
        components: csiz as u32,
        precision,
    })
}

/// The offset of the SOC marker followed by SIZ: at the start of a raw codestream, or after
/// the boxes of a JP2 file (some writers store JP2 files in DICOM and TIFF).
fn find_codestream(data: &[u8]) -> Option<usize> {
    const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
    const JP2: [u8; 12] = [
        0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A,
    ];
    if data.starts_with(&SOC_SIZ) {
        return Some(0);
    }
    if data.starts_with(&JP2) {
        return data.windows(4).position(|w| w == SOC_SIZ);
    }
    None
}

/// The size a JPEG (ISO 10918-1) stream declares in its frame header (SOFn), read by walking
/// the marker segments before it.
pub(crate) fn jpeg_declared(data: &[u8]) -> std::result::Result<Declared, String> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut i = 2;
    loop {
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(&0xFF), Some(&m)) = (data.get(i), data.get(i + 1)) else {
            return Err("no JPEG frame header (SOF marker)".into());
        };
        let len = data
            .get(i + 2..i + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("JPEG marker segment cut short")?;
        let is_sof = matches!(m, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            let h = data
                .get(i + 4..i + 10)
                .ok_or("JPEG frame header cut short")?;
            let height = u64::from(u16::from_be_bytes([h[1], h[2]]));
            if height == 0 {
                return Err("JPEG height defined by a DNL marker after the scan".into());
            }
            return Ok(Declared {
                width: u64::from(u16::from_be_bytes([h[3], h[4]])),
                height,
                components: u32::from(h[5]),
                precision: u32::from(h[0]),
            });
        }
        if matches!(m, 0xD9 | 0xDA) || len < 2 {
            return Err("no JPEG frame header (SOF marker) before the scan".into());
        }
        i += 2 + len;
    }
}

/// Refuses a codestream whose declared size differs from what its container says it holds
/// (`want`: width, height, components), or whose precision exceeds `max_bits`. `what` names
/// the codestream in the message ("JPEG 2000 frame 3", "JPEG 2000 tile 5").
pub(crate) fn check(
    path: &Path,
    what: &str,
    declared: std::result::Result<Declared, String>,
    want: (u64, u64, u32),
    max_bits: u32,
) -> Result<()> {
    let d = declared.map_err(|m| Error::format(path, format!("{what}: {m}")))?;
    if (d.width, d.height, d.components) != want {
        return Err(Error::format(
            path,
            format!(
                "{what} declares {}x{} with {} component(s), but the file's header says {}x{} with \
                 {} (corrupt codestream?)",
                d.width, d.height, d.components, want.0, want.1, want.2
            ),
        ));
    }
    if d.precision > max_bits || d.precision == 0 {
        return Err(Error::format(
            path,
            format!(
                "{what} declares {}-bit samples, more than the {max_bits} bits the header allows",
                d.precision
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIZ codestream header for one component of `w`×`h` in tiles of `t`×`t`.
    fn siz(w: u32, h: u32, t: u32, bits: u8) -> Vec<u8> {
        let mut v = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
        for x in [w, h, 0, 0, t, t, 0, 0] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&[0, 1, bits - 1, 1, 1]);
        v
    }

    #[test]
    fn j2k_size_precision_and_tiling_are_read_and_checked() {
        let d = j2k_declared(&siz(512, 256, 512, 12)).unwrap();
        assert_eq!(
            d,
            Declared {
                width: 512,
                height: 256,
                components: 1,
                precision: 12
            }
        );
        // 1x1 tiles over 512x512: refused before the decoder builds 262144 tiles.
        assert!(j2k_declared(&siz(512, 512, 1, 12))
            .unwrap_err()
            .contains("tiles"));
        assert!(j2k_declared(&siz(512, 512, 512, 12)[..30]).is_err());
        assert!(j2k_declared(b"\xFF\xD8\xFF\xE0").is_err());
        let p = Path::new("a.dcm");
        let e = check(
            p,
            "JPEG 2000 frame 1",
            j2k_declared(&siz(2_097_664, 512, 512, 12)),
            (512, 512, 1),
            16,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("a.dcm") && e.contains("2097664x512"), "{e}");
        assert!(check(p, "f", Ok(d), (512, 256, 1), 8).is_err());
        assert!(check(p, "f", Ok(d), (512, 256, 1), 16).is_ok());
    }

    #[test]
    fn jpeg_frame_header_is_found_after_other_segments() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0];
        j.extend_from_slice(&[0xFF, 0xC1, 0, 11, 12, 1, 0, 0, 200, 1, 1, 0x11, 0]);
        let d = jpeg_declared(&j).unwrap();
        assert_eq!(
            (d.width, d.height, d.components, d.precision),
            (200, 256, 1, 12)
        );
        assert!(jpeg_declared(&j[..9]).is_err());
        assert!(jpeg_declared(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]).is_err());
    }
}
