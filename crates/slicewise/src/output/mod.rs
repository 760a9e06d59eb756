//! Writers for masks and volumes, two ways each:
//!
//! * an encoder, `write_*_to(…, w)`, that writes the file's bytes into any [`Write`] (TIFF's
//!   into a `Write + Seek`, since its directories point back at data written before them: use a
//!   [`std::io::Cursor`] over a `Vec<u8>` for memory), for callers that send the file elsewhere
//!   than to disk (the server's answers);
//! * a path writer, `write_*(path, …)`, that runs the encoder through [`atomic_write`]: the bytes
//!   go to a temporary file in the destination folder, which is synced and renamed over the
//!   destination only when complete, so a failed or interrupted write leaves no partial output.
//!
//! [`atomic_write`] is the one place that rule is implemented; every path writer here, and the
//! other files slicewise writes (reports, sidecars, checkpoints), go through it.

pub mod dicom;
pub mod dicom_seg;
pub mod nifti;
pub mod nrrd;
pub mod rtstruct;
pub mod tiff;

use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use ndarray::Array3;

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;
use dicom_seg::DicomSegOptions;
use rtstruct::RtstructOptions;

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
    /// NRRD (`.nrrd`), uint8 labels in LPS; masks only.
    Nrrd,
    /// DICOM RT Structure Set (`.dcm`): contours per label and slice, masks from DICOM series
    /// only. Never told by the extension (`.dcm` is a SEG): asked for by name.
    Rtstruct,
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
        } else if name.ends_with(".nrrd") {
            Ok(OutputFormat::Nrrd)
        } else {
            Err(Error::InvalidArgument(format!(
                "{}: cannot tell the output format from the extension (use .nii, .nii.gz, .tif, .tiff, .nrrd or .dcm)",
                path.display()
            )))
        }
    }
}

/// How [`write_mask_to`] encodes a mask, beyond its format.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// gzip: a `.nii.gz` rather than a `.nii` NIfTI file, NRRD's `gzip` rather than `raw`
    /// encoding. TIFF (always LZW), DICOM SEG and RTSTRUCT ignore it.
    pub gzip: bool,
    /// DICOM SEG's options.
    pub dicom_seg: DicomSegOptions,
    /// RTSTRUCT's options.
    pub rtstruct: RtstructOptions,
}

/// Encodes `mask` as a `format` file into `w` (the bytes [`write_mask`] writes to a file of that
/// format). `Seek` is for TIFF; encode into a [`std::io::Cursor`] to get the bytes in memory.
pub fn write_mask_to<W: Write + Seek>(
    mask: &Mask,
    format: OutputFormat,
    options: &EncodeOptions,
    w: W,
) -> Result<()> {
    match format {
        OutputFormat::Nifti => nifti::write_mask_to(mask, options.gzip, w),
        OutputFormat::Tiff => tiff::write_mask_to(mask, w),
        OutputFormat::DicomSeg => dicom_seg::write_mask_to(mask, &options.dicom_seg, w),
        OutputFormat::Nrrd => nrrd::write_mask_to(mask, options.gzip, w),
        OutputFormat::Rtstruct => rtstruct::write_mask_to(mask, &options.rtstruct, w),
    }
}

/// Writes a mask (atomically), choosing the format from the extension: `.nii.gz` is gzipped,
/// `.nrrd` gets NRRD's `gzip` encoding (what 3D Slicer writes), `.dcm` is a BINARY DICOM SEG
/// with default options.
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    match OutputFormat::from_path(path)? {
        OutputFormat::Nifti => nifti::write_mask(path, mask),
        OutputFormat::Tiff => tiff::write_mask(path, mask),
        OutputFormat::DicomSeg => dicom_seg::write_mask(path, mask),
        OutputFormat::Nrrd => nrrd::write_mask(path, mask, true),
        OutputFormat::Rtstruct => rtstruct::write_mask(path, mask),
    }
}

/// Writes a volume (atomically), choosing the format from the extension.
pub fn write_volume(path: &Path, volume: &Volume) -> Result<()> {
    match OutputFormat::from_path(path)? {
        OutputFormat::Nifti => nifti::write_volume(path, volume),
        OutputFormat::Tiff => tiff::write_volume(path, volume),
        OutputFormat::DicomSeg => Err(Error::InvalidArgument(format!(
            "{}: DICOM SEG holds masks, not volumes",
            path.display()
        ))),
        OutputFormat::Nrrd => Err(Error::InvalidArgument(format!(
            "{}: slicewise writes masks as NRRD, not volumes (write .nii.gz or .tif)",
            path.display()
        ))),
        OutputFormat::Rtstruct => Err(Error::InvalidArgument(format!(
            "{}: an RT Structure Set holds contours, not volumes",
            path.display()
        ))),
    }
}

/// What an encoder's errors name in place of a file: it writes into any `Write` and does not
/// know which file, if any, that is. [`write_file`] puts the file's path in.
pub(crate) const STREAM: &str = "<output>";

