//! Multi-channel volumes from one file (or DICOM series) per channel: nnU-Net's `CASE_0000`,
//! `CASE_0001`, … files, or any explicit list of co-registered volumes.
//!
//! [`Volume::open_channels`] reads each path as a one-channel volume, checks that it lies on the
//! first one's voxel grid and stacks them into one `[C, z, y, x]` volume carrying the first
//! file's geometry and metadata. Inputs off the grid are refused, never resampled: a model
//! trained on co-registered channels gives meaningless masks on channels that are not.

use std::path::{Path, PathBuf};

use ndarray::{Array4, Axis};

use super::{ReadOptions, SourceFormat, Volume};
use crate::error::{Error, Result};

/// Largest difference of spacing or origin (mm) between channels taken as the same grid.
/// Headers store these as float32 (NIfTI) or decimal strings (DICOM): 1e-4 mm absorbs their
/// rounding and is far below any real difference between two acquisitions.
pub const GRID_TOLERANCE_MM: f64 = 1e-4;

/// Largest difference of a direction cosine between channels taken as the same grid.
pub const DIRECTION_TOLERANCE: f64 = 1e-5;

impl Volume {
    /// Reads one volume per path (each must hold one channel) and stacks them as channels
    /// 0, 1, … of one volume, with the first path's geometry and metadata. Every path must share
    /// the first one's grid: the same dimensions, and spacing and origin within
    /// [`GRID_TOLERANCE_MM`] and direction cosines within [`DIRECTION_TOLERANCE`]; otherwise the
    /// error names both files and what differs. `meta.channel_names` are the file names without
    /// their volume extension (a DICOM series' description where it has one). At most the output
    /// and one input are held at a time.
    pub fn open_channels<P: AsRef<Path>>(paths: &[P], options: &ReadOptions) -> Result<Volume> {
        let Some((first_path, rest)) = paths.split_first() else {
            return Err(Error::InvalidArgument(
                "no channel files given (one volume per channel)".into(),
            ));
        };
        let first_path = first_path.as_ref();
        let first = open_one_channel(first_path, options)?;
        let shape = first.data.shape().to_vec();
        let values = [
            paths.len() as u64,
            shape[1] as u64,
            shape[2] as u64,
            shape[3] as u64,
        ];
        options.check_size(first_path, &values)?;
        let mut data = Array4::<f32>::zeros((paths.len(), shape[1], shape[2], shape[3]));
        data.index_axis_mut(Axis(0), 0)
            .assign(&first.data.index_axis(Axis(0), 0));
        let Volume {
            geometry, mut meta, ..
        } = first;
        let mut names = vec![channel_name(first_path, &meta)];
        for (i, path) in rest.iter().enumerate() {
            let path = path.as_ref();
            let v = open_one_channel(path, options)?;
            if let Some(diff) = grid_difference(&grid_of(&shape, &geometry), &v) {
                return Err(Error::format(
                    path,
                    format!(
                        "channel {} is not on the grid of channel 0 ({}): {diff}",
                        i + 1,
                        first_path.display()
                    ),
                ));
            }
            data.index_axis_mut(Axis(0), i + 1)
                .assign(&v.data.index_axis(Axis(0), 0));
            names.push(channel_name(path, &v.meta));
            let shown = path.display();
            meta.warnings
                .extend(v.meta.warnings.iter().map(|w| format!("{shown}: {w}")));
        }
        meta.channel_names = names;
        Ok(Volume {
            data,
            geometry,
            meta,
        })
    }
}

/// Reads `path`, refusing a volume with more than one channel (it would shift every later
/// file's channel index).
fn open_one_channel(path: &Path, options: &ReadOptions) -> Result<Volume> {
    let v = Volume::open_with(path, options)?;
    if v.channels() != 1 {
        return Err(Error::format(
            path,
            format!(
                "holds {} channels; give one single-channel volume per channel",
                v.channels()
            ),
        ));
    }
    Ok(v)
}

/// The grid of channel 0: its `[x, y, z]` dimensions and geometry.
struct Grid {
    dims: [usize; 3],
    geometry: super::Geometry,
}

fn grid_of(shape: &[usize], geometry: &super::Geometry) -> Grid {
    Grid {
        dims: [shape[3], shape[2], shape[1]],
        geometry: *geometry,
    }
}

