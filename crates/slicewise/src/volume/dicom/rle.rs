//! DICOM RLE Lossless (PS3.5 Annex G) decoding to interleaved little-endian samples. Our own,
//! because dicom-pixeldata's RLE decoder fails on 32-bit samples.

use std::path::Path;

use crate::error::{Error, Result};

/// Decodes the RLE fragments of `frames` frames (one fragment per frame, or all fragments of a
/// single frame) into interleaved little-endian samples.
pub(crate) fn decode(
    path: &Path,
    fragments: &[Vec<u8>],
    frames: usize,
    pixels: usize,
    spp: usize,
    bytes_per_sample: usize,
) -> Result<Vec<u8>> {
    let joined;
    let per_frame: Vec<&[u8]> = if fragments.len() == frames {
        fragments.iter().map(|f| f.as_slice()).collect()
    } else if frames == 1 {
        joined = fragments.concat();
        vec![&joined]
    } else {
        return Err(Error::format(
            path,
            format!(
                "RLE data has {} fragments for {frames} frames",
                fragments.len()
            ),
        ));
    };
    let frame_len = pixels * spp * bytes_per_sample;
    let mut out = vec![0u8; frame_len * frames];
    let mut seg = vec![0u8; pixels];
    for (f, data) in per_frame.iter().enumerate() {
        let word = |i: usize| -> Result<usize> {
            data.get(4 * i..4 * i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| Error::format(path, "RLE header truncated"))
        };
        let n_seg = word(0)?;
        if n_seg != spp * bytes_per_sample || n_seg > 15 {
            return Err(Error::format(
                path,
                format!(
                    "RLE frame {} has {n_seg} segments, {} expected",
                    f + 1,
                    spp * bytes_per_sample
                ),
            ));
        }
        let frame_out = &mut out[f * frame_len..(f + 1) * frame_len];
        for s in 0..n_seg {
            let start = word(1 + s)?;
            let end = if s + 1 < n_seg {
                word(2 + s)?
            } else {
                data.len()
            };
            let src = data
                .get(start..end.max(start))
                .ok_or_else(|| Error::format(path, "RLE segment offset out of range"))?;
            unpack(path, src, &mut seg)?;
            // Segments run from the most significant byte of sample 0 to the least of the last.
            let (sample, byte) = (
                s / bytes_per_sample,
                bytes_per_sample - 1 - s % bytes_per_sample,
            );
            for (p, v) in seg.iter().enumerate() {
                frame_out[(p * spp + sample) * bytes_per_sample + byte] = *v;
            }
        }
    }
    Ok(out)
}

/// PackBits decoding of one segment into `out` (exactly filled).
fn unpack(path: &Path, src: &[u8], out: &mut [u8]) -> Result<()> {
    let (mut i, mut o) = (0usize, 0usize);
    while o < out.len() {
        let Some(&h) = src.get(i) else {
            return Err(Error::format(path, "RLE segment ends early"));
        };
        i += 1;
        let n = h as i8;
        if n >= 0 {
            let len = n as usize + 1;
            let lit = src
                .get(i..i + len)
                .ok_or_else(|| Error::format(path, "RLE literal run past segment end"))?;
            let take = len.min(out.len() - o);
            out[o..o + take].copy_from_slice(&lit[..take]);
            i += len;
            o += take;
        } else if n != -128 {
            let len = (1 - n as isize) as usize;
            let &v = src
                .get(i)
                .ok_or_else(|| Error::format(path, "RLE replicate run past segment end"))?;
            i += 1;
            let take = len.min(out.len() - o);
            out[o..o + take].fill(v);
            o += take;
        }
    }
    Ok(())
}
