//! Pixel data of segmentation frames.
//!
//! BINARY segmentations store 1 bit per pixel. PS3.5 8.1.1: with Bits Allocated 1 the frames are
//! packed one after another with **no padding between frames** (frame `f` starts at bit
//! `f · rows · cols`, which need not be a byte boundary); within a byte the first pixel is the
//! least significant bit. Only the whole Pixel Data value is padded to an even length.

/// Packs frames of 0/1 pixels (any non-zero is 1), concatenated, into DICOM 1-bit pixel data
/// (even length).
pub fn pack_bits<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bit = 0usize;
    for frame in frames {
        out.reserve(frame.len() / 8 + 1);
        for &p in frame {
            if bit.is_multiple_of(8) {
                out.push(0);
            }
            if p != 0 {
                if let Some(last) = out.last_mut() {
                    *last |= 1 << (bit % 8);
                }
            }
            bit += 1;
        }
    }
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// The pixels (0/1) of frame `index` of 1-bit pixel data holding frames of `pixels` pixels each.
/// `None` when the data is too short.
pub fn unpack_frame_bits(data: &[u8], index: usize, pixels: usize) -> Option<Vec<u8>> {
    let start = index.checked_mul(pixels)?;
    let end = start.checked_add(pixels)?;
    if end.div_ceil(8) > data.len() {
        return None;
    }
    Some((start..end).map(|b| (data[b / 8] >> (b % 8)) & 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_packed_across_byte_boundaries_without_padding() {
        // Two 3×3 frames: 18 bits. Frame 1 starts at bit 9 (byte 1, bit 1).
        let f0 = [1u8, 0, 0, 0, 0, 0, 0, 0, 1];
        let f1 = [0u8, 1, 0, 0, 0, 0, 0, 0, 1];
        let packed = pack_bits([&f0[..], &f1[..]]);
        // bits: 0 and 8 set (frame 0), 10 and 17 set (frame 1).
        assert_eq!(packed, vec![0b0000_0001, 0b0000_0101, 0b0000_0010, 0]);
        assert_eq!(unpack_frame_bits(&packed, 0, 9).unwrap(), f0.to_vec());
        assert_eq!(unpack_frame_bits(&packed, 1, 9).unwrap(), f1.to_vec());
        assert!(unpack_frame_bits(&packed, 4, 9).is_none());
    }

    #[test]
    fn output_is_even_length() {
        assert_eq!(pack_bits([&[1u8; 8][..]]).len(), 2);
        assert_eq!(pack_bits([&[1u8; 16][..]]), vec![255, 255]);
    }
}