/// What differs between channel 0's grid and `v`'s, as "what: channel 0's vs this one's"
/// (e.g. `shape 240×240×155 vs 240×240×154`); `None` when they are the same grid.
fn grid_difference(grid: &Grid, v: &Volume) -> Option<String> {
    let dims = v.dims_xyz();
    if dims != grid.dims {
        return Some(format!("shape {} vs {}", times(&grid.dims), times(&dims)));
    }
    let (a, b) = (&grid.geometry, &v.geometry);
    if !close(&a.spacing, &b.spacing, GRID_TOLERANCE_MM) {
        return Some(format!(
            "spacing {:?} vs {:?} mm (tolerance {GRID_TOLERANCE_MM} mm)",
            a.spacing, b.spacing
        ));
    }
    if !close(&a.origin, &b.origin, GRID_TOLERANCE_MM) {
        return Some(format!(
            "origin {:?} vs {:?} mm (tolerance {GRID_TOLERANCE_MM} mm)",
            a.origin, b.origin
        ));
    }
    let (da, db) = (a.direction.concat(), b.direction.concat());
    if !close(&da, &db, DIRECTION_TOLERANCE) {
        return Some(format!(
            "direction {:?} vs {:?} (tolerance {DIRECTION_TOLERANCE})",
            a.direction, b.direction
        ));
    }
    None
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

fn times(d: &[usize; 3]) -> String {
    format!("{}×{}×{}", d[0], d[1], d[2])
}

/// A channel's name: a DICOM series' description, else the file or folder name without its
/// volume extension (`CASE_0001.nii.gz` → `CASE_0001`).
fn channel_name(path: &Path, meta: &super::VolumeMeta) -> String {
    if meta.format == SourceFormat::Dicom {
        if let Some(d) = meta.description.as_deref().filter(|d| !d.trim().is_empty()) {
            return d.trim().to_string();
        }
    }
    volume_stem(path)
}

/// The file or folder name of `path` without a volume extension (`.nii.gz`, `.nii`, `.hdr`,
/// `.img` (gzipped or not), `.tif`, `.tiff`, `.dcm`).
pub fn volume_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| PathBuf::from(path).display().to_string());
    let lower = name.to_lowercase();
    for ext in [
        ".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img.gz", ".img", ".tiff", ".tif", ".dcm",
    ] {
        if lower.ends_with(ext) && lower.len() > ext.len() {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{DType, VolumeMeta};
    use crate::Geometry;

    fn vol(dims: (usize, usize, usize), g: Geometry) -> Volume {
        Volume {
            data: Array4::zeros((1, dims.0, dims.1, dims.2)),
            geometry: g,
            meta: VolumeMeta::new("x", SourceFormat::Memory, DType::F32),
        }
    }

    #[test]
    fn grids_differ_by_shape_origin_and_direction_beyond_tolerance() {
        let g = Geometry::identity();
        let grid = Grid {
            dims: [4, 3, 2],
            geometry: g,
        };
        assert!(grid_difference(&grid, &vol((2, 3, 4), g)).is_none());
        let d = grid_difference(&grid, &vol((1, 3, 4), g)).unwrap();
        assert_eq!(d, "shape 4×3×2 vs 4×3×1");
        let mut shifted = g;
        shifted.origin[2] += 5e-5;
        assert!(grid_difference(&grid, &vol((2, 3, 4), shifted)).is_none());
        shifted.origin[2] += 1.0;
        assert!(grid_difference(&grid, &vol((2, 3, 4), shifted))
            .unwrap()
            .starts_with("origin"));
        let mut turned = g;
        turned.direction[0][0] = -1.0;
        assert!(grid_difference(&grid, &vol((2, 3, 4), turned))
            .unwrap()
            .starts_with("direction"));
    }

    #[test]
    fn stems_drop_volume_extensions_only() {
        assert_eq!(volume_stem(Path::new("/d/CASE_0001.nii.gz")), "CASE_0001");
        assert_eq!(volume_stem(Path::new("/d/series")), "series");
        assert_eq!(volume_stem(Path::new("/d/a.b.tif")), "a.b");
    }
}
