//! Volumes: voxels plus geometry, read from DICOM series, NIfTI and TIFF stacks.
//!
//! A [`Volume`] holds its voxels as `f32` in an `[channels, z, y, x]` array together with its
//! [`Geometry`] (LPS, see [`geometry`]) and [`VolumeMeta`] (original dtype, modality, source
//! identifiers, warnings). [`Volume::open`] picks the reader from the path;
//! [`Volume::open_channels`] stacks one file per channel ([`channels`]).

pub mod channels;
mod codestream;
pub mod dicom;
pub mod geometry;
pub mod nifti;
pub mod tiff;

use std::path::{Path, PathBuf};

use ndarray::{Array4, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

pub use geometry::Geometry;

use crate::error::{Error, Result};

/// Default upper bound on the number of values (channels × voxels) a reader will allocate:
/// 2^30 values, 4 GiB as f32. A header that asks for more is refused before any allocation.
pub const DEFAULT_MAX_VALUES: u64 = 1 << 30;

/// The format a volume came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// A DICOM series (single-frame files or a multi-frame object).
    Dicom,
    /// A NIfTI-1 or NIfTI-2 file (or .hdr/.img pair).
    Nifti,
    /// A TIFF file, multi-page stack or folder of numbered slices.
    Tiff,
    /// Memory handed over by a host application.
    Memory,
}

/// The sample type the voxels had on disk (they are always held as `f32` in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 1-bit samples.
    Bool,
    /// Unsigned 8-bit.
    U8,
    /// Signed 8-bit.
    I8,
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit.
    U32,
    /// Signed 32-bit.
    I32,
    /// Unsigned 64-bit.
    U64,
    /// Signed 64-bit.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

/// Identifiers of the DICOM instances a volume was built from, kept so that derived objects
/// (DICOM SEG) can reference them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DicomRefs {
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// FrameOfReferenceUID, when present.
    pub frame_of_reference_uid: Option<String>,
    /// (SOPClassUID, SOPInstanceUID, frame number or 0 for single-frame) for each slice, in the
    /// volume's z order.
    pub slices: Vec<SliceRef>,
    /// Patient/study attributes to copy into derived objects, as (DICOM keyword, value) pairs,
    /// e.g. ("PatientName", "Doe^Jane").
    pub copied_attributes: Vec<(String, String)>,
}

/// The source of one slice of a DICOM volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceRef {
    /// SOPClassUID of the source instance.
    pub sop_class_uid: String,
    /// SOPInstanceUID of the source instance.
    pub sop_instance_uid: String,
    /// 1-based frame number in a multi-frame instance; 0 for a single-frame instance.
    pub frame: u32,
}

/// Facts about where a volume came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMeta {
    /// The path it was read from (a file or folder), or a description for memory volumes.
    pub source: PathBuf,
    /// The format it was read from.
    pub format: SourceFormat,
    /// Sample type on disk.
    pub original_dtype: DType,
    /// DICOM Modality (e.g. "MR", "CT") when known.
    pub modality: Option<String>,
    /// DICOM SeriesInstanceUID when known.
    pub series_uid: Option<String>,
    /// A series or file description when known.
    pub description: Option<String>,
    /// What each channel is (e.g. `["R", "G", "B"]`, or `["pre-contrast", "FLAIR", "post-contrast"]`).
    pub channel_names: Vec<String>,
    /// The index axis slices were acquired along (0 = i/x, 1 = j/y, 2 = k/z); 2 unless known.
    pub acquisition_axis: usize,
    /// Non-fatal problems found while reading (gaps, tilt, assumed spacing…).
    pub warnings: Vec<String>,
    /// DICOM identifiers, for DICOM input.
    pub dicom: Option<DicomRefs>,
}

