//! NIfTI-1 and NIfTI-2 header parsing, with byte-order detection, and the header's affines.
//! The writer ([`output::nifti`](crate::output::nifti)) lays its header out at the same offsets.
//!
//! Both layouts are parsed by hand from byte offsets (rather than through the `nifti` crate) so
//! that NIfTI-2 is covered and no header value can make us panic: every field is read with a
//! bounds-checked accessor and every derived quantity is validated before use.

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use super::rotation::quaternion_to_matrix;

/// Size of a NIfTI-1 header in bytes.
pub const NIFTI1_HEADER_SIZE: usize = 348;
/// Size of a NIfTI-2 header in bytes.
pub const NIFTI2_HEADER_SIZE: usize = 540;

/// Which header layout a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 348-byte NIfTI-1 header.
    Nifti1,
    /// 540-byte NIfTI-2 header.
    Nifti2,
}

/// The fields of a NIfTI-1/-2 header that reading needs, widened to the NIfTI-2 types.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Layout version.
    pub version: Version,
    /// True when the file is big-endian (header and data).
    pub big_endian: bool,
    /// True for single-file magic (`n+1` / `n+2`), false for `.hdr`/`.img` pairs (`ni1` / `ni2`).
    pub single_file: bool,
    /// `dim[0..8]`.
    pub dim: [i64; 8],
    /// `pixdim[0..8]`.
    pub pixdim: [f64; 8],
    /// NIfTI datatype code.
    pub datatype: i16,
    /// Bits per voxel as stated in the header.
    pub bitpix: i16,
    /// Byte offset of the voxel data in the data file.
    pub vox_offset: f64,
    /// Data scaling slope.
    pub scl_slope: f64,
    /// Data scaling intercept.
    pub scl_inter: f64,
    /// `dim_info` (frequency, phase and slice dimensions, two bits each).
    pub dim_info: u8,
    /// qform code (0 = unset).
    pub qform_code: i32,
    /// sform code (0 = unset).
    pub sform_code: i32,
    /// Quaternion b, c, d.
    pub quatern: [f64; 3],
    /// qoffset x, y, z.
    pub qoffset: [f64; 3],
    /// sform rows x, y, z.
    pub srow: [[f64; 4]; 3],
    /// `descrip`, up to its first NUL.
    pub descrip: String,
    /// `intent_name`, up to its first NUL.
    pub intent_name: String,
}

/// Little bounds-checked reader over a header buffer of known length.
struct Fields<'a> {
    b: &'a [u8],
    be: bool,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut a = [0u8; N];
        if let Some(s) = self.b.get(off..off + N) {
            a.copy_from_slice(s);
        }
        if self.be {
            a.reverse();
        }
        a
    }
    fn i16(&self, off: usize) -> i16 {
        i16::from_le_bytes(self.bytes(off))
    }
    fn i32(&self, off: usize) -> i32 {
        i32::from_le_bytes(self.bytes(off))
    }
    fn i64(&self, off: usize) -> i64 {
        i64::from_le_bytes(self.bytes(off))
    }
    fn f32(&self, off: usize) -> f64 {
        f32::from_le_bytes(self.bytes(off)) as f64
    }
    fn f64(&self, off: usize) -> f64 {
        f64::from_le_bytes(self.bytes(off))
    }
    fn text(&self, off: usize, len: usize) -> String {
        let s = self.b.get(off..off + len).unwrap_or(&[]);
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).trim().to_string()
    }
}

/// Decides the layout and byte order from `sizeof_hdr` (the first four bytes).
pub fn detect(b: &[u8]) -> Result<(Version, bool), String> {
    let first: [u8; 4] = match b.get(..4) {
        Some(s) => [s[0], s[1], s[2], s[3]],
        None => {
            return Err(format!(
                "file too short for a NIfTI header ({} bytes)",
                b.len()
            ))
        }
    };
    for (v, be) in [
        (i32::from_le_bytes(first), false),
        (i32::from_be_bytes(first), true),
    ] {
        match v {
            348 => return Ok((Version::Nifti1, be)),
            540 => return Ok((Version::Nifti2, be)),
            _ => {}
        }
    }
    Err(format!(
        "not a NIfTI header: sizeof_hdr is {} (expected 348 or 540)",
        i32::from_le_bytes(first)
    ))
}

/// Parses a header from the start of `b` (which must hold at least the header size).
pub fn parse(b: &[u8]) -> Result<Header, String> {
    let (version, be) = detect(b)?;
    let need = match version {
        Version::Nifti1 => NIFTI1_HEADER_SIZE,
        Version::Nifti2 => NIFTI2_HEADER_SIZE,
    };
    if b.len() < need {
        return Err(format!("truncated header: {} of {need} bytes", b.len()));
    }
    let f = Fields { b, be };
    match version {
        Version::Nifti1 => parse_nifti1(&f),
        Version::Nifti2 => parse_nifti2(&f),
    }
}

/// True for a 348-byte ANALYZE 7.5 header: NIfTI-1's layout without its magic (the last four
/// bytes, ANALYZE's `smin`, left zero).
pub fn is_analyze(b: &[u8]) -> bool {
    matches!(detect(b), Ok((Version::Nifti1, _)))
        && b.get(344..NIFTI1_HEADER_SIZE) == Some(&[0u8; 4][..])
}

