//! Reading DICOM Segmentation objects (BINARY, FRACTIONAL and LABELMAP) back into per-segment
//! masks on a grid: the referenced series' grid when its [`Volume`] is given, else the grid the
//! SEG's own frames span.
//!
//! Segments may overlap; each keeps its own mask, and [`Segmentation::label_map`] refuses to
//! flatten overlapping ones.

use std::collections::HashMap;
use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use ndarray::Array3;

use super::coding::Code;
use super::{LabelInfo, Mask};
use crate::error::{Error, Result};
use crate::formats::dicom_seg::{
    dicom_lab_to_srgb, frames, SegKind, LABEL_MAP_SEGMENTATION_STORAGE, SEGMENTATION_STORAGE,
};
use crate::volume::{Geometry, ReadOptions, Volume};

/// One segment described in a SEG.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// SegmentNumber (the pixel value in a label map).
    pub number: u16,
    /// SegmentLabel.
    pub label: String,
    /// SegmentedPropertyCategoryCodeSequence.
    pub category: Option<Code>,
    /// SegmentedPropertyTypeCodeSequence.
    pub property_type: Option<Code>,
    /// SegmentedPropertyTypeModifierCodeSequence (inside the type's item).
    pub property_type_modifier: Option<Code>,
    /// AnatomicRegionSequence.
    pub anatomic_region: Option<Code>,
    /// SegmentAlgorithmType (AUTOMATIC, SEMIAUTOMATIC, MANUAL).
    pub algorithm_type: String,
    /// SegmentAlgorithmName, when present.
    pub algorithm_name: Option<String>,
    /// RecommendedDisplayCIELabValue (DICOM-scaled), when present.
    pub cielab: Option<[u16; 3]>,
}

/// A SEG read back: one binary mask per segment on one grid.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// BINARY (FRACTIONAL is read as BINARY, thresholded at half the maximum) or LABELMAP.
    pub kind: SegKind,
    /// The segments (a label map's background segment 0 excluded), in SegmentSequence order.
    pub segments: Vec<SegmentInfo>,
    /// One mask per segment (0/1), shape `[z, y, x]` of `geometry`'s grid.
    pub masks: Vec<Array3<u8>>,
    /// The grid: the referenced volume's, or the one spanned by the SEG's frames.
    pub geometry: Geometry,
    /// SeriesInstanceUID of the SEG.
    pub series_uid: Option<String>,
    /// The first ReferencedSeriesSequence's SeriesInstanceUID.
    pub referenced_series_uid: Option<String>,
    /// FrameOfReferenceUID.
    pub frame_of_reference_uid: Option<String>,
    /// Non-fatal inconsistencies found while reading.
    pub warnings: Vec<String>,
}

impl Segmentation {
    /// Shape `[z, y, x]` of the grid.
    pub fn shape(&self) -> [usize; 3] {
        self.masks
            .first()
            .map(|m| {
                let (z, y, x) = m.dim();
                [z, y, x]
            })
            .unwrap_or([0, 0, 0])
    }

    /// True when some voxel belongs to more than one segment.
    pub fn overlapping(&self) -> bool {
        let [z, y, x] = self.shape();
        let mut count = Array3::<u8>::zeros((z, y, x));
        for m in &self.masks {
            for (c, &v) in count.iter_mut().zip(m.iter()) {
                *c = c.saturating_add(v);
                if *c > 1 {
                    return true;
                }
            }
        }
        false
    }

    /// The segments as one label map (value = segment number, 0 = none). Fails with
    /// [`Error::InvalidArgument`] when segments overlap or a number exceeds 255.
    pub fn label_map(&self) -> Result<Array3<u8>> {
        let [z, y, x] = self.shape();
        let mut out = Array3::<u8>::zeros((z, y, x));
        for (seg, m) in self.segments.iter().zip(&self.masks) {
            let v = u8::try_from(seg.number).map_err(|_| {
                Error::InvalidArgument(format!(
                    "segment number {} does not fit a u8 label map",
                    seg.number
                ))
            })?;
            for (o, &b) in out.iter_mut().zip(m.iter()) {
                if b != 0 {
                    if *o != 0 && *o != v {
                        return Err(Error::InvalidArgument(format!(
                            "segments {} and {v} overlap; use the per-segment masks",
                            *o
                        )));
                    }
                    *o = v;
                }
            }
        }
        Ok(out)
    }

