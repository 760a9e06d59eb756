//! Ordering frames into a volume and deriving its geometry from the DICOM plane attributes.

use std::path::Path;

use super::plane::{dot, normal, sub, unit};
use super::scan::{FrameInfo, Header};
use crate::error::{Error, Result};
use crate::volume::Geometry;

/// One frame of the series: which header (file) and which frame in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef {
    pub file: usize,
    pub frame: usize,
}

/// Relative tolerance on slice steps before a gap is reported.
const STEP_REL_TOL: f64 = 0.01;
/// Absolute tolerance (mm) on slice steps and duplicate positions.
const STEP_ABS_TOL: f64 = 1e-3;
/// Cosine below which the slice step is not parallel to the normal (about 0.8 degrees).
const TILT_COS: f64 = 0.9999;
/// ImageOrientationPatient of an axial slice (rows along x, columns along y).
const IDENTITY_IOP: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

impl FrameRef {
    /// The header facts of this frame.
    fn info<'a>(&self, headers: &'a [Header]) -> &'a FrameInfo {
        &headers[self.file].frames[self.frame]
    }

    /// ImagePositionPatient of this frame (the origin when absent).
    fn position(&self, headers: &[Header]) -> [f64; 3] {
        self.info(headers).position.unwrap_or([0.0; 3])
    }
}

/// The frames of a series in volume z order, its geometry and the warnings found on the way.
pub(crate) struct Assembly {
    pub order: Vec<FrameRef>,
    pub geometry: Geometry,
    pub warnings: Vec<String>,
}

/// Sorts the frames of `headers` (one series) along the slice normal and derives the geometry.
pub(crate) fn assemble(source: &Path, headers: &[Header]) -> Result<Assembly> {
    let first = headers
        .first()
        .ok_or_else(|| Error::format(source, "series without images"))?;
    check_one_shape(first, headers)?;
    let frames: Vec<FrameRef> = headers
        .iter()
        .enumerate()
        .flat_map(|(file, h)| (0..h.frames.len()).map(move |frame| FrameRef { file, frame }))
        .collect();
    let f0 = frames[0].info(headers).clone();
    let mut warnings = Vec::new();
    let spacing_ij = in_plane_spacing(&f0, &mut warnings);
    let all_positioned = frames.iter().all(|f| {
        let info = f.info(headers);
        info.position.is_some() && info.orientation.is_some()
    });
    if !all_positioned {
        return Ok(instance_order(headers, frames, &f0, spacing_ij, warnings));
    }

    let iop = f0.orientation.unwrap_or(IDENTITY_IOP);
    let degenerate = || Error::format(&headers[0].path, "ImageOrientationPatient is degenerate");
    let row = unit([iop[0], iop[1], iop[2]]).ok_or_else(degenerate)?;
    let col = unit([iop[3], iop[4], iop[5]]).ok_or_else(degenerate)?;
    let n = normal(&iop);
    if orientation_varies(headers, &frames, iop) {
        warnings
            .push("ImageOrientationPatient differs between slices: the first one is used".into());
    }
    let keyed = sort_along(headers, &frames, n);
    let order: Vec<FrameRef> = keyed.iter().map(|k| k.1).collect();
    check_no_duplicates(headers, &keyed)?;

    let origin = order[0].position(headers);
    let (k_dir, dz) = if order.len() == 1 {
        let dz = stated_slice_step(&f0).unwrap_or_else(|| {
            warnings.push("single slice without SliceThickness: 1 mm assumed".into());
            1.0
        });
        (n, dz)
    } else {
        slice_step(headers, &keyed, n, &mut warnings)
    };
    if dz <= 0.0 || !dz.is_finite() {
        return Err(Error::format(source, "slice spacing is zero"));
    }
    let geometry = Geometry {
        spacing: [spacing_ij[0], spacing_ij[1], dz],
        origin,
        direction: [
            [row[0], col[0], k_dir[0]],
            [row[1], col[1], k_dir[1]],
            [row[2], col[2], k_dir[2]],
        ],
    };
    Ok(Assembly {
        order,
        geometry,
        warnings,
    })
}

/// Refuses files whose size or samples per pixel differ from the first's: they cannot be
/// slices of one volume.
fn check_one_shape(first: &Header, headers: &[Header]) -> Result<()> {
    for h in headers {
        if (h.rows, h.cols, h.samples_per_pixel)
            != (first.rows, first.cols, first.samples_per_pixel)
        {
            return Err(Error::format(
                &h.path,
                format!(
                    "{}x{} pixels with {} samples, but {} has {}x{} with {}: not one volume",
                    h.cols,
                    h.rows,
                    h.samples_per_pixel,
                    first.path.display(),
                    first.cols,
                    first.rows,
                    first.samples_per_pixel
                ),
            ));
        }
    }
    Ok(())
}

/// Voxel size along i (columns) and j (rows) from PixelSpacing; 1 mm, with a warning, when it
/// is missing or not positive.
fn in_plane_spacing(f0: &FrameInfo, warnings: &mut Vec<String>) -> [f64; 2] {
    match f0.pixel_spacing {
        Some([row, col]) if row > 0.0 && col > 0.0 => [col, row],
        _ => {
            warnings.push("no valid PixelSpacing: assumed 1 mm".into());
            [1.0, 1.0]
        }
    }
}