/// The 348-byte NIfTI-1 layout (`f` holds at least that many bytes).
fn parse_nifti1(f: &Fields<'_>) -> Result<Header, String> {
    let magic = &f.b[344..348];
    let single_file = match magic {
        b"n+1\0" => true,
        b"ni1\0" => false,
        _ => {
            return Err(format!(
                "bad NIfTI-1 magic {magic:?} (expected \"n+1\" or \"ni1\")"
            ))
        }
    };
    let mut dim = [0i64; 8];
    let mut pixdim = [0f64; 8];
    for i in 0..8 {
        dim[i] = f.i16(40 + 2 * i) as i64;
        pixdim[i] = f.f32(76 + 4 * i);
    }
    let mut srow = [[0f64; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f32(280 + 16 * r + 4 * c);
        }
    }
    Ok(Header {
        version: Version::Nifti1,
        big_endian: f.be,
        single_file,
        dim,
        pixdim,
        datatype: f.i16(70),
        bitpix: f.i16(72),
        vox_offset: f.f32(108),
        scl_slope: f.f32(112),
        scl_inter: f.f32(116),
        dim_info: f.b[39],
        qform_code: f.i16(252) as i32,
        sform_code: f.i16(254) as i32,
        quatern: [f.f32(256), f.f32(260), f.f32(264)],
        qoffset: [f.f32(268), f.f32(272), f.f32(276)],
        srow,
        descrip: f.text(148, 80),
        intent_name: f.text(328, 16),
    })
}

/// The 540-byte NIfTI-2 layout (`f` holds at least that many bytes).
fn parse_nifti2(f: &Fields<'_>) -> Result<Header, String> {
    let magic = &f.b[4..12];
    let single_file = match &magic[..4] {
        b"n+2\0" => true,
        b"ni2\0" => false,
        _ => {
            return Err(format!(
                "bad NIfTI-2 magic {magic:?} (expected \"n+2\" or \"ni2\")"
            ))
        }
    };
    let mut dim = [0i64; 8];
    let mut pixdim = [0f64; 8];
    for i in 0..8 {
        dim[i] = f.i64(16 + 8 * i);
        pixdim[i] = f.f64(104 + 8 * i);
    }
    let mut srow = [[0f64; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f64(400 + 32 * r + 8 * c);
        }
    }
    Ok(Header {
        version: Version::Nifti2,
        big_endian: f.be,
        single_file,
        dim,
        pixdim,
        datatype: f.i16(12),
        bitpix: f.i16(14),
        vox_offset: f.i64(168) as f64,
        scl_slope: f.f64(176),
        scl_inter: f.f64(184),
        dim_info: f.b[524],
        qform_code: f.i32(344),
        sform_code: f.i32(348),
        quatern: [f.f64(352), f.f64(360), f.f64(368)],
        qoffset: [f.f64(376), f.f64(384), f.f64(392)],
        srow,
        descrip: f.text(240, 80),
        intent_name: f.text(508, 16),
    })
}

impl Header {
    /// Size of this header layout in bytes.
    pub fn size(&self) -> usize {
        match self.version {
            Version::Nifti1 => NIFTI1_HEADER_SIZE,
            Version::Nifti2 => NIFTI2_HEADER_SIZE,
        }
    }

    /// The sform as a 4×4 RAS affine.
    pub fn sform(&self) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        a[..3].copy_from_slice(&self.srow);
        a[3][3] = 1.0;
        a
    }

    /// The qform as a 4×4 RAS affine, computed as nibabel's `get_qform` does (the quaternion's
    /// `a` from the unit-norm constraint, qfac from `pixdim[0]` with 0 counting as 1). Negative
    /// voxel sizes, which nibabel refuses, are taken by absolute value.
    pub fn qform(&self) -> [[f64; 4]; 4] {
        let [b, c, d] = self.quatern;
        let r = quaternion_to_matrix(b, c, d);
        let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let vox = [
            self.pixdim[1].abs(),
            self.pixdim[2].abs(),
            self.pixdim[3].abs() * qfac,
        ];
        let mut a = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] = r[i][j] * vox[j];
            }
            a[i][3] = self.qoffset[i];
        }
        a[3][3] = 1.0;
        a
    }

    /// nibabel's fallback affine when neither form is set (`get_base_affine`): diagonal voxel
    /// sizes with x flipped, the array centre at the origin.
    pub fn base_affine(&self) -> [[f64; 4]; 4] {
        let ndim = self.dim[0].clamp(0, 7) as usize;
        let mut a = [[0.0; 4]; 4];
        for i in 0..3 {
            let (n, z) = if i < ndim {
                (self.dim[i + 1] as f64, self.pixdim[i + 1])
            } else {
                (1.0, 1.0)
            };
            let z = if i == 0 { -z } else { z };
            a[i][i] = z;
            a[i][3] = -(n - 1.0) / 2.0 * z;
        }
        a[3][3] = 1.0;
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_byte_order_and_version() {
        assert_eq!(detect(&348i32.to_le_bytes()), Ok((Version::Nifti1, false)));
        assert_eq!(detect(&348i32.to_be_bytes()), Ok((Version::Nifti1, true)));
        assert_eq!(detect(&540i32.to_be_bytes()), Ok((Version::Nifti2, true)));
        assert!(detect(&[0, 0]).is_err());
        assert!(detect(&349i32.to_le_bytes()).is_err());
    }

    #[test]
    fn short_or_bad_magic_is_an_error_not_a_panic() {
        let mut b = vec![0u8; 348];
        b[..4].copy_from_slice(&348i32.to_le_bytes());
        assert!(parse(&b).unwrap_err().contains("magic"));
        assert!(parse(&b[..200]).unwrap_err().contains("truncated"));
        let mut b2 = vec![0u8; 540];
        b2[..4].copy_from_slice(&540i32.to_le_bytes());
        assert!(parse(&b2).is_err());
    }
}