    /// The label map as a [`Mask`] (labels = segment numbers, names from SegmentLabel, colours
    /// from the CIELab values when present).
    pub fn to_mask(&self) -> Result<Mask> {
        let labels = self.label_map()?;
        let label_info = self
            .segments
            .iter()
            .filter_map(|s| {
                Some(LabelInfo {
                    value: u8::try_from(s.number).ok()?,
                    name: s.label.clone(),
                    color: s.cielab.map(dicom_lab_to_srgb).unwrap_or([255, 0, 0]),
                })
            })
            .collect();
        Ok(Mask {
            labels,
            geometry: self.geometry,
            label_info,
            source: None,
        })
    }
}

/// True when `path` is a DICOM file whose file meta names a Segmentation SOP class (BINARY,
/// FRACTIONAL or LABELMAP): reads the 128-byte preamble and the file meta group only, so it is
/// cheap to ask of any file. Unreadable or non-DICOM files are simply not SEGs.
pub fn is_seg(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    let is_dicom = f.seek(SeekFrom::Start(128)).is_ok()
        && f.read_exact(&mut magic).is_ok()
        && &magic == b"DICM"
        && f.seek(SeekFrom::Start(128)).is_ok();
    if !is_dicom {
        return false;
    }
    let Ok(meta) = dicom_object::meta::FileMetaTable::from_reader(std::io::BufReader::new(f))
    else {
        return false;
    };
    let class = meta.media_storage_sop_class_uid();
    class == SEGMENTATION_STORAGE || class == LABEL_MAP_SEGMENTATION_STORAGE
}

/// Reads a DICOM SEG file. With `referenced_series`, frames are placed on that volume's grid
/// (matched by ReferencedSOPInstanceUID/frame, else by projecting ImagePositionPatient); without,
/// on the regular grid spanned by the frames.
pub fn read_seg(path: &Path, referenced_series: Option<&Volume>) -> Result<Segmentation> {
    read_seg_with(path, referenced_series, &ReadOptions::default())
}

/// [`read_seg`] with a size limit.
pub fn read_seg_with(
    path: &Path,
    referenced_series: Option<&Volume>,
    options: &ReadOptions,
) -> Result<Segmentation> {
    // Before the parser sees it: a corrupt length would make it allocate up to 4 GiB and abort.
    crate::formats::dicom_lengths::check(path)?;
    let file = dicom_object::open_file(path)
        .map_err(|e| Error::format(path, format!("not a readable DICOM file: {e}")))?;
    let format = FrameFormat::of(path, &file)?;
    let (rows, cols) = (format.rows, format.cols);
    options.check_size(path, &[format.n_frames as u64, rows as u64, cols as u64])?;
    let pixels = PixelData {
        bytes: pixel_bytes(path, &file, format.bits)?,
        bits: format.bits,
        frame_px: rows * cols,
    };

    let segments = segment_infos(path, &file, format.kind)?;
    let seg_index: HashMap<u16, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.number, i))
        .collect();

    let groups = FunctionalGroups::of(path, &file, format.n_frames)?;
    let plane = Plane::of(path, &groups)?;
    let frames = (0..format.n_frames)
        .map(|f| read_frame(path, &groups, &plane, f, format.kind, &seg_index))
        .collect::<Result<Vec<Frame>>>()?;

    // The grid and each frame's slice index on it.
    let mut warnings = Vec::new();
    let grid = match referenced_series {
        Some(vol) => grid_on_series(path, vol, &format, &plane, &frames, &mut warnings)?,
        None => grid_of_frames(path, &plane, &frames)?,
    };

    options.check_size(
        path,
        &[
            segments.len() as u64,
            grid.nz as u64,
            rows as u64,
            cols as u64,
        ],
    )?;
    let max_fraction = get_int(&file, tags::MAXIMUM_FRACTIONAL_VALUE)
        .unwrap_or(255)
        .max(1);
    let mut painter = Painter {
        masks: vec![Array3::<u8>::zeros((grid.nz, rows, cols)); segments.len()],
        cols,
        max_fraction: format.fractional.then_some(max_fraction),
        unknown_values: false,
    };
    for (f, fr) in frames.iter().enumerate() {
        let px = pixels.frame(path, f)?;
        painter.paint(fr.segment, grid.slice_of[f], &px, &seg_index);
    }
    if painter.unknown_values {
        warnings.push("label map holds pixel values no segment describes; ignored".into());
    }

    let referenced_series_uid = items(&file, tags::REFERENCED_SERIES_SEQUENCE)
        .first()
        .and_then(|i| get_str(i, tags::SERIES_INSTANCE_UID));
    Ok(Segmentation {
        kind: format.kind,
        segments,
        masks: painter.masks,
        geometry: grid.geometry,
        series_uid: get_str(&file, tags::SERIES_INSTANCE_UID),
        referenced_series_uid,
        frame_of_reference_uid: get_str(&file, tags::FRAME_OF_REFERENCE_UID),
        warnings,
    })
}