/// A path writer: `encode` into `path` through [`atomic_write`], its errors naming `path`.
pub(crate) fn write_file<F>(path: &Path, encode: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<()>,
{
    atomic_write(path, encode).map_err(|e| naming(e, path))
}

/// `e` with [`STREAM`] replaced by `path`, and an invalid-argument message led by `path`: what
/// an encoder's error says when it was writing `path`.
pub(crate) fn naming(e: Error, path: &Path) -> Error {
    let stream = Path::new(STREAM);
    match e {
        Error::Io {
            action,
            path: p,
            source,
        } if p == stream => Error::io(action, path, source),
        Error::Format {
            path: p,
            message,
            source,
        } if p == stream => Error::Format {
            path: path.to_path_buf(),
            message,
            source,
        },
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Writes `labels` (`[z, y, x]`) x fastest, then y, then z: the array's logical order, which is
/// NIfTI's and NRRD's voxel order. A standard-layout array is written as it lies; any other
/// layout a slice at a time (never a copy of the whole mask).
pub(crate) fn write_labels<W: Write>(labels: &Array3<u8>, mut w: W) -> std::io::Result<()> {
    if let Some(bytes) = labels.as_slice() {
        return w.write_all(bytes);
    }
    let s = labels.shape();
    let mut buf = Vec::with_capacity(s[1] * s[2]);
    for slice in labels.outer_iter() {
        buf.clear();
        buf.extend(slice.iter().copied());
        w.write_all(&buf)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;
    use std::io::Cursor;

    fn geometry() -> Geometry {
        Geometry {
            spacing: [0.5, 0.75, 3.0],
            origin: [10.0, -20.0, 5.0],
            direction: [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
        }
    }

    fn volume(data: ndarray::Array4<f32>) -> Volume {
        use crate::volume::{DType, SourceFormat, VolumeMeta};
        Volume {
            data,
            geometry: geometry(),
            meta: VolumeMeta::new("/nowhere", SourceFormat::Nifti, DType::F32),
        }
    }

    fn mask() -> Mask {
        let mut m = Mask::zeros([3, 4, 5], geometry());
        m.labels[[0, 1, 2]] = 1;
        m.labels[[2, 3, 4]] = 2;
        m
    }

    /// The files in `dir`, hidden temporaries included.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn encoders_write_the_bytes_the_path_writers_write() {
        let dir = tempfile::tempdir().unwrap();
        let mask = mask();
        for (name, format, gzip) in [
            ("m.nii", OutputFormat::Nifti, false),
            ("m.nii.gz", OutputFormat::Nifti, true),
            ("m.tif", OutputFormat::Tiff, false),
            ("m.nrrd", OutputFormat::Nrrd, true),
        ] {
            let path = dir.path().join(name);
            write_mask(&path, &mask).unwrap();
            let options = EncodeOptions {
                gzip,
                ..Default::default()
            };
            let mut memory = Cursor::new(Vec::new());
            write_mask_to(&mask, format, &options, &mut memory).unwrap();
            let file = std::fs::read(&path).unwrap();
            assert!(file.len() > 100, "{name}");
            assert!(memory.into_inner() == file, "{name}: bytes differ");
        }
        let path = dir.path().join("raw.nrrd");
        nrrd::write_mask(&path, &mask, false).unwrap();
        let mut memory = Vec::new();
        nrrd::write_mask_to(&mask, false, &mut memory).unwrap();
        assert!(memory == std::fs::read(&path).unwrap(), "raw NRRD");
    }

    #[test]
    fn volume_encoders_write_the_bytes_the_path_writers_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = ndarray::Array4::<f32>::zeros((2, 3, 4, 5));
        data[[1, 2, 3, 4]] = 0.25;
        data[[0, 0, 0, 1]] = -7.5;
        let volume = volume(data);
        for name in ["v.nii", "v.nii.gz", "v.tif"] {
            let path = dir.path().join(name);
            write_volume(&path, &volume).unwrap();
            let mut memory = Cursor::new(Vec::new());
            match name {
                "v.tif" => tiff::write_volume_to(&volume, &mut memory).unwrap(),
                _ => nifti::write_volume_to(&volume, name.ends_with(".gz"), &mut memory).unwrap(),
            }
            assert!(
                memory.into_inner() == std::fs::read(&path).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_encoder_failing_midway_leaves_neither_file_nor_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.nii");
        let e = write_file(&path, |w| {
            // More than the buffer holds, so that part of it reaches the temporary file.
            w.write_all(&vec![7u8; 1 << 20])
                .map_err(|e| Error::io("write", STREAM, e))?;
            Err(Error::io(
                "write",
                STREAM,
                std::io::Error::other("disk gone"),
            ))
        })
        .unwrap_err();
        assert!(e.to_string().contains("m.nii"), "{e}");
        assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.nii.gz");
        write_mask(&path, &mask()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut bad = mask();
        bad.geometry.spacing[1] = 0.0;
        let e = write_mask(&path, &bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("m.nii.gz"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(listing(dir.path()), ["m.nii.gz"]);
    }

    #[test]
    fn nrrd_is_a_mask_format_told_by_its_extension() {
        assert_eq!(
            OutputFormat::from_path(Path::new("a/B.SEG.NRRD")).unwrap(),
            OutputFormat::Nrrd
        );
        let dir = tempfile::tempdir().unwrap();
        let v = volume(ndarray::Array4::zeros((1, 2, 2, 2)));
        assert!(write_volume(&dir.path().join("v.nrrd"), &v).is_err());
        assert!(listing(dir.path()).is_empty());
    }
}
