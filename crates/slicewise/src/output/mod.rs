//! Writers for masks and volumes. Every write is atomic: data goes to a temporary file in the
//! destination folder, which is renamed over the destination only when complete.

pub mod dicom_seg;
pub mod nifti;
pub mod nrrd;
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
    let mut tmp = temporary_beside(path)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io("write", path, e))?;
    }
    finish_file(tmp.as_file(), path)?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    Ok(())
}

/// [`atomic_write`] for writers that open the file themselves (a library's `save(path)`):
/// `write` gets the path of a temporary file in `path`'s folder (named `.slicewise-*.part`), which
/// is synced and renamed over `path` only if `write` succeeds; on error it is removed and nothing
/// at `path` changes.
pub fn atomic_write_path<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let tmp = temporary_beside(path)?.into_temp_path();
    write(&tmp)?;
    let file = std::fs::File::open(&tmp).map_err(|e| Error::io("open", &tmp, e))?;
    finish_file(&file, path)?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    Ok(())
}

/// A new temporary file in `path`'s folder, removed when dropped unless persisted.
fn temporary_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".slicewise-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))
}

/// Makes a written temporary file an ordinary output (mode 0644: temporary files are created
/// 0600) and syncs it to disk before it is renamed into place.
fn finish_file(file: &std::fs::File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("set permissions of", path, e))?;
    }
    file.sync_all()
        .map_err(|e| Error::io("sync to disk", path, e))
}