/// What the top-level attributes say about the frames: the encoding and the pixel layout.
struct FrameFormat {
    kind: SegKind,
    /// FRACTIONAL, read as BINARY thresholded at half the maximum.
    fractional: bool,
    rows: usize,
    cols: usize,
    n_frames: usize,
    bits: u32,
}

impl FrameFormat {
    /// Checks the SOP class, SegmentationType and pixel format, refusing combinations we cannot
    /// read.
    fn of(path: &Path, file: &InMemDicomObject) -> Result<FrameFormat> {
        let sop_class = get_str(file, tags::SOP_CLASS_UID).unwrap_or_default();
        if sop_class != SEGMENTATION_STORAGE && sop_class != LABEL_MAP_SEGMENTATION_STORAGE {
            return Err(Error::format(
                path,
                format!("SOP class {sop_class:?} is not a DICOM Segmentation"),
            ));
        }
        let seg_type = get_str(file, tags::SEGMENTATION_TYPE).unwrap_or_default();
        let (kind, fractional) = match seg_type.as_str() {
            "BINARY" => (SegKind::Binary, false),
            "FRACTIONAL" => (SegKind::Binary, true),
            "LABELMAP" => (SegKind::Labelmap, false),
            other => {
                return Err(Error::unsupported(
                    path,
                    format!("SegmentationType {other:?}"),
                ))
            }
        };
        let rows = get_int(file, tags::ROWS).ok_or_else(|| Error::format(path, "no Rows"))?;
        let cols = get_int(file, tags::COLUMNS).ok_or_else(|| Error::format(path, "no Columns"))?;
        let n_frames = get_int(file, tags::NUMBER_OF_FRAMES).unwrap_or(1);
        let bits = get_int(file, tags::BITS_ALLOCATED).unwrap_or(0);
        if rows == 0 || cols == 0 || n_frames == 0 {
            return Err(Error::format(
                path,
                "empty segmentation (no rows, columns or frames)",
            ));
        }
        match (fractional, kind, bits) {
            (false, SegKind::Binary, 1) | (true, _, 8) | (false, SegKind::Labelmap, 8 | 16) => {}
            _ => {
                return Err(Error::unsupported(
                    path,
                    format!("{seg_type} segmentation with BitsAllocated {bits}"),
                ))
            }
        }
        Ok(FrameFormat {
            kind,
            fractional,
            rows: rows as usize,
            cols: cols as usize,
            n_frames: n_frames as usize,
            bits,
        })
    }
}

/// The (decoded) Pixel Data and how to cut one frame out of it.
struct PixelData {
    bytes: Vec<u8>,
    /// BitsAllocated: 1, 8 or 16.
    bits: u32,
    /// Pixels per frame.
    frame_px: usize,
}

impl PixelData {
    /// The pixels of frame `f` (0-based), widened to u16.
    fn frame(&self, path: &Path, f: usize) -> Result<Vec<u16>> {
        let (data, frame_px) = (&self.bytes, self.frame_px);
        let short = || Error::format(path, format!("pixel data too short for frame {}", f + 1));
        match self.bits {
            1 => Ok(frames::unpack_frame_bits(data, f, frame_px)
                .ok_or_else(short)?
                .into_iter()
                .map(u16::from)
                .collect()),
            8 => Ok(data
                .get(f * frame_px..(f + 1) * frame_px)
                .ok_or_else(short)?
                .iter()
                .map(|&v| v as u16)
                .collect()),
            _ => Ok(data
                .get(2 * f * frame_px..2 * (f + 1) * frame_px)
                .ok_or_else(short)?
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()),
        }
    }
}

