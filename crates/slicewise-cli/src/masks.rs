//! Reading label masks for `evaluate`: any volume slicewise reads, plus LGG-style patient folders
//! (`<P>_<n>.tif` images next to `<P>_<n>_mask.tif` masks), whose mask slices are the truth.

use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};

use slicewise::error::{Error, Result};
use slicewise::volume::{tiff, Geometry, ReadOptions, Volume};

/// A mask as read from disk: raw values `[z, y, x]` and geometry.
pub struct MaskVolume {
    /// The file or folder it came from.
    pub path: PathBuf,
    /// Values as stored (labels, or 0/255, or probabilities).
    pub values: Array3<f32>,
    /// Its geometry.
    pub geometry: Geometry,
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
    })
}
