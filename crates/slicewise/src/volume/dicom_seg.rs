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

use crate::error::{Error, Result};
use crate::mask::{LabelInfo, Mask};
use crate::output::dicom_seg::{Code, SegKind};
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

/// Reads a DICOM SEG file. With `referenced_series`, frames are placed on that volume's grid
/// (matched by ReferencedSOPInstanceUID/frame, else by projecting ImagePositionPatient); without,
/// on the regular grid spanned by the frames.
pub fn read_seg(path: &Path, referenced_series: Option<&Volume>) -> Result<Segmentation> {
    read_seg_with(path, referenced_series, &ReadOptions::default())
}

/// [`read_seg`] with a size limit.
// Frame indices address the per-frame groups, the pixel data and the frame table together.
#[allow(clippy::needless_range_loop)]
pub fn read_seg_with(
    path: &Path,
    referenced_series: Option<&Volume>,
    options: &ReadOptions,
) -> Result<Segmentation> {
    let file = dicom_object::open_file(path)
        .map_err(|e| Error::format(path, format!("not a readable DICOM file: {e}")))?;
    let sop_class = get_str(&file, tags::SOP_CLASS_UID).unwrap_or_default();
    if sop_class != crate::output::dicom_seg::SEGMENTATION_STORAGE
        && sop_class != crate::output::dicom_seg::LABEL_MAP_SEGMENTATION_STORAGE
    {
        return Err(Error::format(
            path,
            format!("SOP class {sop_class:?} is not a DICOM Segmentation"),
        ));
    }
    let seg_type = get_str(&file, tags::SEGMENTATION_TYPE).unwrap_or_default();
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
    let rows = get_int(&file, tags::ROWS).ok_or_else(|| Error::format(path, "no Rows"))?;
    let cols = get_int(&file, tags::COLUMNS).ok_or_else(|| Error::format(path, "no Columns"))?;
    let n_frames = get_int(&file, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    let bits = get_int(&file, tags::BITS_ALLOCATED).unwrap_or(0);
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
    let (rows, cols, n_frames) = (rows as usize, cols as usize, n_frames as usize);
    let frame_px = rows * cols;
    options.check_size(path, &[n_frames as u64, rows as u64, cols as u64])?;
    let data = pixel_bytes(path, &file, bits)?;
    let frame_bytes = |f: usize| -> Result<Vec<u16>> {
        let short = || Error::format(path, format!("pixel data too short for frame {}", f + 1));
        match bits {
            1 => Ok(
                crate::output::dicom_seg::frames::unpack_frame_bits(&data, f, frame_px)
                    .ok_or_else(short)?
                    .into_iter()
                    .map(u16::from)
                    .collect(),
            ),
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
    };

    // Segment descriptions.
    let mut segments = Vec::new();
    for item in items(&file, tags::SEGMENT_SEQUENCE) {
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
            algorithm_type: get_str(item, tags::SEGMENT_ALGORITHM_TYPE).unwrap_or_default(),
            algorithm_name: get_str(item, tags::SEGMENT_ALGORITHM_NAME),
            cielab: lab,
        });
    }
    if segments.is_empty() {
        return Err(Error::format(path, "SegmentSequence describes no segments"));
    }
    let seg_index: HashMap<u16, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.number, i))
        .collect();

    // Functional groups.
    let shared = items(&file, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).first();
    let per_frame = items(&file, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    if per_frame.len() != n_frames {
        return Err(Error::format(
            path,
            format!(
                "{} per-frame functional groups for {n_frames} frames",
                per_frame.len()
            ),
        ));
    }
    // A functional group macro: per-frame first, else shared.
    let group = |f: usize, seq: Tag| -> Option<&InMemDicomObject> {
        items(&per_frame[f], seq)
            .first()
            .or_else(|| shared.and_then(|s| items(s, seq).first()))
    };
    let iop = group(0, tags::PLANE_ORIENTATION_SEQUENCE)
        .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT))
        .filter(|v| v.len() == 6)
        .ok_or_else(|| Error::format(path, "no ImageOrientationPatient"))?;
    let spacing = group(0, tags::PIXEL_MEASURES_SEQUENCE)
        .and_then(|g| floats(g, tags::PIXEL_SPACING))
        .filter(|v| v.len() == 2 && v.iter().all(|&s| s.is_finite() && s > 0.0))
        .ok_or_else(|| Error::format(path, "no valid PixelSpacing"))?;
    let between = group(0, tags::PIXEL_MEASURES_SEQUENCE)
        .and_then(|g| floats(g, tags::SPACING_BETWEEN_SLICES))
        .and_then(|v| v.first().copied())
        .filter(|s| s.is_finite() && *s > 0.0);
    let thickness = group(0, tags::PIXEL_MEASURES_SEQUENCE)
        .and_then(|g| floats(g, tags::SLICE_THICKNESS))
        .and_then(|v| v.first().copied())
        .filter(|s| s.is_finite() && *s > 0.0);
    let row_dir = unit([iop[0], iop[1], iop[2]]).ok_or_else(|| Error::format(path, "bad IOP"))?;
    let col_dir = unit([iop[3], iop[4], iop[5]]).ok_or_else(|| Error::format(path, "bad IOP"))?;
    let normal = unit(cross(row_dir, col_dir)).ok_or_else(|| Error::format(path, "bad IOP"))?;

    struct Frame {
        ipp: [f64; 3],
        segment: Option<usize>,
        source: Option<(String, u32)>,
    }
    let mut frames = Vec::with_capacity(n_frames);
    for f in 0..n_frames {
        let ipp = group(f, tags::PLANE_POSITION_SEQUENCE)
            .and_then(|g| floats(g, tags::IMAGE_POSITION_PATIENT))
            .filter(|v| v.len() == 3 && v.iter().all(|x| x.is_finite()))
            .ok_or_else(|| {
                Error::format(path, format!("frame {} has no ImagePositionPatient", f + 1))
            })?;
        if let Some(o) = group(f, tags::PLANE_ORIENTATION_SEQUENCE)
            .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT))
        {
            if o.len() != 6 || o.iter().zip(&iop).any(|(a, b)| (a - b).abs() > 1e-4) {
                return Err(Error::unsupported(
                    path,
                    format!("frame {} has a different orientation", f + 1),
                ));
            }
        }
        let segment = if kind == SegKind::Labelmap {
            None
        } else {
            let n = group(f, tags::SEGMENT_IDENTIFICATION_SEQUENCE)
                .and_then(|g| get_int(g, tags::REFERENCED_SEGMENT_NUMBER))
                .ok_or_else(|| Error::format(path, format!("frame {} names no segment", f + 1)))?;
            Some(
                u16::try_from(n)
                    .ok()
                    .and_then(|n| seg_index.get(&n).copied())
                    .ok_or_else(|| {
                        Error::format(path, format!("frame {} names unknown segment {n}", f + 1))
                    })?,
            )
        };
        let source = items(&per_frame[f], tags::DERIVATION_IMAGE_SEQUENCE)
            .first()
            .and_then(|d| items(d, tags::SOURCE_IMAGE_SEQUENCE).first())
            .and_then(|s| {
                let uid = get_str(s, tags::REFERENCED_SOP_INSTANCE_UID)?;
                let frame = get_int(s, tags::REFERENCED_FRAME_NUMBER).unwrap_or(0);
                Some((uid, frame))
            });
        frames.push(Frame {
            ipp: [ipp[0], ipp[1], ipp[2]],
            segment,
            source,
        });
    }

    // The grid and each frame's slice index on it.
    let mut warnings = Vec::new();
    let (geometry, nz, slice_of): (Geometry, usize, Vec<usize>) = match referenced_series {
        Some(vol) => {
            let [nx, ny, nz] = vol.dims_xyz();
            if nx != cols || ny != rows {
                return Err(Error::format(
                    path,
                    format!("frames are {cols}×{rows} but the referenced series is {nx}×{ny}"),
                ));
            }
            let g = vol.geometry;
            if dot(g.axis(0), row_dir) < 1.0 - 1e-4 || dot(g.axis(1), col_dir) < 1.0 - 1e-4 {
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
            let mut slice_of = Vec::with_capacity(n_frames);
            for (f, fr) in frames.iter().enumerate() {
                let idx = lps_to_index(&g, fr.ipp);
                let by_pos = (idx[0].abs() < 1e-2 && idx[1].abs() < 1e-2)
                    .then(|| idx[2].round())
                    .filter(|k| (idx[2] - k).abs() < 0.1 && *k >= 0.0 && (*k as usize) < nz)
                    .map(|k| k as usize);
                let by_ref = fr
                    .source
                    .as_ref()
                    .and_then(|(u, n)| by_uid.get(&(u.as_str(), *n)).copied());
                let k = match (by_ref, by_pos) {
                    (Some(r), Some(p)) if r != p => {
                        warnings.push(format!(
                            "frame {} references slice {r} but lies on slice {p}; using the reference",
                            f + 1
                        ));
                        r
                    }
                    (Some(r), _) => r,
                    (None, Some(p)) => p,
                    (None, None) => {
                        return Err(Error::format(
                            path,
                            format!(
                                "frame {} at {:?} lies on no slice of the referenced series",
                                f + 1,
                                fr.ipp
                            ),
                        ))
                    }
                };
                slice_of.push(k);
            }
            (g, nz, slice_of)
        }
        None => {
            let d: Vec<f64> = frames.iter().map(|fr| dot(fr.ipp, normal)).collect();
            let dmin = d.iter().copied().fold(f64::INFINITY, f64::min);
            let mut uniq: Vec<f64> = d.clone();
            uniq.sort_by(f64::total_cmp);
            uniq.dedup_by(|a, b| (*a - *b).abs() < 1e-3);
            let min_gap = uniq
                .windows(2)
                .map(|w| w[1] - w[0])
                .fold(f64::INFINITY, f64::min);
            let step = between
                .or(min_gap.is_finite().then_some(min_gap))
                .or(thickness)
                .unwrap_or(1.0);
            let first = d.iter().position(|&x| (x - dmin).abs() < 1e-3).unwrap_or(0);
            let origin = frames[first].ipp;
            let mut slice_of = Vec::with_capacity(n_frames);
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
            let g = Geometry {
                spacing: [spacing[1], spacing[0], step],
                origin,
                direction: [
                    [row_dir[0], col_dir[0], normal[0]],
                    [row_dir[1], col_dir[1], normal[1]],
                    [row_dir[2], col_dir[2], normal[2]],
                ],
            };
            (g, nz, slice_of)
        }
    };

    options.check_size(
        path,
        &[segments.len() as u64, nz as u64, rows as u64, cols as u64],
    )?;
    let mut masks = vec![Array3::<u8>::zeros((nz, rows, cols)); segments.len()];
    let max_fraction = get_int(&file, tags::MAXIMUM_FRACTIONAL_VALUE)
        .unwrap_or(255)
        .max(1);
    let mut unknown_values = false;
    for (f, fr) in frames.iter().enumerate() {
        let px = frame_bytes(f)?;
        let k = slice_of[f];
        match fr.segment {
            Some(s) => {
                let mut plane = masks[s].index_axis_mut(ndarray::Axis(0), k);
                for (o, &v) in plane.iter_mut().zip(&px) {
                    let on = if fractional {
                        2 * v as i64 >= max_fraction as i64
                    } else {
                        v != 0
                    };
                    if on {
                        *o = 1;
                    }
                }
            }
            None => {
                for (i, &v) in px.iter().enumerate() {
                    if v == 0 {
                        continue;
                    }
                    match seg_index.get(&v) {
                        Some(&s) => masks[s][[k, i / cols, i % cols]] = 1,
                        None => unknown_values = true,
                    }
                }
            }
        }
    }
    if unknown_values {
        warnings.push("label map holds pixel values no segment describes; ignored".into());
    }
    let referenced_series_uid = items(&file, tags::REFERENCED_SERIES_SEQUENCE)
        .first()
        .and_then(|i| get_str(i, tags::SERIES_INSTANCE_UID));
    Ok(Segmentation {
        kind,
        segments,
        masks,
        geometry,
        series_uid: get_str(&file, tags::SERIES_INSTANCE_UID),
        referenced_series_uid,
        frame_of_reference_uid: get_str(&file, tags::FRAME_OF_REFERENCE_UID),
        warnings,
    })
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

/// DICOM-scaled CIELab back to sRGB (inverse of
/// [`srgb_to_dicom_lab`](crate::output::dicom_seg::srgb_to_dicom_lab)), clamped.
pub fn dicom_lab_to_srgb(lab: [u16; 3]) -> [u8; 3] {
    let l = lab[0] as f64 * 100.0 / 65535.0;
    let a = lab[1] as f64 * 255.0 / 65535.0 - 128.0;
    let b = lab[2] as f64 * 255.0 / 65535.0 - 128.0;
    let fy = (l + 16.0) / 116.0;
    let fx = fy + a / 500.0;
    let fz = fy - b / 200.0;
    let finv = |t: f64| {
        if t > 6.0 / 29.0 {
            t * t * t
        } else {
            (108.0 / 841.0) * (t - 4.0 / 29.0)
        }
    };
    let (x, y, z) = (finv(fx) * 0.95047, finv(fy), finv(fz) * 1.08883);
    let r = x * 3.2406 + y * -1.5372 + z * -0.4986;
    let g = x * -0.9689 + y * 1.8758 + z * 0.0415;
    let bl = x * 0.0557 + y * -0.2040 + z * 1.0570;
    let gamma = |c: f64| {
        let c = if c > 0.0031308 {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        } else {
            12.92 * c
        };
        (c * 255.0).round().clamp(0.0, 255.0) as u8
    };
    [gamma(r), gamma(g), gamma(bl)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::dicom_seg::{build, srgb_to_dicom_lab, DicomSegOptions};

    #[test]
    fn lab_round_trips_to_srgb() {
        for rgb in [
            [255u8, 0, 0],
            [0, 255, 0],
            [12, 200, 77],
            [255, 255, 255],
            [0, 0, 0],
        ] {
            let back = dicom_lab_to_srgb(srgb_to_dicom_lab(rgb));
            for c in 0..3 {
                assert!(
                    (back[c] as i32 - rgb[c] as i32).abs() <= 1,
                    "{rgb:?} -> {back:?}"
                );
            }
        }
    }

    #[test]
    fn written_seg_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let g = Geometry {
            spacing: [0.5, 0.75, 3.0],
            origin: [-10.0, 20.0, 5.5],
            // Right-handed (k = i × j), as a DICOM reader sorting along the normal produces.
            direction: [[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        };
        let mask = crate::output::dicom_seg::tests::sample_mask(g);
        for kind in [SegKind::Binary, SegKind::Labelmap] {
            for omit in [false, true] {
                let p = dir.path().join("s.dcm");
                let opts = DicomSegOptions {
                    kind,
                    omit_empty_frames: omit,
                    ..Default::default()
                };
                let f = build(&mask, &opts).unwrap();
                f.write_to_file(&p).unwrap();
                let seg = read_seg(&p, None).unwrap();
                assert_eq!(seg.kind, kind);
                assert_eq!(seg.segments.len(), 2);
                assert_eq!(seg.segments[0].label, "tumour");
                let lm = seg.label_map().unwrap();
                if omit {
                    // The grid spans slices 0..=2 (both ends hold labels).
                    assert_eq!(lm.dim(), (3, 4, 5));
                }
                assert_eq!(lm, mask.labels, "{kind:?} omit={omit}");
                for c in 0..3 {
                    assert!((seg.geometry.origin[c] - g.origin[c]).abs() < 1e-9);
                    assert!((seg.geometry.spacing[c] - g.spacing[c]).abs() < 1e-9);
                }
                assert_eq!(seg.geometry.direction, g.direction);
                let m = seg.to_mask().unwrap();
                assert_eq!(m.label_info[0].color, [255, 0, 0]);
            }
        }
    }

    #[test]
    fn not_a_seg_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.dcm");
        std::fs::write(&p, b"not dicom").unwrap();
        assert!(matches!(read_seg(&p, None), Err(Error::Format { .. })));
    }
}