/// The SegmentSequence (a label map's background segment 0 left out); at least one segment.
fn segment_infos(path: &Path, file: &InMemDicomObject, kind: SegKind) -> Result<Vec<SegmentInfo>> {
    let mut segments = Vec::new();
    for item in items(file, tags::SEGMENT_SEQUENCE) {
        let number = get_int(item, tags::SEGMENT_NUMBER)
            .ok_or_else(|| Error::format(path, "segment without SegmentNumber"))?;
        let number = u16::try_from(number)
            .map_err(|_| Error::format(path, format!("SegmentNumber {number} out of range")))?;
        if kind == SegKind::Labelmap && number == 0 {
            continue; // the label map's background
        }
        let lab = item
            .get(tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE)
            .and_then(|e| e.to_multi_int::<u16>().ok())
            .filter(|v| v.len() == 3)
            .map(|v| [v[0], v[1], v[2]]);
        segments.push(SegmentInfo {
            number,
            label: get_str(item, tags::SEGMENT_LABEL).unwrap_or_default(),
            category: code(item, tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE),
            property_type: code(item, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE),
            property_type_modifier: items(item, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE)
                .first()
                .and_then(|t| code(t, tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE)),
            anatomic_region: code(item, tags::ANATOMIC_REGION_SEQUENCE),
            algorithm_type: get_str(item, tags::SEGMENT_ALGORITHM_TYPE).unwrap_or_default(),
            algorithm_name: get_str(item, tags::SEGMENT_ALGORITHM_NAME),
            cielab: lab,
        });
    }
    if segments.is_empty() {
        return Err(Error::format(path, "SegmentSequence describes no segments"));
    }
    Ok(segments)
}

/// The shared and per-frame functional groups.
struct FunctionalGroups<'a> {
    shared: Option<&'a InMemDicomObject>,
    per_frame: &'a [InMemDicomObject],
}

impl<'a> FunctionalGroups<'a> {
    /// The groups of `file`, which must have one per-frame item per frame.
    fn of(path: &Path, file: &'a InMemDicomObject, n_frames: usize) -> Result<Self> {
        let shared = items(file, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).first();
        let per_frame = items(file, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
        if per_frame.len() != n_frames {
            return Err(Error::format(
                path,
                format!(
                    "{} per-frame functional groups for {n_frames} frames",
                    per_frame.len()
                ),
            ));
        }
        Ok(FunctionalGroups { shared, per_frame })
    }

    /// Functional group macro `seq` of frame `f`: per-frame first, else shared.
    fn get(&self, f: usize, seq: Tag) -> Option<&'a InMemDicomObject> {
        items(&self.per_frame[f], seq)
            .first()
            .or_else(|| self.shared.and_then(|s| items(s, seq).first()))
    }
}

/// The image plane all frames share, from frame 1's (or the shared) groups.
struct Plane {
    /// ImageOrientationPatient as stored (6 values), to compare other frames with.
    iop: Vec<f64>,
    /// PixelSpacing (between rows, between columns).
    spacing: Vec<f64>,
    /// SpacingBetweenSlices, when valid.
    between: Option<f64>,
    /// SliceThickness, when valid.
    thickness: Option<f64>,
    row_dir: [f64; 3],
    col_dir: [f64; 3],
    /// row × column: the direction slices are stacked along.
    normal: [f64; 3],
}

impl Plane {
    fn of(path: &Path, groups: &FunctionalGroups) -> Result<Plane> {
        let iop = groups
            .get(0, tags::PLANE_ORIENTATION_SEQUENCE)
            .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT))
            .filter(|v| v.len() == 6)
            .ok_or_else(|| Error::format(path, "no ImageOrientationPatient"))?;
        let measure = |tag: Tag| {
            groups
                .get(0, tags::PIXEL_MEASURES_SEQUENCE)
                .and_then(|g| floats(g, tag))
        };
        let spacing = measure(tags::PIXEL_SPACING)
            .filter(|v| v.len() == 2 && v.iter().all(|&s| s.is_finite() && s > 0.0))
            .ok_or_else(|| Error::format(path, "no valid PixelSpacing"))?;
        let positive = |v: Vec<f64>| v.first().copied().filter(|s| s.is_finite() && *s > 0.0);
        let between = measure(tags::SPACING_BETWEEN_SLICES).and_then(positive);
        let thickness = measure(tags::SLICE_THICKNESS).and_then(positive);
        let bad = || Error::format(path, "bad IOP");
        let row_dir = unit([iop[0], iop[1], iop[2]]).ok_or_else(bad)?;
        let col_dir = unit([iop[3], iop[4], iop[5]]).ok_or_else(bad)?;
        let normal = unit(cross(row_dir, col_dir)).ok_or_else(bad)?;
        Ok(Plane {
            iop,
            spacing,
            between,
            thickness,
            row_dir,
            col_dir,
            normal,
        })
    }
}

