//! Voxel-to-patient geometry.
//!
//! slicewise uses the **LPS** patient coordinate system (DICOM's and ITK's): +x points to the
//! patient's Left, +y to Posterior, +z to Superior. NIfTI's RAS affines are converted on read and
//! write (negate the first two rows). A point's position in millimetres is
//! `origin + direction · diag(spacing) · [i, j, k]`, where `i` is the column (x) index, `j` the row
//! (y) index and `k` the slice (z) index, i.e. the last, middle and first spatial axes of a
//! volume's `[c, z, y, x]` array.

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

/// Spacing, origin and direction cosines of a 3-D voxel grid, in LPS millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Voxel size along the i (x, column), j (y, row) and k (z, slice) index axes, in mm; > 0.
    pub spacing: [f64; 3],
    /// LPS position of the centre of voxel (0, 0, 0), in mm.
    pub origin: [f64; 3],
    /// Direction cosines, row-major: `direction[r][c]` is component `r` (L, P, S) of the unit
    /// vector of index axis `c` (i, j, k). Columns have unit length and are orthogonal, except
    /// for a DICOM gantry tilt or a sheared NIfTI affine: those are kept exactly, so that masks
    /// carry their input's affine.
    pub direction: [[f64; 3]; 3],
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry::identity()
    }
}

impl Geometry {
    /// 1 mm isotropic, origin 0, axes aligned with LPS.
    pub fn identity() -> Self {
        Geometry {
            spacing: [1.0; 3],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// The 4×4 index-to-LPS affine.
    pub fn affine_lps(&self) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for r in 0..3 {
            for c in 0..3 {
                a[r][c] = self.direction[r][c] * self.spacing[c];
            }
            a[r][3] = self.origin[r];
        }
        a[3][3] = 1.0;
        a
    }

    /// The 4×4 index-to-RAS affine, as NIfTI and nibabel use it.
    pub fn affine_ras(&self) -> [[f64; 4]; 4] {
        let mut a = self.affine_lps();
        for row in a.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        a
    }

    /// Builds a geometry from an index-to-LPS affine (the upper 3×4 part is used). Returns `None`
    /// when a column has zero length or a value is not finite.
    pub fn from_affine_lps(a: &[[f64; 4]; 4]) -> Option<Self> {
        let mut g = Geometry::identity();
        for c in 0..3 {
            let len = (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt();
            if !(len.is_finite() && len > 0.0) {
                return None;
            }
            g.spacing[c] = len;
            for r in 0..3 {
                g.direction[r][c] = a[r][c] / len;
            }
        }
        for r in 0..3 {
            if !a[r][3].is_finite() {
                return None;
            }
            g.origin[r] = a[r][3];
        }
        Some(g)
    }

    /// Builds a geometry from an index-to-RAS affine (NIfTI's sform or qform).
    pub fn from_affine_ras(a: &[[f64; 4]; 4]) -> Option<Self> {
        let mut lps = *a;
        for row in lps.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        Geometry::from_affine_lps(&lps)
    }

    /// LPS position (mm) of a continuous index `[i, j, k]`.
    pub fn index_to_lps(&self, ijk: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin;
        for (r, pr) in p.iter_mut().enumerate() {
            for c in 0..3 {
                *pr += self.direction[r][c] * self.spacing[c] * ijk[c];
            }
        }
        p
    }

    /// Unit vector of index axis `c` (0 = i, 1 = j, 2 = k) in LPS.
    pub fn axis(&self, c: usize) -> [f64; 3] {
        [
            self.direction[0][c],
            self.direction[1][c],
            self.direction[2][c],
        ]
    }

    /// Volume of one voxel in millilitres.
    pub fn voxel_volume_ml(&self) -> f64 {
        self.spacing.iter().product::<f64>() / 1000.0
    }

    /// Three-letter orientation code (ITK/DICOM style, LPS letters: the direction each index axis
    /// points to), e.g. `"LPS"` for identity, `"RAS"` for a NIfTI RAS+ image.
    pub fn orientation_code(&self) -> String {
        (0..3)
            .map(|c| {
                let v = self.axis(c);
                let (r, val) = (0..3)
                    .map(|r| (r, v[r]))
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap_or((0, 1.0));
                match (r, val >= 0.0) {
                    (0, true) => 'L',
                    (0, false) => 'R',
                    (1, true) => 'P',
                    (1, false) => 'A',
                    (2, true) => 'S',
                    _ => 'I',
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ras_lps_round_trip_negates_first_two_rows() {
        let g = Geometry {
            spacing: [0.5, 0.75, 3.0],
            origin: [10.0, -20.0, 5.0],
            direction: [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
        };
        let ras = g.affine_ras();
        assert_eq!(ras[0][3], -10.0);
        assert_eq!(ras[1][3], 20.0);
        assert_eq!(ras[2][3], 5.0);
        let back = Geometry::from_affine_ras(&ras).unwrap();
        assert_eq!(back, g);
        assert_eq!(g.orientation_code(), "PIL");
    }

    #[test]
    fn index_to_lps_uses_spacing_and_direction() {
        let mut g = Geometry::identity();
        g.spacing = [2.0, 3.0, 4.0];
        g.origin = [1.0, 1.0, 1.0];
        assert_eq!(g.index_to_lps([1.0, 1.0, 1.0]), [3.0, 4.0, 5.0]);
        assert!((g.voxel_volume_ml() - 0.024).abs() < 1e-12);
    }

    #[test]
    fn degenerate_affine_is_rejected() {
        let a = [[0.0; 4]; 4];
        assert!(Geometry::from_affine_lps(&a).is_none());
    }
}
