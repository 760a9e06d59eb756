//! TIFF writers (owned by the TIFF work).
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;
use std::path::Path;

/// Writes a mask as a multi-page LZW TIFF stack (uint8, one page per z slice).
pub fn write_mask(path: &Path, _mask: &Mask) -> Result<()> {
    Err(Error::unsupported(
        path,
        "TIFF writing is not implemented yet",
    ))
}

/// Writes a volume as a multi-page LZW TIFF stack (float32, one page per z slice).
pub fn write_volume(path: &Path, _volume: &Volume) -> Result<()> {
    Err(Error::unsupported(
        path,
        "TIFF writing is not implemented yet",
    ))
}