/// One frame: where it lies, which segment it shows and the slice it was derived from.
struct Frame {
    /// ImagePositionPatient.
    ipp: [f64; 3],
    /// Index into the segments (BINARY); `None` for a label map, whose pixels name segments.
    segment: Option<usize>,
    /// (ReferencedSOPInstanceUID, ReferencedFrameNumber or 0) of its source image.
    source: Option<(String, u32)>,
}

/// Frame `f`'s position, segment and source, checking that it lies in the common plane.
fn read_frame(
    path: &Path,
    groups: &FunctionalGroups,
    plane: &Plane,
    f: usize,
    kind: SegKind,
    seg_index: &HashMap<u16, usize>,
) -> Result<Frame> {
    let ipp = groups
        .get(f, tags::PLANE_POSITION_SEQUENCE)
        .and_then(|g| floats(g, tags::IMAGE_POSITION_PATIENT))
        .filter(|v| v.len() == 3 && v.iter().all(|x| x.is_finite()))
        .ok_or_else(|| {
            Error::format(path, format!("frame {} has no ImagePositionPatient", f + 1))
        })?;
    if let Some(o) = groups
        .get(f, tags::PLANE_ORIENTATION_SEQUENCE)
        .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT))
    {
        if o.len() != 6 || o.iter().zip(&plane.iop).any(|(a, b)| (a - b).abs() > 1e-4) {
            return Err(Error::unsupported(
                path,
                format!("frame {} has a different orientation", f + 1),
            ));
        }
    }
    let segment = match kind {
        SegKind::Labelmap => None,
        SegKind::Binary => Some(frame_segment(path, groups, f, seg_index)?),
    };
    let source = items(&groups.per_frame[f], tags::DERIVATION_IMAGE_SEQUENCE)
        .first()
        .and_then(|d| items(d, tags::SOURCE_IMAGE_SEQUENCE).first())
        .and_then(|s| {
            let uid = get_str(s, tags::REFERENCED_SOP_INSTANCE_UID)?;
            let frame = get_int(s, tags::REFERENCED_FRAME_NUMBER).unwrap_or(0);
            Some((uid, frame))
        });
    Ok(Frame {
        ipp: [ipp[0], ipp[1], ipp[2]],
        segment,
        source,
    })
}

/// The index of the segment a BINARY frame `f` shows (ReferencedSegmentNumber).
fn frame_segment(
    path: &Path,
    groups: &FunctionalGroups,
    f: usize,
    seg_index: &HashMap<u16, usize>,
) -> Result<usize> {
    let n = groups
        .get(f, tags::SEGMENT_IDENTIFICATION_SEQUENCE)
        .and_then(|g| get_int(g, tags::REFERENCED_SEGMENT_NUMBER))
        .ok_or_else(|| Error::format(path, format!("frame {} names no segment", f + 1)))?;
    u16::try_from(n)
        .ok()
        .and_then(|n| seg_index.get(&n).copied())
        .ok_or_else(|| Error::format(path, format!("frame {} names unknown segment {n}", f + 1)))
}

/// The grid the masks are painted on, and the slice of it each frame fills.
struct Grid {
    geometry: Geometry,
    /// Slices in the grid.
    nz: usize,
    /// Slice index of each frame.
    slice_of: Vec<usize>,
}

