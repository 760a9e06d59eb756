//! Plane geometry of DICOM frames: the normal of an ImageOrientationPatient and the 3-vector
//! arithmetic it needs, shared by the header scan (which places enhanced multi-frame slices
//! along the normal) and the assembly (which sorts and spaces frames along it).

/// Unit normal of an ImageOrientationPatient (row cosine × column cosine).
pub(super) fn normal(iop: &[f64; 6]) -> [f64; 3] {
    let r = [iop[0], iop[1], iop[2]];
    let c = [iop[3], iop[4], iop[5]];
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    unit(n).unwrap_or([0.0, 0.0, 1.0])
}

/// `v` scaled to length 1; `None` for a zero or non-finite vector.
pub(super) fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let len = dot(v, v).sqrt();
    (len.is_finite() && len > 1e-12).then(|| [v[0] / len, v[1] / len, v[2] / len])
}

/// The dot product.
pub(super) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// `a - b`.
pub(super) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
