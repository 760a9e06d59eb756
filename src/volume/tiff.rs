//! TIFF reading (owned by the TIFF work).
use super::{ReadOptions, Volume};
use crate::error::{Error, Result};
use std::path::Path;

/// Reads a TIFF file, multi-page stack or folder of numbered slices.
pub fn read(path: &Path, _options: &ReadOptions) -> Result<Volume> {
    Err(Error::unsupported(
        path,
        "TIFF reading is not implemented yet",
    ))
}

/// True when `dir` holds TIFF slices (not counting `*_mask.tif`).
pub fn folder_has_tiff(_dir: &Path) -> Result<bool> {
    Ok(false)
}
