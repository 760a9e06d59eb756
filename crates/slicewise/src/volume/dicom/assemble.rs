//! Ordering frames into a volume and deriving its geometry from the DICOM plane attributes.

use std::path::Path;

use super::scan::Header;
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

/// Unit normal of an ImageOrientationPatient (row cosine × column cosine).
pub(crate) fn normal(iop: &[f64; 6]) -> [f64; 3] {
    let r = [iop[0], iop[1], iop[2]];
    let c = [iop[3], iop[4], iop[5]];
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    unit(n).unwrap_or([0.0, 0.0, 1.0])
}

fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let len = dot(v, v).sqrt();
    (len.is_finite() && len > 1e-12).then(|| [v[0] / len, v[1] / len, v[2] / len])
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The frames of a series in volume z order, its geometry and the warnings found on the way.
pub(crate) struct Assembly {
    pub order: Vec<FrameRef>,
    pub geometry: Geometry,
    pub warnings: Vec<String>,
}

/// Sorts the frames of `headers` (one series) along the slice normal and derives the geometry.
pub(crate) fn assemble(source: &Path, headers: &[Header]) -> Result<Assembly> {
    let mut warnings = Vec::new();
    let first = headers
        .first()
        .ok_or_else(|| Error::format(source, "series without images"))?;
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
    let mut frames: Vec<FrameRef> = headers
        .iter()
        .enumerate()
        .flat_map(|(file, h)| (0..h.frames.len()).map(move |frame| FrameRef { file, frame }))
        .collect();
    let info = |f: &FrameRef| &headers[f.file].frames[f.frame];

    let f0 = info(&frames[0]).clone();
    let spacing_ij = match f0.pixel_spacing {
        Some([row, col]) if row > 0.0 && col > 0.0 => [col, row],
        _ => {
            warnings.push("no valid PixelSpacing: assumed 1 mm".into());
            [1.0, 1.0]
        }
    };
    let all_positioned = frames
        .iter()
        .all(|f| info(f).position.is_some() && info(f).orientation.is_some());
    if !all_positioned {
        // Without positions, fall back to InstanceNumber / file / frame order.
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
        let dz = f0
            .spacing_between
            .or(f0.slice_thickness)
            .filter(|v| *v > 0.0)
            .unwrap_or(1.0);
        let geometry = Geometry {
            spacing: [spacing_ij[0], spacing_ij[1], dz],
            ..Geometry::identity()
        };
        return Ok(Assembly {
            order: frames,
            geometry,
            warnings,
        });
    }
    let iop = f0.orientation.unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let row = unit([iop[0], iop[1], iop[2]])
        .ok_or_else(|| Error::format(&headers[0].path, "ImageOrientationPatient is degenerate"))?;
    let col = unit([iop[3], iop[4], iop[5]])
        .ok_or_else(|| Error::format(&headers[0].path, "ImageOrientationPatient is degenerate"))?;
    let n = normal(&iop);
    if frames.iter().any(|f| {
        let o = info(f).orientation.unwrap_or(iop);
        o.iter().zip(iop.iter()).any(|(a, b)| (a - b).abs() > 1e-4)
    }) {
        warnings
            .push("ImageOrientationPatient differs between slices: the first one is used".into());
    }
    let pos = |f: &FrameRef| info(f).position.unwrap_or([0.0; 3]);
    let mut keyed: Vec<(f64, FrameRef)> = frames.iter().map(|f| (dot(pos(f), n), *f)).collect();
    keyed.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.file.cmp(&b.1.file))
            .then(a.1.frame.cmp(&b.1.frame))
    });
    let order: Vec<FrameRef> = keyed.iter().map(|k| k.1).collect();

    // Duplicate positions mean several volumes (echoes, phases, segments) in one series: refuse
    // rather than silently interleave them.
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

    let origin = pos(&order[0]);
    let (k_dir, dz) = if order.len() == 1 {
        let dz = f0
            .spacing_between
            .or(f0.slice_thickness)
            .filter(|v| *v > 0.0)
            .unwrap_or_else(|| {
                warnings.push("single slice without SliceThickness: 1 mm assumed".into());
                1.0
            });
        (n, dz)
    } else {
        let last = pos(&order[order.len() - 1]);
        let span = sub(last, origin);
        let len = dot(span, span).sqrt();
        let k = unit(span).unwrap_or(n);
        let dz = len / (order.len() - 1) as f64;
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
