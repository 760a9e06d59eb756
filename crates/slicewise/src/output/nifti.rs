//! NIfTI-1 writers: one file (`.nii`, or `.nii.gz` when the name ends in `.gz`), magic `n+1`,
//! `vox_offset` 352, both the sform and the qform set from the geometry.
//!
//! Both transforms get code 1 (`NIFTI_XFORM_SCANNER_ANAT`): our geometry is the scanner's patient
//! coordinate system (read from DICOM, or carried over from the input file), which is what
//! dcm2niix writes too. The sform holds the exact affine; the qform its rigid part (with
//! `qfac = -1` for left-handed direction matrices), which equals the sform for every orthonormal
//! direction matrix.

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::nifti::header::NIFTI1_HEADER_SIZE;
use crate::formats::nifti::rotation::{
    det, matrix_to_quaternion, nearest_orthonormal, quaternion_abcd_to_matrix, quaternion_to_matrix,
};
use crate::mask::Mask;
use crate::output::{write_file, write_labels, STREAM};
use crate::volume::{Geometry, Volume};

const DT_UINT8: i16 = 2;
const DT_FLOAT32: i16 = 16;
const XFORM_SCANNER_ANAT: i16 = 1;
const UNITS_MM: u8 = 2;
/// Header (348) plus the 4-byte extension flag.
const VOX_OFFSET: usize = 352;

/// Writes a mask as a NIfTI-1 file (atomically), gzipped when the name ends in `.gz`: see
/// [`write_mask_to`].
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    write_file(path, |w| write_mask_to(mask, is_gz(path), w))
}

/// Writes a volume as a NIfTI-1 file (atomically), gzipped when the name ends in `.gz`: see
/// [`write_volume_to`].
pub fn write_volume(path: &Path, volume: &Volume) -> Result<()> {
    write_file(path, |w| write_volume_to(volume, is_gz(path), w))
}

/// Encodes a mask as NIfTI-1 uint8 (`scl_slope` 1, `scl_inter` 0: values are the labels) with
/// the mask's geometry in both sform and qform, into `w`; `gzip` for a `.nii.gz` file.
pub fn write_mask_to<W: Write>(mask: &Mask, gzip: bool, w: W) -> Result<()> {
    let s = mask.labels.shape();
    let dims = [s[2], s[1], s[0], 1];
    let header = build_header(&mask.geometry, dims, DT_UINT8, 8, "slicewise mask")?;
    // Standard layout is [z, y, x] with x fastest, NIfTI's order.
    encode(&header, gzip, w, |w| write_labels(&mask.labels, w))
}

/// Encodes a volume as NIfTI-1 float32 (channels as the 4th dimension) with its geometry in
/// both sform and qform, into `w`; `gzip` for a `.nii.gz` file.
pub fn write_volume_to<W: Write>(volume: &Volume, gzip: bool, w: W) -> Result<()> {
    let s = volume.data.shape();
    let dims = [s[3], s[2], s[1], s[0]];
    let header = build_header(&volume.geometry, dims, DT_FLOAT32, 32, "slicewise volume")?;
    let data = &volume.data;
    encode(&header, gzip, w, |w| {
        // Logical [c, z, y, x] order, x fastest, in bounded chunks.
        let mut buf = Vec::with_capacity(1 << 18);
        for &v in data.iter() {
            buf.extend_from_slice(&v.to_le_bytes());
            if buf.len() >= 1 << 18 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    })
}

/// Whether `path` names a gzipped file.
fn is_gz(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".gz"))
        .unwrap_or(false)
}

/// `header` then the voxels `data` writes, into `w`, through gzip when `gzip`.
fn encode<W: Write>(
    header: &[u8],
    gzip: bool,
    mut w: W,
    data: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e| Error::io("write", STREAM, e);
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::new(6));
        enc.write_all(header).map_err(io)?;
        data(&mut enc).map_err(io)?;
        enc.finish().map_err(io)?;
    } else {
        w.write_all(header).map_err(io)?;
        data(&mut w).map_err(io)?;
    }
    Ok(())
}

