//! DICOM series reading (owned by the DICOM work).
use super::{ReadOptions, Volume};
use crate::error::{Error, Result};
use std::path::Path;

/// Reads a DICOM file, folder or folder tree.
pub fn read(path: &Path, _options: &ReadOptions) -> Result<Volume> {
    Err(Error::unsupported(
        path,
        "DICOM reading is not implemented yet",
    ))
}

/// True when any file below `dir` looks like DICOM.
pub fn folder_has_dicom(_dir: &Path) -> Result<bool> {
    Ok(false)
}
