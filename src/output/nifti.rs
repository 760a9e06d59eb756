//! NIfTI writers (owned by the NIfTI work).
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;
use std::path::Path;

/// Writes a mask as NIfTI-1 (uint8) with the mask's geometry in both sform and qform.
pub fn write_mask(path: &Path, _mask: &Mask) -> Result<()> {
    Err(Error::unsupported(
        path,
        "NIfTI writing is not implemented yet",
    ))
}

/// Writes a volume as NIfTI-1 (float32; channels as the 4th dimension).
pub fn write_volume(path: &Path, _volume: &Volume) -> Result<()> {
    Err(Error::unsupported(
        path,
        "NIfTI writing is not implemented yet",
    ))
}