/// The 352 bytes before the voxels: the NIfTI-1 header and a zero extension flag.
/// `dims` is (x, y, z, channels).
fn build_header(
    g: &Geometry,
    dims: [usize; 4],
    datatype: i16,
    bitpix: i16,
    descrip: &str,
) -> Result<Vec<u8>> {
    let mut d16 = [0i16; 4];
    for (o, &d) in d16.iter_mut().zip(&dims) {
        *o = i16::try_from(d).ok().filter(|&v| v > 0).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "dimensions {dims:?} do not fit a NIfTI-1 header (1 to 32767 each)"
            ))
        })?;
    }
    let affine = g.affine_ras();
    if affine.iter().flatten().any(|v| !v.is_finite())
        || g.spacing.iter().any(|&s| !(s > 0.0 && s.is_finite()))
    {
        return Err(Error::InvalidArgument(format!(
            "geometry is not finite or has non-positive spacing: {g:?}"
        )));
    }
    let (quatern, qfac) = qform_of(g);

    let mut h = vec![0u8; VOX_OFFSET];
    let mut put = |off: usize, b: &[u8]| h[off..off + b.len()].copy_from_slice(b);
    put(0, &(NIFTI1_HEADER_SIZE as i32).to_le_bytes());
    put(38, b"r"); // regular
    let ndim: i16 = if dims[3] > 1 { 4 } else { 3 };
    let dim = [ndim, d16[0], d16[1], d16[2], d16[3], 1, 1, 1];
    for (i, v) in dim.iter().enumerate() {
        put(40 + 2 * i, &v.to_le_bytes());
    }
    put(70, &datatype.to_le_bytes());
    put(72, &bitpix.to_le_bytes());
    let pixdim = [
        qfac as f32,
        g.spacing[0] as f32,
        g.spacing[1] as f32,
        g.spacing[2] as f32,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (i, v) in pixdim.iter().enumerate() {
        put(76 + 4 * i, &v.to_le_bytes());
    }
    put(108, &(VOX_OFFSET as f32).to_le_bytes());
    put(112, &1f32.to_le_bytes()); // scl_slope
    put(116, &0f32.to_le_bytes()); // scl_inter
    put(123, &[UNITS_MM]);
    let desc = descrip.as_bytes();
    put(148, &desc[..desc.len().min(79)]);
    put(252, &XFORM_SCANNER_ANAT.to_le_bytes());
    put(254, &XFORM_SCANNER_ANAT.to_le_bytes());
    for i in 0..3 {
        put(256 + 4 * i, &(quatern[i] as f32).to_le_bytes());
        put(268 + 4 * i, &(affine[i][3] as f32).to_le_bytes());
    }
    for r in 0..3 {
        for c in 0..4 {
            put(280 + 16 * r + 4 * c, &(affine[r][c] as f32).to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    Ok(h)
}

/// Quaternion (b, c, d) and qfac of the geometry's RAS rotation. A left-handed direction matrix
/// gets qfac −1 with its third column negated, as the NIfTI standard prescribes; shear is removed
/// first (the qform can only hold a rotation).
fn qform_of(g: &Geometry) -> ([f64; 3], f64) {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = if i < 2 {
                -g.direction[i][j]
            } else {
                g.direction[i][j]
            };
        }
    }
    let r = nearest_orthonormal(&r).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let mut r = r;
    let qfac = if det(&r) < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    (best_f32_quaternion(&r), qfac)
}

/// The quaternion (b, c, d) rounded to f32 such that the rotation a reader rebuilds from it is
/// closest to `r`. Near a 180° rotation `a = sqrt(1 - b² - c² - d²)` is tiny and very sensitive
/// to the rounding of b, c, d, all the more for readers that compute `a` in f32 as nibabel does;
/// so the f32 values within two ulps of each component are tried, scored under both f64 and f32
/// arithmetic. (For sct-spinalcord's LAS mt1, nibabel's f32 arithmetic alone limits its qform to
/// about 3e-6 rad whatever is stored; readers computing in f64 get ~1e-7.)
fn best_f32_quaternion(r: &[[f64; 3]; 3]) -> [f64; 3] {
    let q = matrix_to_quaternion(r);
    let near = |v: f64| {
        let f = v as f32;
        [
            f.next_down().next_down(),
            f.next_down(),
            f,
            f.next_up(),
            f.next_up().next_up(),
        ]
    };
    let err = |m: [[f64; 3]; 3]| {
        let mut e: f64 = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                e = e.max((m[i][j] - r[i][j]).abs());
            }
        }
        e
    };
    let (nb, nc, nd) = (near(q[0]), near(q[1]), near(q[2]));
    let mut best = (f64::INFINITY, q);
    for &b in &nb {
        for &c in &nc {
            for &d in &nd {
                let cand = [b as f64, c as f64, d as f64];
                let e64 = err(quaternion_to_matrix(cand[0], cand[1], cand[2]));
                let w2 = 1.0f32 - (b * b + c * c + d * d);
                let a32 = if w2 > 0.0 { w2.sqrt() as f64 } else { 0.0 };
                let e32 = err(quaternion_abcd_to_matrix(a32, cand));
                let e = e64.max(e32);
                if e < best.0 {
                    best = (e, cand);
                }
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::nifti::header::parse;

    #[test]
    fn written_header_parses_back_to_the_same_qform_and_sform() {
        let g = Geometry {
            spacing: [0.5, 0.75, 3.0],
            origin: [10.0, -20.0, 5.0],
            // PSR-like, left-handed in RAS
            direction: [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
        };
        let h = build_header(&g, [4, 5, 6, 1], DT_UINT8, 8, "t").unwrap();
        let p = parse(&h).unwrap();
        let want = g.affine_ras();
        for (name, a) in [("sform", p.sform()), ("qform", p.qform())] {
            for r in 0..4 {
                for c in 0..4 {
                    assert!(
                        (a[r][c] - want[r][c]).abs() < 1e-5,
                        "{name} {a:?} vs {want:?}"
                    );
                }
            }
        }
        assert_eq!(&p.dim[..5], &[3, 4, 5, 6, 1]);
    }
}
