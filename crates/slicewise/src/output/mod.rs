//! Writers for masks and volumes. Every write is atomic: data goes to a temporary file in the
//! destination folder, which is renamed over the destination only when complete.

pub mod dicom_seg;
pub mod nifti;
pub mod tiff;

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// NIfTI-1 (`.nii` or `.nii.gz`).
    Nifti,
    /// Multi-page TIFF stack (`.tif`, `.tiff`), LZW-compressed.
    Tiff,
    /// DICOM Segmentation object (`.dcm`), masks from DICOM series only.
    DicomSeg,
}

impl OutputFormat {
    /// The format implied by a file name's extension.
    pub fn from_path(path: &Path) -> Result<OutputFormat> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            Ok(OutputFormat::Nifti)
        } else if name.ends_with(".tif") || name.ends_with(".tiff") {
            Ok(OutputFormat::Tiff)
        } else if name.ends_with(".dcm") {
            Ok(OutputFormat::DicomSeg)
        } else {
            Err(Error::InvalidArgument(format!(
                "{}: cannot tell the output format from the extension (use .nii, .nii.gz, .tif, .tiff or .dcm)",
                path.display()
            )))
        }
    }
}

/// Writes a mask, choosing the format from the extension.
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    match OutputFormat::from_path(path)? {
        OutputFormat::Nifti => nifti::write_mask(path, mask),
        OutputFormat::Tiff => tiff::write_mask(path, mask),
        OutputFormat::DicomSeg => dicom_seg::write_mask(path, mask),
    }
}

/// Writes a volume, choosing the format from the extension.
pub fn write_volume(path: &Path, volume: &Volume) -> Result<()> {
    match OutputFormat::from_path(path)? {
        OutputFormat::Nifti => nifti::write_volume(path, volume),
        OutputFormat::Tiff => tiff::write_volume(path, volume),
        OutputFormat::DicomSeg => Err(Error::InvalidArgument(format!(
            "{}: DICOM SEG holds masks, not volumes",
            path.display()
        ))),
    }
}

/// Writes `path` atomically: `write` fills a temporary file in the same folder, which is synced
/// and renamed over `path` only if `write` succeeds. On error nothing at `path` changes.
pub fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<()>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".slicewise-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io("write", path, e))?;
    }
    // Temporary files are created 0600; a finished output is an ordinary file (0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("set permissions of", path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("sync to disk", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    Ok(())
}
