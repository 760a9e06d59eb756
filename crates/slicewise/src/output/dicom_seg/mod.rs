//! DICOM Segmentation (SEG) output: a mask as a multi-frame SEG object that references the DICOM
//! series it was computed from.
//!
//! Two encodings: **BINARY** (Segmentation Storage, 1-bit frames, one frame per segment and
//! slice) and **LABELMAP** (Label Map Segmentation Storage, Supplement 243: one 8-bit frame per
//! slice whose pixel values are segment numbers).
//!
//! Geometry is right by construction: the frame for slice `k` has ImagePositionPatient
//! `geometry.index_to_lps([0, 0, k])`, ImageOrientationPatient the geometry's row (i) and column
//! (j) directions, and references slice `k`'s source SOP instance from the volume's
//! [`DicomRefs`](crate::volume::DicomRefs). Omitting empty frames never loses geometry, since
//! every frame carries its own position.

// Where the element builders and UIDs always were for the SEG writer's users.
pub use crate::output::dicom::{dataset, uid};

use std::io::Write;
use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

// The vocabulary shared with the SEG reader, re-exported where the writer's API always had it.
pub use crate::formats::dicom_seg::{
    codes, frames, srgb_to_dicom_lab, SegKind, LABEL_MAP_SEGMENTATION_STORAGE, SEGMENTATION_STORAGE,
};
pub use crate::mask::coding::{Code, LabelCodes, SegmentCoding};
use dataset::{clip, code_item, put_code_seq, put_ds, put_seq, put_str, put_strs, put_u16, to_cs};

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::output::dicom::{
    copy_attributes, frame_of_reference_uid, put_new_series, put_patient_study, usable_references,
    NewSeries,
};
use crate::volume::{DicomRefs, SliceRef};

/// Options of the DICOM SEG writer.
#[derive(Debug, Clone)]
pub struct DicomSegOptions {
    /// BINARY or LABELMAP.
    pub kind: SegKind,
    /// Leave out frames with no foreground (positions stay exact: each frame carries its own).
    pub omit_empty_frames: bool,
    /// SeriesDescription of the new series.
    pub series_description: String,
    /// SeriesNumber of the new series.
    pub series_number: i32,
    /// InstanceNumber.
    pub instance_number: i32,
    /// ContentLabel (made a valid CS: upper case, ≤ 16 characters).
    pub content_label: String,
    /// ContentDescription.
    pub content_description: String,
    /// ContentCreatorName (PN); empty leaves it empty.
    pub content_creator_name: String,
    /// SegmentAlgorithmName and AlgorithmName, e.g. `"slicewise lgg-unet"`.
    pub algorithm_name: String,
    /// AlgorithmVersion, e.g. `"1.0 (slicewise 0.1.0)"`.
    pub algorithm_version: String,
    /// Coded meaning per label value (from the model card); labels not listed use
    /// `default_coding`.
    pub codings: Vec<(u8, SegmentCoding)>,
    /// Coding of labels not in `codings`.
    pub default_coding: SegmentCoding,
}

impl Default for DicomSegOptions {
    fn default() -> Self {
        DicomSegOptions {
            kind: SegKind::Binary,
            omit_empty_frames: true,
            series_description: "slicewise segmentation".into(),
            series_number: 300,
            instance_number: 1,
            content_label: "SLICEWISE".into(),
            content_description: "Automatic segmentation by slicewise".into(),
            content_creator_name: String::new(),
            algorithm_name: "slicewise".into(),
            algorithm_version: env!("CARGO_PKG_VERSION").into(),
            codings: Vec::new(),
            default_coding: SegmentCoding::default(),
        }
    }
}

impl DicomSegOptions {
    /// Names the model in the algorithm identification: `"slicewise <name>"`, version
    /// `"<version> (slicewise <crate version>)"`.
    pub fn with_model(mut self, name: &str, version: &str) -> Self {
        self.algorithm_name = format!("slicewise {name}");
        self.algorithm_version = format!("{version} (slicewise {})", env!("CARGO_PKG_VERSION"));
        self
    }

