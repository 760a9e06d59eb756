//! Reading label masks for `evaluate`: any volume slicewise reads, LGG-style patient folders
//! (`<P>_<n>.tif` images next to `<P>_<n>_mask.tif` masks), whose mask slices are the truth, and
//! DICOM SEG files (ours or another tool's), each segment becoming its number as a label on the
//! grid of the series it references: that series when given, else the other mask's grid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};

use slicewise::error::{Error, Result};
use slicewise::mask::dicom_seg;
use slicewise::volume::{tiff, DType, Geometry, ReadOptions, SourceFormat, Volume, VolumeMeta};

/// A mask as read from disk: raw values `[z, y, x]` and geometry.
pub struct MaskVolume {
    /// The file or folder it came from.
    pub path: PathBuf,
    /// Values as stored (labels, or 0/255, or probabilities).
    pub values: Array3<f32>,
    /// Its geometry.
    pub geometry: Geometry,
    /// Label names it carries itself (a DICOM SEG's SegmentLabels), by value.
    pub names: BTreeMap<u32, String>,
}

/// Reads a prediction and its truth. A DICOM SEG among them is placed on `series` (the DICOM
/// series it references) when given, else on the grid of the other mask; two SEGs need `series`.
pub fn read_pair(
    pred: &Path,
    truth: &Path,
    series: Option<&Path>,
) -> Result<(MaskVolume, MaskVolume)> {
    if let Some(series) = series {
        let grid = Volume::open_with(series, &ReadOptions::default())?;
        let read_on = |p: &Path| match dicom_seg::is_seg(p) {
            true => read_seg(p, &grid),
            false => read(p),
        };
        return Ok((read_on(pred)?, read_on(truth)?));
    }
    match (dicom_seg::is_seg(pred), dicom_seg::is_seg(truth)) {
        (false, false) => Ok((read(pred)?, read(truth)?)),
        (true, false) => {
            let t = read(truth)?;
            Ok((read_seg(pred, &grid_of(&t))?, t))
        }
        (false, true) => {
            let p = read(pred)?;
            let t = read_seg(truth, &grid_of(&p))?;
            Ok((p, t))
        }
        (true, true) => Err(Error::InvalidArgument(format!(
            "{} and {} are both DICOM SEG: give the series they reference with --series so that \
             both are placed on its grid",
            pred.display(),
            truth.display()
        ))),
    }
}

/// A mask's grid as a volume to place a SEG on (by frame position: it has no DICOM references).
fn grid_of(m: &MaskVolume) -> Volume {
    let shape = m.values.dim();
    Volume {
        data: ndarray::Array4::zeros((1, shape.0, shape.1, shape.2)),
        geometry: m.geometry,
        meta: VolumeMeta::new(&m.path, SourceFormat::Memory, DType::F32),
    }
}

/// Reads a DICOM SEG onto `grid`: each segment's voxels take its segment number (segments that
/// overlap are refused: a label mask holds one label a voxel).
fn read_seg(path: &Path, grid: &Volume) -> Result<MaskVolume> {
    let seg = dicom_seg::read_seg(path, Some(grid))?;
    for w in &seg.warnings {
        log::warn!("{}: {w}", path.display());
    }
    let names = seg
        .segments
        .iter()
        .filter(|s| !s.label.is_empty())
        .map(|s| (u32::from(s.number), s.label.clone()))
        .collect();
    Ok(MaskVolume {
        path: path.to_path_buf(),
        values: seg
            .label_map()
            .map_err(|e| Error::format(path, e.to_string()))?
            .mapv(f32::from),
        geometry: seg.geometry,
        names,
    })
}

/// True when `dir` is a folder of numbered image slices with `_mask` slices next to them.
pub fn is_mask_slice_folder(dir: &Path) -> bool {
    dir.is_dir()
        && tiff::slice_pairs(dir)
            .map(|pairs| pairs.iter().any(|p| p.mask.is_some()))
            .unwrap_or(false)
}

/// Reads a mask: an LGG patient folder's `_mask.tif` slices, or any single-channel volume.
pub fn read(path: &Path) -> Result<MaskVolume> {
    let opts = ReadOptions::default();
    let v = if is_mask_slice_folder(path) {
        tiff::read_mask_folder(path, &opts)?
    } else {
        Volume::open_with(path, &opts)?
    };
    if v.channels() != 1 {
        return Err(Error::unsupported(
            path,
            format!("a mask must have one channel, this has {}", v.channels()),
        ));
    }
    Ok(MaskVolume {
        path: path.to_path_buf(),
        values: v.data.index_axis_move(Axis(0), 0),
        geometry: v.geometry,
        names: BTreeMap::new(),
    })
}