/// The referenced series' grid: frames must share its rows, columns and orientation, and are
/// placed by their source reference, else by position.
fn grid_on_series(
    path: &Path,
    vol: &Volume,
    format: &FrameFormat,
    plane: &Plane,
    frames: &[Frame],
    warnings: &mut Vec<String>,
) -> Result<Grid> {
    let [nx, ny, nz] = vol.dims_xyz();
    let (rows, cols) = (format.rows, format.cols);
    if nx != cols || ny != rows {
        return Err(Error::format(
            path,
            format!("frames are {cols}×{rows} but the referenced series is {nx}×{ny}"),
        ));
    }
    let g = vol.geometry;
    if dot(g.axis(0), plane.row_dir) < 1.0 - 1e-4 || dot(g.axis(1), plane.col_dir) < 1.0 - 1e-4 {
        return Err(Error::unsupported(
            path,
            "frames are not oriented like the referenced series",
        ));
    }
    let by_uid: HashMap<(&str, u32), usize> = vol
        .meta
        .dicom
        .as_ref()
        .map(|r| {
            r.slices
                .iter()
                .enumerate()
                .map(|(k, s)| ((s.sop_instance_uid.as_str(), s.frame), k))
                .collect()
        })
        .unwrap_or_default();
    let slice_of = frames
        .iter()
        .enumerate()
        .map(|(f, fr)| slice_on_series(path, &g, nz, &by_uid, f, fr, warnings))
        .collect::<Result<Vec<usize>>>()?;
    Ok(Grid {
        geometry: g,
        nz,
        slice_of,
    })
}

/// The slice of the referenced series (geometry `g`, `nz` slices) that frame `f` belongs to.
/// Its source reference wins over its position: anonymisers keep references consistent more
/// often than positions exact.
fn slice_on_series(
    path: &Path,
    g: &Geometry,
    nz: usize,
    by_uid: &HashMap<(&str, u32), usize>,
    f: usize,
    fr: &Frame,
    warnings: &mut Vec<String>,
) -> Result<usize> {
    let idx = lps_to_index(g, fr.ipp);
    let by_pos = (idx[0].abs() < 1e-2 && idx[1].abs() < 1e-2)
        .then(|| idx[2].round())
        .filter(|k| (idx[2] - k).abs() < 0.1 && *k >= 0.0 && (*k as usize) < nz)
        .map(|k| k as usize);
    let by_ref = fr
        .source
        .as_ref()
        .and_then(|(u, n)| by_uid.get(&(u.as_str(), *n)).copied());
    match (by_ref, by_pos) {
        (Some(r), Some(p)) if r != p => {
            warnings.push(format!(
                "frame {} references slice {r} but lies on slice {p}; using the reference",
                f + 1
            ));
            Ok(r)
        }
        (Some(r), _) => Ok(r),
        (None, Some(p)) => Ok(p),
        (None, None) => Err(Error::format(
            path,
            format!(
                "frame {} at {:?} lies on no slice of the referenced series",
                f + 1,
                fr.ipp
            ),
        )),
    }
}

/// The regular grid the frames span on their own: origin at the frame lowest along the normal,
/// slice step from SpacingBetweenSlices, else the smallest gap between frames, else
/// SliceThickness, else 1 mm.
fn grid_of_frames(path: &Path, plane: &Plane, frames: &[Frame]) -> Result<Grid> {
    let normal = plane.normal;
    let d: Vec<f64> = frames.iter().map(|fr| dot(fr.ipp, normal)).collect();
    let dmin = d.iter().copied().fold(f64::INFINITY, f64::min);
    let mut uniq: Vec<f64> = d.clone();
    uniq.sort_by(f64::total_cmp);
    uniq.dedup_by(|a, b| (*a - *b).abs() < 1e-3);
    let min_gap = uniq
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let step = plane
        .between
        .or(min_gap.is_finite().then_some(min_gap))
        .or(plane.thickness)
        .unwrap_or(1.0);
    let first = d.iter().position(|&x| (x - dmin).abs() < 1e-3).unwrap_or(0);
    let origin = frames[first].ipp;
    let mut slice_of = Vec::with_capacity(frames.len());
    for (f, fr) in frames.iter().enumerate() {
        let kf = (d[f] - dmin) / step;
        let k = kf.round();
        let off = sub(fr.ipp, add(origin, scale(normal, k * step)));
        if (kf - k).abs() > 0.05 || norm(off) > 1e-2 {
            return Err(Error::unsupported(
                path,
                format!(
                    "frame {} does not lie on a regular grid with the others",
                    f + 1
                ),
            ));
        }
        slice_of.push(k as usize);
    }
    let nz = slice_of.iter().max().map_or(1, |m| m + 1);
    let (row_dir, col_dir) = (plane.row_dir, plane.col_dir);
    let geometry = Geometry {
        spacing: [plane.spacing[1], plane.spacing[0], step],
        origin,
        direction: [
            [row_dir[0], col_dir[0], normal[0]],
            [row_dir[1], col_dir[1], normal[1]],
            [row_dir[2], col_dir[2], normal[2]],
        ],
    };
    Ok(Grid {
        geometry,
        nz,
        slice_of,
    })
}