    /// Codes each label the model card codes (`slicewise.label_codes`); the others keep
    /// `default_coding`.
    pub fn with_label_codes(mut self, codes: &[LabelCodes]) -> Self {
        self.codings = codes.iter().map(|c| (c.value, c.coding())).collect();
        self
    }

    /// Names the model and codes its labels, from its contract: [`with_model`](Self::with_model)
    /// and [`with_label_codes`](Self::with_label_codes).
    pub fn with_contract(self, contract: &crate::infer::ModelContract) -> Self {
        self.with_model(&contract.name, &contract.version)
            .with_label_codes(&contract.label_codes)
    }

    /// Selects BINARY or LABELMAP.
    pub fn kind(mut self, kind: SegKind) -> Self {
        self.kind = kind;
        self
    }
}

/// One segment to be written.
#[derive(Debug, Clone)]
struct Segment {
    number: u16,
    value: u8,
    label: String,
    color: Option<[u8; 3]>,
    coding: SegmentCoding,
}

/// The segments of a mask: every label in `label_info` plus any other value present, in value
/// order. BINARY numbers them 1, 2, … (the standard requires consecutive numbers); LABELMAP uses
/// the label value itself, since it is the stored pixel value.
fn segments(mask: &Mask, options: &DicomSegOptions) -> Vec<Segment> {
    let mut present = [false; 256];
    for &v in mask.labels.iter() {
        present[v as usize] = true;
    }
    let mut values: Vec<u8> = mask
        .label_info
        .iter()
        .map(|l| l.value)
        .filter(|&v| v != 0)
        .collect();
    values.extend((1..=255u8).filter(|&v| present[v as usize]));
    values.sort_unstable();
    values.dedup();
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let info = mask.label_info.iter().find(|l| l.value == value);
            let label = info
                .map(|l| l.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("label {value}"));
            let coding = options
                .codings
                .iter()
                .find(|(v, _)| *v == value)
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| options.default_coding.clone());
            Segment {
                number: match options.kind {
                    SegKind::Binary => (i + 1) as u16,
                    SegKind::Labelmap => value as u16,
                },
                value,
                label,
                color: info.map(|l| l.color),
                coding,
            }
        })
        .collect()
}

/// Writes `mask` as a DICOM SEG file at `path` (atomically), with default options (BINARY).
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    write_mask_with(path, mask, &DicomSegOptions::default())
}

/// Writes `mask` as a DICOM SEG file at `path` (atomically): see [`write_mask_to`].
pub fn write_mask_with(path: &Path, mask: &Mask, options: &DicomSegOptions) -> Result<()> {
    crate::output::write_file(path, |w| write_mask_to(mask, options, w))
}

/// Encodes `mask` as a DICOM SEG file (preamble, file meta and data set) into `w`. Fails with
/// [`Error::InvalidArgument`] when the mask's source is not a DICOM series. Each call makes a
/// new SOP instance (new UIDs).
pub fn write_mask_to<W: Write>(mask: &Mask, options: &DicomSegOptions, w: W) -> Result<()> {
    build(mask, options)?
        .write_all(w)
        .map_err(|e| Error::format(crate::output::STREAM, format!("writing DICOM SEG: {e}")))
}