/// The slice step the header states (SpacingBetweenSlices, else SliceThickness), if positive.
fn stated_slice_step(f0: &FrameInfo) -> Option<f64> {
    f0.spacing_between
        .or(f0.slice_thickness)
        .filter(|v| *v > 0.0)
}

/// Without positions there is no normal to sort along: falls back to InstanceNumber / file /
/// frame order on an identity-oriented grid with the stated slice step (else 1 mm).
fn instance_order(
    headers: &[Header],
    mut frames: Vec<FrameRef>,
    f0: &FrameInfo,
    spacing_ij: [f64; 2],
    mut warnings: Vec<String>,
) -> Assembly {
    frames.sort_by_key(|f| {
        (
            headers[f.file].instance_number.unwrap_or(i64::MAX),
            f.file,
            f.frame,
        )
    });
    warnings.push(
        "ImagePositionPatient/ImageOrientationPatient missing: slices in instance order, \
         identity orientation assumed"
            .into(),
    );
    let dz = stated_slice_step(f0).unwrap_or(1.0);
    let geometry = Geometry {
        spacing: [spacing_ij[0], spacing_ij[1], dz],
        ..Geometry::identity()
    };
    Assembly {
        order: frames,
        geometry,
        warnings,
    }
}

/// True when some frame's orientation differs from `iop` by more than rounding.
fn orientation_varies(headers: &[Header], frames: &[FrameRef], iop: [f64; 6]) -> bool {
    frames.iter().any(|f| {
        let o = f.info(headers).orientation.unwrap_or(iop);
        o.iter().zip(iop.iter()).any(|(a, b)| (a - b).abs() > 1e-4)
    })
}

/// The frames keyed by their position along the normal `n`, in ascending order (ties broken by
/// file, then frame, so the order is deterministic).
fn sort_along(headers: &[Header], frames: &[FrameRef], n: [f64; 3]) -> Vec<(f64, FrameRef)> {
    let mut keyed: Vec<(f64, FrameRef)> = frames
        .iter()
        .map(|f| (dot(f.position(headers), n), *f))
        .collect();
    keyed.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.file.cmp(&b.1.file))
            .then(a.1.frame.cmp(&b.1.frame))
    });
    keyed
}

/// Duplicate positions mean several volumes (echoes, phases, segments) in one series: refuse
/// rather than silently interleave them.
fn check_no_duplicates(headers: &[Header], keyed: &[(f64, FrameRef)]) -> Result<()> {
    let pos = |f: &FrameRef| f.position(headers);
    for w in keyed.windows(2) {
        let d = sub(pos(&w[1].1), pos(&w[0].1));
        if dot(d, d).sqrt() <= STEP_ABS_TOL {
            let a = &headers[w[0].1.file];
            let b = &headers[w[1].1.file];
            return Err(Error::format(
                &b.path,
                format!(
                    "two slices at the same position {:?} ({} frame {} and {} frame {}): the series \
                     holds several volumes (echoes, time points or segments?)",
                    pos(&w[1].1),
                    a.path.display(),
                    w[0].1.frame + 1,
                    b.path.display(),
                    w[1].1.frame + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The k axis and step of two or more sorted slices. The axis runs from the first slice to the
/// last (so a gantry tilt gives a non-orthogonal direction matrix) and the step is the mean;
/// uneven steps and a tilt are warned about, since the volume assumes a uniform grid.
fn slice_step(
    headers: &[Header],
    keyed: &[(f64, FrameRef)],
    n: [f64; 3],
    warnings: &mut Vec<String>,
) -> ([f64; 3], f64) {
    let origin = keyed[0].1.position(headers);
    let last = keyed[keyed.len() - 1].1.position(headers);
    let span = sub(last, origin);
    let len = dot(span, span).sqrt();
    let k = unit(span).unwrap_or(n);
    let dz = len / (keyed.len() - 1) as f64;
    let steps: Vec<f64> = keyed.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let (min, max) = steps
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    let mean_along_n = (keyed[keyed.len() - 1].0 - keyed[0].0) / steps.len() as f64;
    if max - min > STEP_ABS_TOL.max(STEP_REL_TOL * mean_along_n.abs()) {
        let gap_at = steps
            .iter()
            .position(|s| (s - mean_along_n).abs() > STEP_REL_TOL * mean_along_n.abs())
            .unwrap_or(0);
        warnings.push(format!(
            "non-uniform slice spacing: steps from {min:.4} to {max:.4} mm (first irregular step \
             after slice {gap_at}); a uniform {dz:.4} mm grid is assumed"
        ));
    }
    let c = dot(k, n);
    if c.abs() < TILT_COS {
        warnings.push(format!(
            "gantry tilt: slice step is {:.2} degrees off the slice normal; the volume's \
             k axis follows the step (non-orthogonal direction matrix)",
            c.abs().clamp(-1.0, 1.0).acos().to_degrees()
        ));
    }
    (k, dz)
}
