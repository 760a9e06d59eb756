//! NRRD writer for masks: `unsigned char` labels on the mask's grid, in LPS
//! (`space: left-posterior-superior`), with `space directions` and `space origin` from the
//! geometry, so that 3D Slicer, ITK, pynrrd and OHIF's monai-label panel place every voxel where
//! the source volume has it. Encoding `raw` or `gzip`.
//!
//! The voxels are written x fastest, then y, then z: the `[z, y, x]` array's logical order, which
//! is NRRD's (the first `sizes` entry varies fastest).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::output::{write_file, write_labels, STREAM};
use crate::volume::Geometry;

/// Writes `mask` as an NRRD file (atomically); `gzip` selects the `gzip` encoding, else `raw`.
pub fn write_mask(path: &Path, mask: &Mask, gzip: bool) -> Result<()> {
    write_file(path, |w| write_mask_to(mask, gzip, w))
}

/// Encodes `mask` as an NRRD file into `w` (what [`write_mask`] writes); `gzip` selects the
/// `gzip` encoding, else `raw`.
pub fn write_mask_to<W: Write>(mask: &Mask, gzip: bool, mut w: W) -> Result<()> {
    let s = mask.labels.shape();
    let head = header(&mask.geometry, [s[2], s[1], s[0]], gzip)?;
    let io = |e| Error::io("write", STREAM, e);
    w.write_all(head.as_bytes()).map_err(io)?;
    // [z, y, x] in logical order, x fastest: NRRD's order.
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::new(6));
        write_labels(&mask.labels, &mut enc).map_err(io)?;
        enc.finish().map_err(io)?;
    } else {
        write_labels(&mask.labels, &mut w).map_err(io)?;
    }
    Ok(())
}

/// The text header, ending in the blank line that separates it from the data.
fn header(g: &Geometry, sizes_xyz: [usize; 3], gzip: bool) -> Result<String> {
    let finite = g.spacing.iter().all(|&s| s > 0.0 && s.is_finite())
        && g.origin.iter().all(|v| v.is_finite())
        && g.direction.iter().flatten().all(|v| v.is_finite());
    if !finite {
        return Err(Error::InvalidArgument(format!(
            "geometry is not finite or has non-positive spacing: {g:?}"
        )));
    }
    if sizes_xyz.contains(&0) {
        return Err(Error::InvalidArgument(format!(
            "empty mask {sizes_xyz:?} cannot be written as NRRD"
        )));
    }
    // Column c of direction · diag(spacing): the LPS step of index axis c.
    let directions: Vec<String> = (0..3)
        .map(|c| {
            let a = g.axis(c);
            vector([
                a[0] * g.spacing[c],
                a[1] * g.spacing[c],
                a[2] * g.spacing[c],
            ])
        })
        .collect();
    let [x, y, z] = sizes_xyz;
    Ok(format!(
        "NRRD0004\n\
         # Complete NRRD file format specification at:\n\
         # http://teem.sourceforge.net/nrrd/format.html\n\
         # written by slicewise: labels of a segmentation, 0 = background\n\
         type: unsigned char\n\
         dimension: 3\n\
         space: left-posterior-superior\n\
         sizes: {x} {y} {z}\n\
         space directions: {}\n\
         kinds: domain domain domain\n\
         endian: little\n\
         encoding: {}\n\
         space origin: {}\n\
         \n",
        directions.join(" "),
        if gzip { "gzip" } else { "raw" },
        vector(g.origin),
    ))
}

/// An NRRD vector, `(a,b,c)`, each number in its shortest exact decimal form.
fn vector(v: [f64; 3]) -> String {
    // `+ 0.0` turns -0 into 0, which reads better and parses the same.
    format!("({},{},{})", v[0] + 0.0, v[1] + 0.0, v[2] + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn encode_mask(mask: &Mask, gzip: bool) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        write_mask_to(mask, gzip, &mut out)?;
        Ok(out)
    }

    fn mask() -> Mask {
        let g = Geometry {
            spacing: [0.5, 2.0, 3.0],
            origin: [-10.0, 20.5, 7.25],
            direction: [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        };
        let mut m = Mask::zeros([2, 3, 4], g);
        m.labels[[0, 0, 1]] = 1;
        m.labels[[1, 2, 3]] = 2;
        m
    }

    fn split(bytes: &[u8]) -> (String, &[u8]) {
        let end = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("blank line after header");
        (
            String::from_utf8(bytes[..end].to_vec()).unwrap(),
            &bytes[end + 2..],
        )
    }

    #[test]
    fn raw_header_carries_the_grid_and_data_is_x_fastest() {
        let bytes = encode_mask(&mask(), false).unwrap();
        let (head, data) = split(&bytes);
        assert!(head.starts_with("NRRD0004\n"));
        assert!(head.contains("\nsizes: 4 3 2\n"), "{head}");
        assert!(
            head.contains("\nspace directions: (0,-0.5,0) (0,0,2) (3,0,0)\n"),
            "{head}"
        );
        assert!(head.contains("\nspace origin: (-10,20.5,7.25)"), "{head}");
        assert!(head.contains("\nencoding: raw\n"));
        assert_eq!(data.len(), 24);
        assert_eq!(data[1], 1);
        assert_eq!(data[23], 2);
    }

    #[test]
    fn gzip_encoding_round_trips() {
        let bytes = encode_mask(&mask(), true).unwrap();
        let (head, data) = split(&bytes);
        assert!(head.contains("\nencoding: gzip\n"));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut raw)
            .unwrap();
        let plain = encode_mask(&mask(), false).unwrap();
        assert_eq!(raw, split(&plain).1);
    }

    #[test]
    fn degenerate_geometry_is_refused() {
        let mut m = mask();
        m.geometry.spacing[1] = 0.0;
        assert!(encode_mask(&m, false).is_err());
    }
}
