//! Rotations of the NIfTI qform: quaternion ↔ matrix conversions as nifti1_io and nibabel compute
//! them, and the nearest orthonormal matrix (to strip shear before a qform is made or trusted).

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

/// Rotation matrix of the unit quaternion (a, b, c, d) with `a` derived from b, c, d. When
/// b² + c² + d² exceeds 1 (rounding), `a` is 0 and (b, c, d) is renormalised, as nifti1_io does.
pub fn quaternion_to_matrix(b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    let (mut b, mut c, mut d) = (b, c, d);
    let s = b * b + c * c + d * d;
    let a = if s < 1.0 {
        (1.0 - s).sqrt()
    } else {
        let n = s.sqrt();
        if n > 0.0 && n.is_finite() {
            b /= n;
            c /= n;
            d /= n;
        }
        0.0
    };
    quaternion_abcd_to_matrix(a, [b, c, d])
}

/// Rotation matrix of the quaternion (a, b, c, d), normalised first (the writer searches float32
/// quaternions whose `a` is stored implicitly).
pub fn quaternion_abcd_to_matrix(a: f64, [b, c, d]: [f64; 3]) -> [[f64; 3]; 3] {
    let n = (a * a + b * b + c * c + d * d).sqrt();
    let (a, b, c, d) = (a / n, b / n, c / n, d / n);
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ]
}

/// Quaternion (b, c, d, with a ≥ 0) of a proper rotation matrix (det +1), as nifti1_io's
/// `nifti_mat44_to_quatern` computes it.
pub fn matrix_to_quaternion(r: &[[f64; 3]; 3]) -> [f64; 3] {
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, b, c, d): (f64, f64, f64, f64);
    if trace > 0.5 {
        let a0 = 0.5 * trace.sqrt();
        a = a0;
        b = 0.25 * (r32 - r23) / a0;
        c = 0.25 * (r13 - r31) / a0;
        d = 0.25 * (r21 - r12) / a0;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            let b0 = 0.5 * xd.sqrt();
            b = b0;
            c = 0.25 * (r12 + r21) / b0;
            d = 0.25 * (r13 + r31) / b0;
            a = 0.25 * (r32 - r23) / b0;
        } else if yd > 1.0 {
            let c0 = 0.5 * yd.sqrt();
            c = c0;
            b = 0.25 * (r12 + r21) / c0;
            d = 0.25 * (r23 + r32) / c0;
            a = 0.25 * (r13 - r31) / c0;
        } else {
            let d0 = 0.5 * zd.sqrt();
            d = d0;
            b = 0.25 * (r13 + r31) / d0;
            c = 0.25 * (r23 + r32) / d0;
            a = 0.25 * (r21 - r12) / d0;
        }
    }
    if a < 0.0 {
        [-b, -c, -d]
    } else {
        [b, c, d]
    }
}

/// Largest |cos| between two columns of `d` (0 for orthogonal axes).
pub(crate) fn max_cos(d: &[[f64; 3]; 3]) -> f64 {
    let col = |c: usize| [d[0][c], d[1][c], d[2][c]];
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    dot(col(0), col(1))
        .abs()
        .max(dot(col(0), col(2)).abs())
        .max(dot(col(1), col(2)).abs())
}

/// Determinant of a 3×3 matrix.
pub(crate) fn det(m: &[[f64; 3]; 3]) -> f64 {
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
    fn quaternion_round_trip() {
        // 90° about z, and a 180° flip about x (a = 0), and a general rotation.
        let mats = [
            [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
            [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
            quaternion_to_matrix(0.1, -0.3, 0.5),
        ];
        for m in mats {
            let [b, c, d] = matrix_to_quaternion(&m);
            let back = quaternion_to_matrix(b, c, d);
            for i in 0..3 {
                for j in 0..3 {
                    assert!((back[i][j] - m[i][j]).abs() < 1e-12, "{m:?} vs {back:?}");
                }
            }
        }
    }

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