/// Paints frames into the per-segment masks.
struct Painter {
    /// One `[z, y, x]` mask per segment.
    masks: Vec<Array3<u8>>,
    cols: usize,
    /// MaximumFractionalValue for FRACTIONAL frames (a pixel is in at half of it or more);
    /// `None` when any non-zero pixel is in.
    max_fraction: Option<u32>,
    /// Set when a label map holds a value no segment describes.
    unknown_values: bool,
}

impl Painter {
    /// Paints frame pixels `px` into slice `k`: into segment `segment`'s mask (BINARY,
    /// FRACTIONAL), or, for a label map, into the mask of the segment each pixel value names.
    fn paint(
        &mut self,
        segment: Option<usize>,
        k: usize,
        px: &[u16],
        seg_index: &HashMap<u16, usize>,
    ) {
        match segment {
            Some(s) => {
                let mut plane = self.masks[s].index_axis_mut(ndarray::Axis(0), k);
                for (o, &v) in plane.iter_mut().zip(px) {
                    let on = match self.max_fraction {
                        Some(max) => 2 * v as i64 >= max as i64,
                        None => v != 0,
                    };
                    if on {
                        *o = 1;
                    }
                }
            }
            None => {
                let cols = self.cols;
                for (i, &v) in px.iter().enumerate() {
                    if v == 0 {
                        continue;
                    }
                    match seg_index.get(&v) {
                        Some(&s) => self.masks[s][[k, i / cols, i % cols]] = 1,
                        None => self.unknown_values = true,
                    }
                }
            }
        }
    }
}

/// The Pixel Data bytes, decoded when encapsulated (8/16-bit only).
fn pixel_bytes(path: &Path, file: &dicom_object::DefaultDicomObject, bits: u32) -> Result<Vec<u8>> {
    let elem = file
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| Error::format(path, "no Pixel Data"))?;
    if elem.fragments().is_none() {
        return elem
            .to_bytes()
            .map(|b| b.into_owned())
            .map_err(|e| Error::format(path, format!("Pixel Data: {e}")));
    }
    if bits == 1 {
        return Err(Error::unsupported(
            path,
            "compressed 1-bit segmentation frames",
        ));
    }
    use dicom_pixeldata::PixelDecoder;
    let decoded = file
        .decode_pixel_data()
        .map_err(|e| Error::unsupported(path, format!("decoding Pixel Data: {e}")))?;
    Ok(decoded.data().to_vec())
}

fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

fn get_str(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_string())
        .filter(|s| !s.is_empty())
}

fn get_int(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    obj.get(tag).and_then(|e| e.to_int::<u32>().ok())
}

fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag).and_then(|e| e.to_multi_float64().ok())
}

fn code(obj: &InMemDicomObject, tag: Tag) -> Option<Code> {
    let item = items(obj, tag).first()?;
    Some(Code {
        value: get_str(item, tags::CODE_VALUE).unwrap_or_default(),
        scheme: get_str(item, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
        meaning: get_str(item, tags::CODE_MEANING).unwrap_or_default(),
    })
}

/// Index coordinates of an LPS point (the geometry's direction columns are orthonormal).
fn lps_to_index(g: &Geometry, p: [f64; 3]) -> [f64; 3] {
    let d = sub(p, g.origin);
    [0, 1, 2].map(|c| dot(d, g.axis(c)) / g.spacing[c])
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
fn unit(a: [f64; 3]) -> Option<[f64; 3]> {
    let n = norm(a);
    (n.is_finite() && n > 1e-6).then(|| scale(a, 1.0 / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_seg_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.dcm");
        std::fs::write(&p, b"not dicom").unwrap();
        assert!(matches!(read_seg(&p, None), Err(Error::Format { .. })));
    }
}
