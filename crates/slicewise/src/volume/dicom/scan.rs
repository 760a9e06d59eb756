//! Finding DICOM files, opening them (with or without a file meta group) and reading the header
//! facts series assembly needs, frame by frame.

use std::path::{Path, PathBuf};

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::colour::Palette;
use super::plane::normal;
use super::series::SequenceFacts;
use crate::error::{Error, Result};
use crate::formats::dicom_lengths;
use crate::volume::ReadOptions;

/// Patient/study attributes copied into derived objects (DicomRefs::copied_attributes).
const COPIED: [(&str, Tag); 11] = [
    ("PatientName", tags::PATIENT_NAME),
    ("PatientID", tags::PATIENT_ID),
    ("PatientBirthDate", tags::PATIENT_BIRTH_DATE),
    ("PatientSex", tags::PATIENT_SEX),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("StudyDate", tags::STUDY_DATE),
    ("StudyTime", tags::STUDY_TIME),
    ("StudyID", tags::STUDY_ID),
    ("AccessionNumber", tags::ACCESSION_NUMBER),
    ("ReferringPhysicianName", tags::REFERRING_PHYSICIAN_NAME),
    ("StudyDescription", tags::STUDY_DESCRIPTION),
];

/// Implicit VR little endian: the encoding of a raw data set without a meta group.
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// Most frames one object may declare.
const MAX_FRAMES: u32 = 1 << 20;

/// Folder depth beyond which we stop descending (guards against symlink loops).
const MAX_DEPTH: usize = 32;

/// Geometry and value transform of one frame (a single-frame file has one).
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameInfo {
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    /// DICOM order: [row spacing, column spacing].
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub spacing_between: Option<f64>,
    pub slope: f64,
    pub intercept: f64,
}

/// Header facts of one image file.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub path: PathBuf,
    pub ts_uid: String,
    pub has_meta: bool,
    pub series_uid: String,
    pub study_uid: String,
    pub frame_of_reference_uid: Option<String>,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub modality: Option<String>,
    pub description: Option<String>,
    pub series_number: Option<i64>,
    /// ImageType's values, upper case.
    pub image_type: Vec<String>,
    pub sequence: SequenceFacts,
    pub instance_number: Option<i64>,
    pub rows: u32,
    pub cols: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub planar_configuration: u16,
    pub photometric: String,
    pub number_of_frames: u32,
    /// Whether the object is multi-frame (NumberOfFrames present), for SliceRef frame numbers.
    pub multi_frame: bool,
    pub frames: Vec<FrameInfo>,
    pub copied: Vec<(String, String)>,
    /// The lookup tables of a PALETTE COLOR image.
    pub palette: Option<Palette>,
}

/// Lists the candidate files of `path`: the file itself, or every file below a folder (sorted,
/// hidden files and DICOMDIR left out).
pub(crate) fn candidate_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list folder", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list folder", dir, e))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.eq_ignore_ascii_case("DICOMDIR") {
            continue;
        }
        let md = std::fs::metadata(&p).map_err(|e| Error::io("access", &p, e))?;
        if md.is_dir() {
            walk(&p, depth + 1, out)?;
        } else if md.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Cheap test from the first bytes: a preamble + "DICM", or a raw data set starting with a
/// plausible group 0008 element.
pub(crate) fn looks_like_dicom(head: &[u8]) -> bool {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return true;
    }
    raw_dataset_ts(head).is_some()
}

/// For a file without preamble/meta: the transfer syntax its first element suggests, or None
/// when the first element does not look like DICOM at all.
fn raw_dataset_ts(head: &[u8]) -> Option<&'static str> {
    let explicit = dicom_lengths::raw_dataset_explicit(head)?;
    Some(if explicit { EXPLICIT_LE } else { IMPLICIT_LE })
}

