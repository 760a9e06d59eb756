//! The volume geometry of a NIfTI header, chosen as nibabel's `img.affine` chooses it.

// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use crate::formats::nifti::header::Header;
use crate::formats::nifti::rotation::{max_cos, nearest_orthonormal};
use crate::volume::Geometry;

/// Largest |cos| between two index axes accepted as orthogonal.
const ORTHO_TOL: f64 = 1e-4;

/// The geometry of `h`: sform when `sform_code != 0`, else qform when `qform_code != 0`, else the
/// pixdim fallback. A transform that cannot make a geometry (zero or non-finite column) falls
/// through to the next, and so does a singular one; a sheared one is kept exactly (its direction
/// columns are unit vectors but not orthogonal). Each such decision is recorded in `warnings`.
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
            Some(g) => {
                if i > 0 {
                    warnings.push(format!("using the {name} instead"));
                }
                if nearest_orthonormal(&g.direction).is_some() {
                    // Kept exactly: every mask and conversion written for this input must carry
                    // its affine, and orthonormalising moved voxels by up to several voxels.
                    if max_cos(&g.direction) > ORTHO_TOL {
                        warnings.push(format!(
                            "the {name} has shear (non-orthogonal axes): kept as is, so the \
                             direction matrix is not orthonormal"
                        ));
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