impl VolumeMeta {
    /// Metadata with the given source and format and everything else empty.
    pub fn new(source: impl Into<PathBuf>, format: SourceFormat, original_dtype: DType) -> Self {
        VolumeMeta {
            source: source.into(),
            format,
            original_dtype,
            modality: None,
            series_uid: None,
            description: None,
            channel_names: Vec::new(),
            acquisition_axis: 2,
            warnings: Vec::new(),
            dicom: None,
        }
    }
}

/// A 3-D image with one or more channels: voxels as `f32` in `[c, z, y, x]` order plus geometry.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Voxel values, shape `[channels, z, y, x]`, real-world values (rescale applied).
    pub data: Array4<f32>,
    /// Voxel-to-patient geometry.
    pub geometry: Geometry,
    /// Where it came from.
    pub meta: VolumeMeta,
}

/// Options for reading volumes.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// For DICOM folders holding several series: the SeriesInstanceUID to read. `None` reads the
    /// only series, and fails listing them when there are several.
    pub series_uid: Option<String>,
    /// Refuse inputs with more than this many values (channels × voxels).
    pub max_values: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            series_uid: None,
            max_values: DEFAULT_MAX_VALUES,
        }
    }
}

impl ReadOptions {
    /// Selects a DICOM series by UID.
    pub fn series_uid(mut self, uid: impl Into<String>) -> Self {
        self.series_uid = Some(uid.into());
        self
    }

    /// Sets the allocation limit in values.
    pub fn max_values(mut self, n: u64) -> Self {
        self.max_values = n;
        self
    }

    /// Fails with [`Error::TooLarge`] when `dims` multiply to more than the limit (or overflow).
    pub fn check_size(&self, path: &Path, dims: &[u64]) -> Result<usize> {
        let mut n: u64 = 1;
        for &d in dims {
            n = n
                .checked_mul(d)
                .ok_or_else(|| Error::too_large(path, format!("dimensions {dims:?} overflow")))?;
        }
        if n > self.max_values {
            return Err(Error::too_large(
                path,
                format!(
                    "dimensions {dims:?} hold {n} values, more than the limit of {}",
                    self.max_values
                ),
            ));
        }
        usize::try_from(n).map_err(|_| Error::too_large(path, "size does not fit in memory"))
    }
}

/// The kind of input a path holds, decided from its name and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// DICOM file or folder.
    Dicom,
    /// NIfTI file.
    Nifti,
    /// TIFF file or folder of TIFF slices.
    Tiff,
}

/// Decides which reader handles `path`.
pub fn detect(path: &Path) -> Result<InputKind> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
    if meta.is_dir() {
        // A folder: DICOM if any file in it (recursively) looks like DICOM, else TIFF slices.
        if dicom::folder_has_dicom(path)? {
            return Ok(InputKind::Dicom);
        }
        if tiff::folder_has_tiff(path)? {
            return Ok(InputKind::Tiff);
        }
        return Err(Error::format(
            path,
            "folder holds no DICOM files and no TIFF slices",
        ));
    }
    if !meta.is_file() {
        // A FIFO, socket or device: opening one can block forever, and reading it has no end.
        return Err(Error::format(
            path,
            "not a regular file or folder (a pipe, socket or device cannot be read as a volume)",
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".nii")
        || name.ends_with(".nii.gz")
        || name.ends_with(".hdr")
        || name.ends_with(".img")
        || name.ends_with(".hdr.gz")
        || name.ends_with(".img.gz")
    {
        return Ok(InputKind::Nifti);
    }
    let head = read_head(path, 132)?;
    // `DICM` at offset 128 decides: the 128-byte preamble is free for other uses, and
    // "dual-personality" files put a TIFF header there (pydicom's CT_small.dcm has one).
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return Ok(InputKind::Dicom);
    }
    if name.ends_with(".tif") || name.ends_with(".tiff") {
        return Ok(InputKind::Tiff);
    }
    if head.len() >= 4
        && (&head[..4] == b"II*\0"
            || &head[..4] == b"MM\0*"
            || &head[..4] == b"II+\0"
            || &head[..4] == b"MM\0+")
    {
        return Ok(InputKind::Tiff);
    }
    // Anything else is tried as DICOM (with or without preamble); the DICOM reader names the
    // problem when it is not.
    Ok(InputKind::Dicom)
}