/// Opens a DICOM file. With `headers_only` the pixel data is not read. Files without a meta
/// group (raw data sets) are read whole and given a meta group with the guessed transfer syntax.
pub(crate) fn open(path: &Path, headers_only: bool) -> Result<(DefaultDicomObject, bool)> {
    // Before the parser sees it: a corrupt length would make it allocate up to 4 GiB and abort.
    let preflight = dicom_lengths::check(path)?;
    if let (Some(at), Some(ts)) = (preflight.implicit_dataset_at, &preflight.transfer_syntax) {
        return open_implicit_dataset(path, at, ts).map(|obj| (obj, true));
    }
    let mut opts = OpenFileOptions::new();
    if headers_only {
        opts = opts.read_until(tags::PIXEL_DATA);
    }
    match opts.open_file(path) {
        Ok(obj) => Ok((obj, true)),
        Err(first) => {
            let head = crate::volume::read_head(path, 132)?;
            if head.len() >= 132 && &head[128..132] == b"DICM" {
                return Err(Error::format(
                    path,
                    format!("not a readable DICOM file: {first}"),
                ));
            }
            let Some(ts_uid) = raw_dataset_ts(&head) else {
                return Err(Error::format(
                    path,
                    "not a DICOM file (no DICM preamble and no plausible data set start)",
                ));
            };
            let ts = TransferSyntaxRegistry
                .get(ts_uid)
                .ok_or_else(|| Error::format(path, "transfer syntax registry incomplete"))?;
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let reader = std::io::BufReader::new(file);
            let obj = InMemDicomObject::read_dataset_with_ts(reader, ts)
                .map_err(|e| Error::format(path, format!("not a readable DICOM data set: {e}")))?;
            let obj = obj
                .with_meta(FileMetaTableBuilder::new().transfer_syntax(ts_uid))
                .map_err(|e| Error::format(path, format!("cannot build a meta group: {e}")))?;
            Ok((obj, false))
        }
    }
}

/// The text of an attribute stored with VR UN (unknown), which writers use for attributes they
/// do not know and the parser then leaves as bytes: pydicom reads such values with the
/// dictionary's VR, and every attribute we read as text or decimal numbers is a text VR
/// (CS, DS, IS, LO, UI, ...). None for any other VR.
fn un_text(elem: &dicom_object::mem::InMemElement) -> Option<String> {
    if elem.vr() != VR::UN {
        return None;
    }
    let bytes = elem.value().to_bytes().ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn trimmed(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// A file whose meta group declares explicit VR but whose data set (from byte `at`) is implicit
/// VR little endian: the data set is read as such and keeps the declared transfer syntax, whose
/// codec still decodes the pixel data (pydicom reads these files the same way).
fn open_implicit_dataset(path: &Path, at: u64, declared: &str) -> Result<DefaultDicomObject> {
    use std::io::{Seek, SeekFrom};
    log::warn!(
        "{}: the data set is implicit VR although the meta group declares {declared}; read as \
         implicit VR",
        path.display()
    );
    let implicit = TransferSyntaxRegistry
        .get(IMPLICIT_LE)
        .ok_or_else(|| Error::format(path, "transfer syntax registry incomplete"))?;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    file.seek(SeekFrom::Start(at))
        .map_err(|e| Error::io("read", path, e))?;
    let obj = InMemDicomObject::read_dataset_with_ts(std::io::BufReader::new(file), implicit)
        .map_err(|e| Error::format(path, format!("not a readable DICOM data set: {e}")))?;
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(declared))
        .map_err(|e| Error::format(path, format!("cannot build a meta group: {e}")))
}

/// A trimmed string attribute (None when absent or empty).
pub(crate) fn get_str(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let elem = obj.get(tag)?;
    let s = match un_text(elem) {
        Some(t) => t,
        None => elem.to_str().ok()?.into_owned(),
    };
    let s = trimmed(&s);
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) fn get_f64s(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let elem = obj.get(tag)?;
    let v = match un_text(elem) {
        Some(t) => t
            .split('\\')
            .map(|x| trimmed(x).parse::<f64>().ok())
            .collect::<Option<Vec<f64>>>()?,
        None => elem.to_multi_float64().ok()?,
    };
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then_some(v)
}

fn get_f64(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    get_f64s(obj, tag).and_then(|v| v.first().copied())
}

fn get_int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let elem = obj.get(tag)?;
    if elem.vr() != VR::UN {
        return elem.to_int::<i64>().ok();
    }
    // A UN value read with the dictionary's VR, as pydicom reads it.
    let bytes = elem.value().to_bytes().ok()?;
    match dictionary_vr(tag)? {
        VR::US => Some(i64::from(u16::from_le_bytes(
            bytes.get(..2)?.try_into().ok()?,
        ))),
        VR::UL => Some(i64::from(u32::from_le_bytes(
            bytes.get(..4)?.try_into().ok()?,
        ))),
        VR::IS => trimmed(String::from_utf8_lossy(&bytes).split('\\').next()?)
            .parse()
            .ok(),
        _ => None,
    }
}