/// Builds the SEG as an in-memory DICOM file object (for callers that send it elsewhere).
pub fn build(
    mask: &Mask,
    options: &DicomSegOptions,
) -> Result<dicom_object::FileDicomObject<InMemDicomObject>> {
    let refs = crate::output::dicom::dicom_source(mask, "DICOM SEG")?;
    let segs = checked_segments(mask, refs, options)?;
    let usable = usable_references(refs);
    let sop_class = match options.kind {
        SegKind::Binary => SEGMENTATION_STORAGE,
        SegKind::Labelmap => LABEL_MAP_SEGMENTATION_STORAGE,
    };
    let sop_instance_uid = uid::new_uid();
    let mut obj = InMemDicomObject::new_empty();

    // Copied patient/study attributes go in first so that everything we set below wins.
    copy_attributes(&mut obj, refs);
    put_sop_and_patient_study(&mut obj, sop_class, &sop_instance_uid);
    put_series_and_equipment(&mut obj, refs, options);
    put_segmentation_image(&mut obj, mask, &segs, options);
    put_common_instance_reference(&mut obj, refs, &usable);
    put_dimensions(&mut obj, options.kind);
    put_shared_groups(&mut obj, &mask.geometry);

    let (per_frame, pixel_data) = encode_frames(mask, refs, &usable, &segs, options)?;
    put_str(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &per_frame.len().to_string(),
    );
    put_seq(
        &mut obj,
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        per_frame,
    );
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(pixel_data.into()),
    ));

    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_instance_uid.as_str())
            .implementation_version_name(format!("SLICEWISE_{}", env!("CARGO_PKG_VERSION"))),
    )
    .map_err(|e| Error::InvalidArgument(format!("DICOM SEG: building file meta: {e}")))
}

/// The segments to write, after checking that the mask's grid fits a SEG of its source: one
/// referenced slice per mask slice, non-empty, at most 65535 rows and columns.
fn checked_segments(
    mask: &Mask,
    refs: &DicomRefs,
    options: &DicomSegOptions,
) -> Result<Vec<Segment>> {
    let (nz, ny, nx) = mask.labels.dim();
    if refs.slices.len() != nz {
        return Err(Error::InvalidArgument(format!(
            "DICOM SEG: the mask has {nz} slices but its source references {} DICOM slices",
            refs.slices.len()
        )));
    }
    if nx == 0 || ny == 0 || nz == 0 {
        return Err(Error::InvalidArgument(
            "DICOM SEG: the mask is empty".into(),
        ));
    }
    if nx > u16::MAX as usize || ny > u16::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "DICOM SEG: {nx}×{ny} slices exceed DICOM's 65535 rows/columns"
        )));
    }
    let segs = segments(mask, options);
    if segs.is_empty() {
        return Err(Error::InvalidArgument(
            "DICOM SEG: the mask has no labels to write as segments".into(),
        ));
    }
    Ok(segs)
}

/// SOP Common, the image type and the type-2 Patient and General Study attributes the source
/// did not provide.
fn put_sop_and_patient_study(obj: &mut InMemDicomObject, sop_class: &str, sop_instance_uid: &str) {
    put_patient_study(obj, sop_class, sop_instance_uid);
    put_strs(
        obj,
        tags::IMAGE_TYPE,
        VR::CS,
        &["DERIVED".into(), "PRIMARY".into()],
    );
}

