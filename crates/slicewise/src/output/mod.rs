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

/// Fails, naming `dir`, when no file can be created in it (read-only, no permission, not a
/// folder), by creating and removing a temporary file there: a batch calls this before any work,
/// so that an unwritable output folder is reported at once rather than after each job's
/// inference.
pub fn check_writable_folder(dir: &Path) -> Result<()> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::io("write into", dir, e))
}

/// Prefix and suffix of our temporary files: hidden, and with an extension no reader or
/// resume check takes for an output.
const TEMP_PREFIX: &str = ".slicewise-";
const TEMP_SUFFIX: &str = ".part";

/// Temporary files untouched for this long are left over from a killed run. A live write keeps
/// its file's modification time current (it is written in buffered chunks and then synced), so
/// another process writing into the same folder (a shard, a retried pod) never loses its file.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A new temporary file in `path`'s folder, removed when dropped unless persisted. The first
/// time a process writes into a folder it removes the stale temporaries there first.
fn temporary_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    clean_once(dir);
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))
}

/// [`remove_stale_temporaries`] on `dir`, once per process (a batch writes thousands of files
/// into one folder; listing it for each would be quadratic).
fn clean_once(dir: &Path) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static CLEANED: Mutex<Option<HashSet<std::path::PathBuf>>> = Mutex::new(None);
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let first = match CLEANED.lock() {
        Ok(mut set) => set.get_or_insert_with(HashSet::new).insert(key),
        Err(_) => false,
    };
    if first {
        let n = remove_stale_temporaries(dir, STALE_TEMPORARY_AGE);
        if n > 0 {
            log::info!(
                "removed {n} stale temporary file(s) of an interrupted run in {}",
                dir.display()
            );
        }
    }
}

/// Removes the temporary files (`.slicewise-*.part`) in `dir` last modified more than `age`
/// ago, which a killed run (`kill -9`, power loss) leaves behind; returns how many it removed.
/// Best effort: a folder or file it cannot read or remove is left as it is (they are hidden and
/// nothing reads them, so leaving one is harmless).
pub fn remove_stale_temporaries(dir: &Path, age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        // symlink_metadata: never follow a link out of the folder.
        let stale = e.path().symlink_metadata().is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age))
        });
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
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