/// The warning for a volume holding NaN or infinite values, or None when all are finite.
fn non_finite_warning(v: &Volume) -> Option<String> {
    let (mut nan, mut inf) = (0usize, 0usize);
    for x in v.data.iter() {
        if x.is_nan() {
            nan += 1;
        } else if x.is_infinite() {
            inf += 1;
        }
    }
    (nan + inf > 0).then(|| {
        format!(
            "{nan} NaN and {inf} infinite voxel value(s): segmentation ignores them when \
             normalising and gives the model 0 in their place"
        )
    })
}

/// Largest voxel side taken as plausible: 100 mm (no scanner's voxel is larger; a header in
/// the wrong unit, e.g. µm written as mm, gives values far above it).
const MAX_PLAUSIBLE_SPACING_MM: f64 = 100.0;

/// A warning when a voxel side exceeds [`MAX_PLAUSIBLE_SPACING_MM`]: volumes in millilitres and
/// distances in millimetres would be off by the same factor.
fn spacing_warning(g: &Geometry) -> Option<String> {
    g.spacing
        .iter()
        .any(|&s| s > MAX_PLAUSIBLE_SPACING_MM)
        .then(|| {
            format!(
                "implausible voxel spacing {:?} mm (over {MAX_PLAUSIBLE_SPACING_MM} mm): check \
                 the file's units; volumes and distances use it as given",
                g.spacing
            )
        })
}

/// Reads up to `n` bytes from the start of a file.
pub(crate) fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = Vec::with_capacity(n);
    f.take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

impl Volume {
    /// Reads a volume from a DICOM file/folder, a NIfTI file or a TIFF file/folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Volume> {
        Volume::open_with(path, &ReadOptions::default())
    }

    /// Reads a volume with options (series selection, size limit).
    ///
    /// NaN and infinite voxels (float NIfTI and TIFF can hold them) are kept as read, and a
    /// warning counts them: segmentation normalises over the finite voxels only and feeds the
    /// model 0 in their place (see [`infer::preprocess`](crate::infer::preprocess)).
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Volume> {
        let path = path.as_ref();
        let mut v = match detect(path)? {
            InputKind::Dicom => dicom::read(path, options),
            InputKind::Nifti => nifti::read(path, options),
            InputKind::Tiff => tiff::read(path, options),
        }?;
        if let Some(w) = non_finite_warning(&v) {
            v.meta.warnings.push(w);
        }
        if let Some(w) = spacing_warning(&v.geometry) {
            v.meta.warnings.push(w);
        }
        Ok(v)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.data.shape()[0]
    }

    /// Spatial dimensions as `[x, y, z]` (i.e. `[columns, rows, slices]`).
    pub fn dims_xyz(&self) -> [usize; 3] {
        let s = self.data.shape();
        [s[3], s[2], s[1]]
    }

    /// Iterates the 2-D slices across index axis `axis` (0 = i/x, 1 = j/y, 2 = k/z), each as a
    /// `[c, rows, cols]` view. Along z a slice is `[c, y, x]`; along y `[c, z, x]`; along x
    /// `[c, z, y]`.
    pub fn slices(&self, axis: usize) -> impl Iterator<Item = ArrayView3<'_, f32>> + '_ {
        let array_axis = match axis {
            0 => 3,
            1 => 2,
            _ => 1,
        };
        self.data.axis_iter(Axis(array_axis))
    }

    /// Iterates slices along the acquisition axis.
    pub fn acquisition_slices(&self) -> impl Iterator<Item = ArrayView3<'_, f32>> + '_ {
        self.slices(self.meta.acquisition_axis)
    }
}
