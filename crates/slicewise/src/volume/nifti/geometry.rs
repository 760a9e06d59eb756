//! The volume geometry of a NIfTI header, chosen as nibabel's `img.affine` chooses it.

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use super::header::Header;
use crate::volume::Geometry;

/// Largest |cos| between two index axes accepted as orthogonal.
const ORTHO_TOL: f64 = 1e-4;

/// The geometry of `h`: sform when `sform_code != 0`, else qform when `qform_code != 0`, else the
/// pixdim fallback. A transform that cannot make a geometry (zero or non-finite column) falls
/// through to the next; sheared ones keep spacing and origin with the nearest orthonormal
/// direction. Each such decision is recorded in `warnings`.
pub(super) fn from_header(h: &Header, warnings: &mut Vec<String>) -> Geometry {
    let mut candidates: Vec<(&str, [[f64; 4]; 4])> = Vec::new();
    if h.sform_code != 0 {
        candidates.push(("sform", h.sform()));
    }
    if h.qform_code != 0 {
        candidates.push(("qform", h.qform()));
    }
    if candidates.is_empty() {
        warnings.push(
            "neither sform nor qform is set: geometry from pixdim only (nibabel's fallback affine)"
                .to_string(),
        );
    }
    candidates.push(("pixdim fallback", h.base_affine()));
    for (i, (name, a)) in candidates.iter().enumerate() {
        match Geometry::from_affine_ras(a) {
            Some(mut g) => {
                if i > 0 {
                    warnings.push(format!("using the {name} instead"));
                }
                if let Some(d) = nearest_orthonormal(&g.direction) {
                    if max_cos(&g.direction) > ORTHO_TOL {
                        warnings.push(format!(
                            "the {name} has shear (non-orthogonal axes); using the nearest orthonormal directions"
                        ));
                        g.direction = d;
                    }
                    return g;
                }
                warnings.push(format!("the {name} is singular"));
            }
            None => warnings.push(format!(
                "the {name} is degenerate (a zero or non-finite axis) and was ignored"
            )),
        }
    }
    warnings.push("no usable transform: using 1 mm identity geometry".to_string());
    Geometry::identity()
}

fn max_cos(d: &[[f64; 3]; 3]) -> f64 {
    let col = |c: usize| [d[0][c], d[1][c], d[2][c]];
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    dot(col(0), col(1))
        .abs()
        .max(dot(col(0), col(2)).abs())
        .max(dot(col(1), col(2)).abs())
}

fn det(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The orthonormal matrix nearest to `m` (polar decomposition by Newton iteration), or `None`
/// when `m` is (nearly) singular.
pub(crate) fn nearest_orthonormal(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let mut q = *m;
    for _ in 0..50 {
        let dt = det(&q);
        if dt.is_nan() || dt.abs() <= 1e-8 {
            return None;
        }
        // inverse transpose = cofactor matrix / det
        let mut cof = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
                let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
                cof[r][c] = q[r1][c1] * q[r2][c2] - q[r1][c2] * q[r2][c1];
            }
        }
        let mut next = [[0.0; 3]; 3];
        let mut change: f64 = 0.0;
        for r in 0..3 {
            for c in 0..3 {
                next[r][c] = 0.5 * (q[r][c] + cof[r][c] / dt);
                change = change.max((next[r][c] - q[r][c]).abs());
            }
        }
        q = next;
        if change < 1e-15 {
            break;
        }
    }
    q.iter().flatten().all(|v| v.is_finite()).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_orthonormal_of_rotation_is_itself_and_shear_is_removed() {
        let r = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]];
        let q = nearest_orthonormal(&r).unwrap();
        assert_eq!(q, r);
        let s = [[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let q = nearest_orthonormal(&s).unwrap();
        assert!(max_cos(&q) < 1e-12);
        assert!((det(&q) - 1.0).abs() < 1e-12);
        assert!(
            nearest_orthonormal(&[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).is_none()
        );
    }
}