/// The new series (General Series, General Equipment, content date and time) in the source's
/// study and frame of reference.
fn put_series_and_equipment(
    obj: &mut InMemDicomObject,
    refs: &DicomRefs,
    options: &DicomSegOptions,
) {
    let stamp = put_new_series(
        obj,
        refs,
        &NewSeries {
            modality: "SEG",
            description: &options.series_description,
            number: options.series_number,
            instance_number: options.instance_number,
            algorithm_name: &options.algorithm_name,
        },
    );
    put_str(obj, tags::CONTENT_DATE, VR::DA, &stamp.date);
    put_str(obj, tags::CONTENT_TIME, VR::TM, &stamp.time);
    put_str(
        obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &frame_of_reference_uid(refs),
    );
    put_str(obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
}

/// The Segmentation Image module: pixel format, content identification and the segments.
fn put_segmentation_image(
    obj: &mut InMemDicomObject,
    mask: &Mask,
    segs: &[Segment],
    options: &DicomSegOptions,
) {
    let (_, ny, nx) = mask.labels.dim();
    put_u16(obj, tags::SAMPLES_PER_PIXEL, &[1]);
    put_str(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    // `checked_segments` has made sure both fit a u16.
    put_u16(obj, tags::ROWS, &[ny as u16]);
    put_u16(obj, tags::COLUMNS, &[nx as u16]);
    let bits = match options.kind {
        SegKind::Binary => 1,
        SegKind::Labelmap => 8,
    };
    put_u16(obj, tags::BITS_ALLOCATED, &[bits]);
    put_u16(obj, tags::BITS_STORED, &[bits]);
    put_u16(obj, tags::HIGH_BIT, &[bits - 1]);
    put_u16(obj, tags::PIXEL_REPRESENTATION, &[0]);
    put_str(obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put_str(
        obj,
        tags::CONTENT_LABEL,
        VR::CS,
        &to_cs(&options.content_label),
    );
    put_str(
        obj,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        &clip(&options.content_description, 64),
    );
    put_str(
        obj,
        tags::CONTENT_CREATOR_NAME,
        VR::PN,
        &options.content_creator_name,
    );
    match options.kind {
        SegKind::Binary => put_str(obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY"),
        SegKind::Labelmap => {
            put_str(obj, tags::SEGMENTATION_TYPE, VR::CS, "LABELMAP");
            // Pixel value 0 is the background segment, as in highdicom's label maps.
            put_u16(obj, tags::PIXEL_PADDING_VALUE, &[0]);
        }
    }
    put_str(obj, tags::SEGMENTS_OVERLAP, VR::CS, "NO");
    put_seq(obj, tags::SEGMENT_SEQUENCE, segment_items(segs, options));
}

/// Common Instance Reference: the source series and each distinct source instance, when any
/// slice can be referenced.
fn put_common_instance_reference(obj: &mut InMemDicomObject, refs: &DicomRefs, usable: &[bool]) {
    if refs.series_uid.is_empty() || !usable.iter().any(|&u| u) {
        log::warn!(
            "DICOM SEG: the source series has no usable instance references (anonymised?); \
             frames carry positions only"
        );
        return;
    }
    let mut series_item = InMemDicomObject::new_empty();
    put_seq(
        &mut series_item,
        tags::REFERENCED_INSTANCE_SEQUENCE,
        referenced_instances(refs, usable),
    );
    put_str(
        &mut series_item,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &refs.series_uid,
    );
    put_seq(obj, tags::REFERENCED_SERIES_SEQUENCE, vec![series_item]);
}

/// One item per distinct usable source instance (a multi-frame source is referenced once).
fn referenced_instances(refs: &DicomRefs, usable: &[bool]) -> Vec<InMemDicomObject> {
    let mut ref_instances = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (s, _) in refs.slices.iter().zip(usable).filter(|(_, &u)| u) {
        if seen.insert(s.sop_instance_uid.as_str()) {
            let mut item = InMemDicomObject::new_empty();
            put_str(
                &mut item,
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                &s.sop_class_uid,
            );
            put_str(
                &mut item,
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &s.sop_instance_uid,
            );
            ref_instances.push(item);
        }
    }
    ref_instances
}

/// Multi-frame Dimension module: frames are indexed by (segment,) position.
fn put_dimensions(obj: &mut InMemDicomObject, kind: SegKind) {
    let dim_uid = uid::new_uid();
    let mut org = InMemDicomObject::new_empty();
    put_str(&mut org, tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dim_uid);
    put_seq(obj, tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
    let mut dims = Vec::new();
    if kind == SegKind::Binary {
        dims.push(dimension_item(
            &dim_uid,
            tags::REFERENCED_SEGMENT_NUMBER,
            tags::SEGMENT_IDENTIFICATION_SEQUENCE,
            "ReferencedSegmentNumber",
        ));
    }
    dims.push(dimension_item(
        &dim_uid,
        tags::IMAGE_POSITION_PATIENT,
        tags::PLANE_POSITION_SEQUENCE,
        "ImagePositionPatient",
    ));
    put_seq(obj, tags::DIMENSION_INDEX_SEQUENCE, dims);
}

/// Shared functional groups: orientation and pixel measures of the whole grid.
fn put_shared_groups(obj: &mut InMemDicomObject, g: &crate::volume::Geometry) {
    let mut shared = InMemDicomObject::new_empty();
    let mut orient = InMemDicomObject::new_empty();
    let (row_dir, col_dir) = (g.axis(0), g.axis(1));
    put_ds(
        &mut orient,
        tags::IMAGE_ORIENTATION_PATIENT,
        &[
            row_dir[0], row_dir[1], row_dir[2], col_dir[0], col_dir[1], col_dir[2],
        ],
    );
    put_seq(&mut shared, tags::PLANE_ORIENTATION_SEQUENCE, vec![orient]);
    let mut measures = InMemDicomObject::new_empty();
    // PixelSpacing is (between rows, between columns) = (j spacing, i spacing).
    put_ds(
        &mut measures,
        tags::PIXEL_SPACING,
        &[g.spacing[1], g.spacing[0]],
    );
    put_ds(&mut measures, tags::SLICE_THICKNESS, &[g.spacing[2]]);
    put_ds(&mut measures, tags::SPACING_BETWEEN_SLICES, &[g.spacing[2]]);
    put_seq(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    put_seq(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]);
}

/// The per-frame functional groups and the Pixel Data: frames are (segment, slice) for BINARY,
/// slices for LABELMAP.
fn encode_frames(
    mask: &Mask,
    refs: &DicomRefs,
    usable: &[bool],
    segs: &[Segment],
    options: &DicomSegOptions,
) -> Result<(Vec<InMemDicomObject>, Vec<u8>)> {
    let (_, ny, nx) = mask.labels.dim();
    let labels = mask.labels.as_standard_layout();
    let flat = labels
        .as_slice()
        .ok_or_else(|| Error::InvalidArgument("DICOM SEG: mask is not contiguous".into()))?;
    // `checked_segments` has made sure slices are not empty.
    let slices: Vec<&[u8]> = flat.chunks_exact(nx * ny).collect();
    let frames = FrameSource {
        mask,
        refs,
        usable,
        slices: &slices,
        omit_empty: options.omit_empty_frames,
    };
    Ok(match options.kind {
        SegKind::Binary => frames.binary(segs),
        SegKind::Labelmap => frames.labelmap(),
    })
}

/// What the frames are cut from: the mask's slices and the source references of each.
struct FrameSource<'a> {
    mask: &'a Mask,
    refs: &'a DicomRefs,
    usable: &'a [bool],
    /// The mask's z slices, each `[y, x]` flattened.
    slices: &'a [&'a [u8]],
    omit_empty: bool,
}

impl FrameSource<'_> {
    fn item(&self, k: usize, segment: Option<u16>) -> InMemDicomObject {
        frame_item(self.mask, self.refs, self.usable[k], k, segment)
    }

    /// BINARY: one 1-bit frame per segment and slice, segment-major.
    fn binary(&self, segs: &[Segment]) -> (Vec<InMemDicomObject>, Vec<u8>) {
        let mut per_frame = Vec::new();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for seg in segs {
            for (k, slice) in self.slices.iter().enumerate() {
                let f: Vec<u8> = slice.iter().map(|&v| (v == seg.value) as u8).collect();
                if self.omit_empty && !f.iter().any(|&b| b != 0) {
                    continue;
                }
                per_frame.push(self.item(k, Some(seg.number)));
                frames.push(f);
            }
        }
        if frames.is_empty() {
            // A SEG needs at least one frame: keep segment 1's first slice.
            per_frame.push(self.item(0, Some(segs[0].number)));
            frames.push(vec![0; self.slices[0].len()]);
        }
        let pixel_data = frames::pack_bits(frames.iter().map(|f| f.as_slice()));
        (per_frame, pixel_data)
    }

    /// LABELMAP: one 8-bit frame per slice, the labels as they are.
    fn labelmap(&self) -> (Vec<InMemDicomObject>, Vec<u8>) {
        let mut per_frame = Vec::new();
        let mut data = Vec::with_capacity(self.slices.len() * self.slices[0].len());
        for (k, f) in self.slices.iter().enumerate() {
            if self.omit_empty && !f.iter().any(|&b| b != 0) {
                continue;
            }
            per_frame.push(self.item(k, None));
            data.extend_from_slice(f);
        }
        if per_frame.is_empty() {
            // A SEG needs at least one frame: keep the first slice.
            per_frame.push(self.item(0, None));
            data.extend_from_slice(self.slices[0]);
        }
        if data.len() % 2 == 1 {
            data.push(0);
        }
        (per_frame, data)
    }
}

/// The SegmentSequence items: for label maps the background first, then one per segment.
fn segment_items(segs: &[Segment], options: &DicomSegOptions) -> Vec<InMemDicomObject> {
    let mut items = Vec::new();
    if options.kind == SegKind::Labelmap {
        // Supplement 243 label maps describe the background (pixel value 0) too; highdicom does
        // the same.
        items.push(background_item(options));
    }
    for s in segs {
        items.push(segment_item(s, options));
    }
    items
}

/// The SegmentSequence item of a label map's background (segment 0, black).
fn background_item(options: &DicomSegOptions) -> InMemDicomObject {
    let mut bg = InMemDicomObject::new_empty();
    put_u16(&mut bg, tags::SEGMENT_NUMBER, &[0]);
    put_str(&mut bg, tags::SEGMENT_LABEL, VR::LO, "Background");
    put_code_seq(
        &mut bg,
        tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
        &Code::background(),
    );
    put_code_seq(
        &mut bg,
        tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
        &Code::background(),
    );
    put_str(&mut bg, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
    put_str(
        &mut bg,
        tags::SEGMENT_ALGORITHM_NAME,
        VR::LO,
        &clip(&options.algorithm_name, 64),
    );
    put_u16(
        &mut bg,
        tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
        &srgb_to_dicom_lab([0, 0, 0]),
    );
    bg
}

/// The SegmentSequence item of one segment: label, codes, algorithm and display colour.
fn segment_item(s: &Segment, options: &DicomSegOptions) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_u16(&mut it, tags::SEGMENT_NUMBER, &[s.number]);
    put_str(&mut it, tags::SEGMENT_LABEL, VR::LO, &clip(&s.label, 64));
    put_code_seq(
        &mut it,
        tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
        &s.coding.category,
    );
    put_seq(
        &mut it,
        tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
        vec![property_type_item(&s.coding)],
    );
    if let Some(region) = &s.coding.anatomic_region {
        put_code_seq(&mut it, tags::ANATOMIC_REGION_SEQUENCE, region);
    }
    put_str(&mut it, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
    put_str(
        &mut it,
        tags::SEGMENT_ALGORITHM_NAME,
        VR::LO,
        &clip(&options.algorithm_name, 64),
    );
    put_seq(
        &mut it,
        tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
        vec![algorithm_identification(options)],
    );
    if let Some(rgb) = s.color {
        put_u16(
            &mut it,
            tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
            &srgb_to_dicom_lab(rgb),
        );
    }
    it
}

/// The SegmentedPropertyTypeCodeSequence item: the type's code, with its modifier nested in it
/// (PS3.3 Table 10-25 puts SegmentedPropertyTypeModifierCodeSequence inside the type's item).
fn property_type_item(coding: &SegmentCoding) -> InMemDicomObject {
    let mut item = code_item(&coding.property_type);
    if let Some(modifier) = &coding.property_type_modifier {
        put_code_seq(
            &mut item,
            tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE,
            modifier,
        );
    }
    item
}

/// The SegmentationAlgorithmIdentificationSequence item: an AI algorithm, its name and version.
fn algorithm_identification(options: &DicomSegOptions) -> InMemDicomObject {
    let mut alg = InMemDicomObject::new_empty();
    put_code_seq(
        &mut alg,
        tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
        &Code::artificial_intelligence(),
    );
    put_str(
        &mut alg,
        tags::ALGORITHM_NAME,
        VR::LO,
        &clip(&options.algorithm_name, 64),
    );
    put_str(
        &mut alg,
        tags::ALGORITHM_VERSION,
        VR::LO,
        &clip(&options.algorithm_version, 64),
    );
    alg
}

fn dimension_item(org_uid: &str, index: Tag, group: Tag, label: &str) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::DIMENSION_ORGANIZATION_UID, VR::UI, org_uid);
    it.put(DataElement::new(
        tags::DIMENSION_INDEX_POINTER,
        VR::AT,
        PrimitiveValue::Tags([index].into_iter().collect()),
    ));
    it.put(DataElement::new(
        tags::FUNCTIONAL_GROUP_POINTER,
        VR::AT,
        PrimitiveValue::Tags([group].into_iter().collect()),
    ));
    put_str(&mut it, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
    it
}

/// The position of slice `k`'s first voxel: where the SEG frame for slice `k` lies.
pub fn frame_position(geometry: &crate::volume::Geometry, k: usize) -> [f64; 3] {
    geometry.index_to_lps([0.0, 0.0, k as f64])
}

/// The per-frame functional groups of the frame for slice `k` (and `segment`, BINARY).
fn frame_item(
    mask: &Mask,
    refs: &DicomRefs,
    usable: bool,
    k: usize,
    segment: Option<u16>,
) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    if usable {
        it.put(derivation_item(&refs.slices[k]));
    }

    // Dimension index values are 1-based: (segment number, position index).
    let pos_index = (k + 1) as u32;
    let values: Vec<u32> = match segment {
        Some(s) => vec![s as u32, pos_index],
        None => vec![pos_index],
    };
    let mut content = InMemDicomObject::new_empty();
    content.put(DataElement::new(
        tags::DIMENSION_INDEX_VALUES,
        VR::UL,
        PrimitiveValue::U32(values.into_iter().collect()),
    ));
    put_seq(&mut it, tags::FRAME_CONTENT_SEQUENCE, vec![content]);

    let mut position = InMemDicomObject::new_empty();
    put_ds(
        &mut position,
        tags::IMAGE_POSITION_PATIENT,
        &frame_position(&mask.geometry, k),
    );
    put_seq(&mut it, tags::PLANE_POSITION_SEQUENCE, vec![position]);

    if let Some(s) = segment {
        let mut ident = InMemDicomObject::new_empty();
        put_u16(&mut ident, tags::REFERENCED_SEGMENT_NUMBER, &[s]);
        put_seq(&mut it, tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![ident]);
    }
    it
}

/// The DerivationImageSequence of a frame derived from slice `src`.
fn derivation_item(src: &SliceRef) -> DataElement<InMemDicomObject> {
    let mut source = InMemDicomObject::new_empty();
    put_str(
        &mut source,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        &src.sop_class_uid,
    );
    put_str(
        &mut source,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        &src.sop_instance_uid,
    );
    if src.frame > 0 {
        put_str(
            &mut source,
            tags::REFERENCED_FRAME_NUMBER,
            VR::IS,
            &src.frame.to_string(),
        );
    }
    // The frame has the source slice's grid: viewers and highdicom may index by source frame.
    put_str(
        &mut source,
        tags::SPATIAL_LOCATIONS_PRESERVED,
        VR::CS,
        "YES",
    );
    put_code_seq(
        &mut source,
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        &Code::source_image_for_processing(),
    );
    let mut derivation = InMemDicomObject::new_empty();
    put_code_seq(
        &mut derivation,
        tags::DERIVATION_CODE_SEQUENCE,
        &Code::segmentation_derivation(),
    );
    put_seq(&mut derivation, tags::SOURCE_IMAGE_SEQUENCE, vec![source]);

    DataElement::new(
        tags::DERIVATION_IMAGE_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![derivation]),
    )
}

#[cfg(test)]
pub(crate) mod tests;