/// The VR the standard dictionary gives `tag`, when it gives exactly one.
fn dictionary_vr(tag: Tag) -> Option<VR> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    match dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)?
        .vr()
    {
        VirtualVr::Exact(vr) => Some(vr),
        _ => None,
    }
}

/// The values of a multi-valued code string, trimmed and upper case (empty when absent).
fn get_values(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    get_str(obj, tag)
        .map(|s| {
            s.split('\\')
                .map(|v| trimmed(v).to_ascii_uppercase())
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The MR sequence attributes: top-level (MR Image), else from the shared functional groups
/// (enhanced MR: MR Timing, MR Echo and MR Modifier sequences).
fn sequence_facts(obj: &InMemDicomObject) -> SequenceFacts {
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let in_group = |seq: Tag, tag: Tag| {
        shared
            .and_then(|g| first_item(g, seq))
            .and_then(|item| get_f64(item, tag))
    };
    SequenceFacts {
        scanning_sequence: get_values(obj, tags::SCANNING_SEQUENCE),
        sequence_variant: get_values(obj, tags::SEQUENCE_VARIANT),
        repetition_time: get_f64(obj, tags::REPETITION_TIME).or_else(|| {
            in_group(
                tags::MR_TIMING_AND_RELATED_PARAMETERS_SEQUENCE,
                tags::REPETITION_TIME,
            )
        }),
        echo_time: get_f64(obj, tags::ECHO_TIME)
            .or_else(|| in_group(tags::MR_ECHO_SEQUENCE, tags::EFFECTIVE_ECHO_TIME)),
        inversion_time: get_f64(obj, tags::INVERSION_TIME)
            .or_else(|| in_group(tags::MR_MODIFIER_SEQUENCE, tags::INVERSION_TIMES)),
    }
}

/// The first item of a sequence attribute.
fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

fn arr<const N: usize>(v: Option<Vec<f64>>) -> Option<[f64; N]> {
    let v = v?;
    v.get(..N)?.try_into().ok()
}

/// Fills `f` from one functional-group item (shared or per-frame); present values win.
fn apply_group(f: &mut FrameInfo, g: &InMemDicomObject) {
    if let Some(p) = first_item(g, tags::PLANE_POSITION_SEQUENCE) {
        if let Some(v) = arr(get_f64s(p, tags::IMAGE_POSITION_PATIENT)) {
            f.position = Some(v);
        }
    }
    if let Some(o) = first_item(g, tags::PLANE_ORIENTATION_SEQUENCE) {
        if let Some(v) = arr(get_f64s(o, tags::IMAGE_ORIENTATION_PATIENT)) {
            f.orientation = Some(v);
        }
    }
    if let Some(m) = first_item(g, tags::PIXEL_MEASURES_SEQUENCE) {
        if let Some(v) = arr(get_f64s(m, tags::PIXEL_SPACING)) {
            f.pixel_spacing = Some(v);
        }
        if let Some(v) = get_f64(m, tags::SLICE_THICKNESS) {
            f.slice_thickness = Some(v);
        }
        if let Some(v) = get_f64(m, tags::SPACING_BETWEEN_SLICES) {
            f.spacing_between = Some(v);
        }
    }
    if let Some(t) = first_item(g, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
        if let Some(v) = get_f64(t, tags::RESCALE_SLOPE) {
            f.slope = v;
        }
        if let Some(v) = get_f64(t, tags::RESCALE_INTERCEPT) {
            f.intercept = v;
        }
    }
}

/// Reads the header facts of an opened image object. Returns Ok(None) for an object without
/// image attributes (Rows/Columns), e.g. a structured report or RT plan.
pub(crate) fn header(
    path: &Path,
    obj: &DefaultDicomObject,
    has_meta: bool,
    options: &ReadOptions,
) -> Result<Option<Header>> {
    let (Some(rows), Some(cols)) = (get_int(obj, tags::ROWS), get_int(obj, tags::COLUMNS)) else {
        return Ok(None);
    };
    let px = pixel_format(path, obj, rows, cols, options)?;
    let photometric =
        get_str(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_else(|| "MONOCHROME2".into());
    let palette = match photometric.as_str() {
        "PALETTE COLOR" => Some(Palette::read(path, obj)?),
        _ => None,
    };
    let modality = get_str(obj, tags::MODALITY);
    let frames = frame_infos(path, obj, px.n_frames, modality.as_deref())?;
    let meta_sop_instance = obj
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0');
    Ok(Some(Header {
        path: path.to_path_buf(),
        ts_uid: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string(),
        has_meta,
        series_uid: get_str(obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        study_uid: get_str(obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference_uid: get_str(obj, tags::FRAME_OF_REFERENCE_UID),
        sop_class_uid: get_str(obj, tags::SOP_CLASS_UID).unwrap_or_else(|| {
            obj.meta()
                .media_storage_sop_class_uid()
                .trim_end_matches('\0')
                .to_string()
        }),
        sop_instance_uid: get_str(obj, tags::SOP_INSTANCE_UID)
            .unwrap_or_else(|| meta_sop_instance.to_string()),
        modality,
        description: get_str(obj, tags::SERIES_DESCRIPTION),
        series_number: get_int(obj, tags::SERIES_NUMBER),
        image_type: get_values(obj, tags::IMAGE_TYPE),
        sequence: sequence_facts(obj),
        instance_number: get_int(obj, tags::INSTANCE_NUMBER),
        rows: px.rows,
        cols: px.cols,
        samples_per_pixel: px.spp,
        bits_allocated: px.bits_allocated,
        bits_stored: px.bits_stored,
        signed: get_int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1,
        planar_configuration: get_int(obj, tags::PLANAR_CONFIGURATION).unwrap_or(0) as u16,
        photometric,
        number_of_frames: px.n_frames,
        multi_frame: px.multi_frame,
        frames,
        copied: copied_attributes(obj),
        palette,
    }))
}

/// The validated Image Pixel attributes of an object.
struct PixelFormat {
    rows: u32,
    cols: u32,
    spp: u16,
    bits_allocated: u16,
    bits_stored: u16,
    n_frames: u32,
    /// NumberOfFrames is present (the object is multi-frame).
    multi_frame: bool,
}

/// Checks Rows/Columns and the sample attributes against what we decode, and the whole pixel
/// array against the size limit: all before anything is allocated for the pixels.
fn pixel_format(
    path: &Path,
    obj: &InMemDicomObject,
    rows: i64,
    cols: i64,
    options: &ReadOptions,
) -> Result<PixelFormat> {
    let bad = |what: &str| Error::format(path, format!("invalid {what}"));
    let rows = u32::try_from(rows)
        .ok()
        .filter(|&r| r > 0)
        .ok_or_else(|| bad("Rows"))?;
    let cols = u32::try_from(cols)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| bad("Columns"))?;
    let spp = get_int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let spp = u16::try_from(spp)
        .ok()
        .filter(|s| *s == 1 || *s == 3)
        .ok_or_else(|| Error::unsupported(path, format!("SamplesPerPixel {spp}")))?;
    let ba = get_int(obj, tags::BITS_ALLOCATED).ok_or_else(|| bad("BitsAllocated (missing)"))?;
    let ba = u16::try_from(ba)
        .ok()
        .filter(|b| matches!(b, 1 | 8 | 16 | 32))
        .ok_or_else(|| Error::unsupported(path, format!("BitsAllocated {ba}")))?;
    let bs = get_int(obj, tags::BITS_STORED).unwrap_or(ba as i64);
    let bs = u16::try_from(bs)
        .ok()
        .filter(|b| *b >= 1 && *b <= ba)
        .ok_or_else(|| bad("BitsStored"))?;
    let frames_attr = get_int(obj, tags::NUMBER_OF_FRAMES);
    let n_frames = frames_attr.unwrap_or(1);
    let n_frames = u32::try_from(n_frames)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("NumberOfFrames"))?;
    // Per-frame bookkeeping is allocated before any pixel: bound it too.
    if n_frames > MAX_FRAMES {
        return Err(Error::too_large(
            path,
            format!("NumberOfFrames {n_frames} exceeds the limit of {MAX_FRAMES}"),
        ));
    }
    options.check_size(
        path,
        &[spp as u64, n_frames as u64, rows as u64, cols as u64],
    )?;
    if obj.get(tags::FLOAT_PIXEL_DATA).is_some() || obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
    {
        return Err(Error::unsupported(path, "float pixel data"));
    }
    Ok(PixelFormat {
        rows,
        cols,
        spp,
        bits_allocated: ba,
        bits_stored: bs,
        n_frames,
        multi_frame: frames_attr.is_some(),
    })
}

/// The geometry and value transform of each of the `n_frames` frames: the object's own
/// attributes and shared functional groups, then each frame's functional group (enhanced
/// objects) or the grid frame offsets (classic multi-frame).
fn frame_infos(
    path: &Path,
    obj: &InMemDicomObject,
    n_frames: u32,
    modality: Option<&str>,
) -> Result<Vec<FrameInfo>> {
    let base = base_frame(obj, modality);
    let mut frames = vec![base.clone(); n_frames as usize];
    if let Some(per) = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
    {
        // More items than frames occurs in the wild (pydicom's liver_1frame.dcm); fewer cannot
        // describe every frame.
        if per.len() < n_frames as usize {
            return Err(Error::format(
                path,
                format!(
                    "PerFrameFunctionalGroupsSequence has {} items for {n_frames} frames",
                    per.len()
                ),
            ));
        }
        for (f, g) in frames.iter_mut().zip(per) {
            apply_group(f, g);
        }
    } else if n_frames > 1 {
        offset_frames(path, obj, &base, &mut frames)?;
    }
    Ok(frames)
}

/// What every frame starts from: the object's top-level attributes, then the shared functional
/// groups.
fn base_frame(obj: &InMemDicomObject, modality: Option<&str>) -> FrameInfo {
    let mut base = FrameInfo {
        position: arr(get_f64s(obj, tags::IMAGE_POSITION_PATIENT)),
        orientation: arr(get_f64s(obj, tags::IMAGE_ORIENTATION_PATIENT)),
        pixel_spacing: arr(get_f64s(obj, tags::PIXEL_SPACING))
            .or_else(|| arr(get_f64s(obj, tags::IMAGER_PIXEL_SPACING))),
        slice_thickness: get_f64(obj, tags::SLICE_THICKNESS),
        spacing_between: get_f64(obj, tags::SPACING_BETWEEN_SLICES),
        slope: get_f64(obj, tags::RESCALE_SLOPE).unwrap_or(1.0),
        intercept: get_f64(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    };
    // RT dose scales its stored values by DoseGridScaling rather than RescaleSlope.
    if modality == Some("RTDOSE") && obj.get(tags::RESCALE_SLOPE).is_none() {
        if let Some(s) = get_f64(obj, tags::DOSE_GRID_SCALING) {
            base.slope = s;
        }
    }
    if let Some(shared) = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE) {
        apply_group(&mut base, shared);
    }
    base
}

/// Classic multi-frame (RT dose, NM): frames offset from `base`'s position along the normal by
/// GridFrameOffsetVector. The offsets are relative to ImagePositionPatient when the first is 0,
/// else absolute (the first equals the position's z; axial only): `position + (offset - first)
/// × normal` covers both (PS3.3 C.8.8.3.2). Without offsets, position or orientation the frames
/// have no position (the series is then ordered by instance); offsets that do not match the
/// frames are an error rather than frames stacked at one position.
fn offset_frames(
    path: &Path,
    obj: &InMemDicomObject,
    base: &FrameInfo,
    frames: &mut [FrameInfo],
) -> Result<()> {
    let (Some(offsets), Some(p), Some(o)) = (
        get_f64s(obj, tags::GRID_FRAME_OFFSET_VECTOR),
        base.position,
        base.orientation,
    ) else {
        for f in frames.iter_mut() {
            f.position = None;
        }
        return Ok(());
    };
    if offsets.len() != frames.len() {
        return Err(Error::format(
            path,
            format!(
                "GridFrameOffsetVector has {} values for {} frames",
                offsets.len(),
                frames.len()
            ),
        ));
    }
    let n = normal(&o);
    let first = offsets[0];
    for (f, off) in frames.iter_mut().zip(offsets) {
        let d = off - first;
        f.position = Some([p[0] + d * n[0], p[1] + d * n[1], p[2] + d * n[2]]);
    }
    Ok(())
}

/// The [`COPIED`] attributes the object has, by keyword (empty text for an empty value).
fn copied_attributes(obj: &InMemDicomObject) -> Vec<(String, String)> {
    COPIED
        .iter()
        .filter_map(|(k, t)| {
            obj.get(*t)
                .map(|_| (k.to_string(), get_str(obj, *t).unwrap_or_default()))
        })
        .collect()
}

/// Result of scanning an input: the image headers found and the files skipped (with reasons).
pub(crate) struct Scan {
    pub headers: Vec<Header>,
    pub skipped: Vec<String>,
}

/// Reads the headers of every file of `path`. A single file that fails is an error; in a folder
/// failing files are skipped and reported.
pub(crate) fn scan(path: &Path, options: &ReadOptions) -> Result<Scan> {
    let files = candidate_files(path)?;
    let single = files.len() == 1 && !std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
    let mut headers = Vec::new();
    let mut skipped = Vec::new();
    for f in &files {
        let r = open(f, true).and_then(|(obj, has_meta)| header(f, &obj, has_meta, options));
        match r {
            Ok(Some(h)) => headers.push(h),
            Ok(None) if single => {
                return Err(Error::format(
                    f,
                    "DICOM object holds no image (no Rows/Columns)",
                ))
            }
            Ok(None) => skipped.push(format!("skipped {}: no image", f.display())),
            Err(e) if single => return Err(e),
            Err(e) => {
                log::warn!("{e}");
                skipped.push(format!("skipped {e}"));
            }
        }
    }
    if headers.is_empty() {
        let mut msg = format!(
            "no DICOM image files found ({} files looked at)",
            files.len()
        );
        if let Some(first) = skipped.first() {
            msg.push_str(&format!("; first problem: {first}"));
        }
        return Err(Error::format(path, msg));
    }
    Ok(Scan { headers, skipped })
}

#[cfg(test)]
mod tests {
    use dicom_core::{DataElement, PrimitiveValue};

    use super::*;

    fn un(tag: Tag, bytes: &[u8]) -> InMemDicomObject {
        InMemDicomObject::from_element_iter([DataElement::new(
            tag,
            VR::UN,
            PrimitiveValue::from(bytes.to_vec()),
        )])
    }

    /// pydicom's rtdose_rle*.dcm carry Modality, GridFrameOffsetVector and DoseGridScaling as
    /// UN: read with the dictionary's VR they give the frame positions and the dose scaling.
    #[test]
    fn un_values_are_read_with_the_dictionary_vr() {
        let o = un(tags::MODALITY, b"RTDOSE");
        assert_eq!(get_str(&o, tags::MODALITY).as_deref(), Some("RTDOSE"));
        let o = un(tags::GRID_FRAME_OFFSET_VECTOR, b"0.0\\5.0 \\-2.5");
        assert_eq!(
            get_f64s(&o, tags::GRID_FRAME_OFFSET_VECTOR),
            Some(vec![0.0, 5.0, -2.5])
        );
        assert_eq!(
            get_f64s(&un(tags::DOSE_GRID_SCALING, b"x1"), tags::DOSE_GRID_SCALING),
            None
        );
        assert_eq!(
            get_int(&un(tags::ROWS, &[0x31, 0x35]), tags::ROWS),
            Some(0x3531)
        );
        assert_eq!(
            get_int(&un(tags::NUMBER_OF_FRAMES, b"15"), tags::NUMBER_OF_FRAMES),
            Some(15)
        );
    }
}
