//! NIfTI reading (owned by the NIfTI work).
use super::{ReadOptions, Volume};
use crate::error::{Error, Result};
use std::path::Path;

/// Reads a NIfTI-1/-2 file or .hdr/.img pair.
pub fn read(path: &Path, _options: &ReadOptions) -> Result<Volume> {
    Err(Error::unsupported(
        path,
        "NIfTI reading is not implemented yet",
    ))
}
