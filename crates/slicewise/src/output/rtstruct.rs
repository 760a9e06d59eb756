//! DICOM RT Structure Set (RTSTRUCT) output: a mask as one ROI per label, each a stack of
//! CLOSED_PLANAR contours traced slice by slice ([`contours`](crate::mask::contours)), in the
//! source series' frame of reference and referencing its instances.
//!
//! * **ROIs**: every label of the mask's `label_info` and any other value present, in value
//!   order; the ROI number is the label value, the name and display colour the label's. A label
//!   with no voxels is still listed (a structure set names every structure the model delivers,
//!   as a planning system lists an empty structure), without a ContourSequence.
//! * **Codes**: where the model card codes a label (`slicewise.label_codes`), its RT ROI
//!   observation carries them as PS3.3 C.8.8.8 lays out (as a SEG segment carries the same
//!   codes): SegmentedPropertyCategoryCodeSequence (the category), RTROIIdentificationCodeSequence
//!   (the type, its modifier nested as SegmentedPropertyTypeModifierCodeSequence) and
//!   AnatomicRegionSequence; RTROIInterpretedType is ORGAN for an anatomical category and left
//!   empty (unknown) otherwise: calling a model's output a GTV or CTV is a clinician's decision.
//! * **Contours**: the outline of each island and each hole of a label in a slice, along the
//!   voxel boundaries, offset inward by [`CONTOUR_INSET`] of a voxel by default (see
//!   [`contours`](crate::mask::contours) for why both), in patient coordinates (LPS mm, from the
//!   mask's geometry). Holes are separate contours inside their island: RT readers fill a slice's
//!   contours by the even-odd rule. Each contour references the SOP instance of its slice.
//! * **Encoding**: Implicit VR Little Endian, as RT objects commonly are: a ContourData of more
//!   than about 1,300 points does not fit the 16-bit length of an explicit-VR DS element.

use std::io::Write;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use crate::error::{Error, Result};
use crate::mask::coding::{LabelCodes, SegmentCoding};
use crate::mask::contours::{self, Contour};
use crate::mask::Mask;
use crate::output::dicom::dataset::{clip, format_ds, put_code_seq, put_seq, put_str, put_strs};
use crate::output::dicom::{
    copy_attributes, dicom_source, frame_of_reference_uid, put_new_series, put_patient_study, uid,
    usable_references, NewSeries,
};
use crate::volume::{DicomRefs, SliceRef};

/// SOP Class UID of RT Structure Set Storage.
pub const RT_STRUCTURE_SET_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.3";

/// The SOP class an RT Referenced Study item names (PS3.3 C.8.8.5.4 asks for the retired
/// Detached Study Management class; RT readers and writers still use it).
const DETACHED_STUDY_MANAGEMENT: &str = "1.2.840.10008.3.1.2.3.1";

/// How far inside the voxel boundary contour vertices lie, in voxels: small enough that a
/// structure's area is the voxels' within 2 % of a voxel per unit of perimeter, large enough
/// that a reader rounding vertices to voxel centres rounds them onto the structure's own voxels
/// whatever the floating-point error of its coordinate transform.
pub const CONTOUR_INSET: f64 = 0.02;

/// Options of the RTSTRUCT writer.
#[derive(Debug, Clone)]
pub struct RtstructOptions {
    /// SeriesDescription of the new series.
    pub series_description: String,
    /// SeriesNumber of the new series.
    pub series_number: i32,
    /// InstanceNumber.
    pub instance_number: i32,
    /// StructureSetLabel (at most 16 characters are kept).
    pub structure_set_label: String,
    /// ROIGenerationDescription and ManufacturerModelName, e.g. `"slicewise lgg-unet"`.
    pub algorithm_name: String,
    /// The algorithm's version, e.g. `"1.0 (slicewise 0.1.0)"`.
    pub algorithm_version: String,
    /// Coded meaning per label value (from the model card); labels not listed carry no codes.
    pub codings: Vec<(u8, SegmentCoding)>,
    /// How far inside the voxel boundaries contour vertices lie, in voxels (below 0.5):
    /// [`CONTOUR_INSET`] unless a reader needs otherwise; 0 puts them on the boundaries.
    pub contour_inset: f64,
}

impl Default for RtstructOptions {
    fn default() -> Self {
        RtstructOptions {
            series_description: "slicewise structures".into(),
            series_number: 301,
            instance_number: 1,
            structure_set_label: "SLICEWISE".into(),
            algorithm_name: "slicewise".into(),
            algorithm_version: env!("CARGO_PKG_VERSION").into(),
            codings: Vec::new(),
            contour_inset: CONTOUR_INSET,
        }
    }
}

impl RtstructOptions {
    /// Names the model as the algorithm: `"slicewise <name>"`, version
    /// `"<version> (slicewise <crate version>)"`.
    pub fn with_model(mut self, name: &str, version: &str) -> Self {
        self.algorithm_name = format!("slicewise {name}");
        self.algorithm_version = format!("{version} (slicewise {})", env!("CARGO_PKG_VERSION"));
        self
    }

    /// Codes each label the model card codes (`slicewise.label_codes`).
    pub fn with_label_codes(mut self, codes: &[LabelCodes]) -> Self {
        self.codings = codes.iter().map(|c| (c.value, c.coding())).collect();
        self
    }

    /// Names the model and codes its labels, from its contract.
    pub fn with_contract(self, contract: &crate::infer::ModelContract) -> Self {
        self.with_model(&contract.name, &contract.version)
            .with_label_codes(&contract.label_codes)
    }
}

/// Writes `mask` as an RTSTRUCT file at `path` (atomically), with default options.
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    write_mask_with(path, mask, &RtstructOptions::default())
}

/// Writes `mask` as an RTSTRUCT file at `path` (atomically): see [`write_mask_to`].
pub fn write_mask_with(path: &Path, mask: &Mask, options: &RtstructOptions) -> Result<()> {
    crate::output::write_file(path, |w| write_mask_to(mask, options, w))
}

/// Encodes `mask` as an RTSTRUCT file (preamble, file meta and data set) into `w`. Fails with
/// [`Error::InvalidArgument`] when the mask's source is not a DICOM series. Each call makes a
/// new SOP instance (new UIDs).
pub fn write_mask_to<W: Write>(mask: &Mask, options: &RtstructOptions, w: W) -> Result<()> {
    build(mask, options)?
        .write_all(w)
        .map_err(|e| Error::format(crate::output::STREAM, format!("writing RTSTRUCT: {e}")))
}

/// One ROI to be written: a label.
struct Roi {
    value: u8,
    name: String,
    color: Option<[u8; 3]>,
    coding: Option<SegmentCoding>,
}

/// The ROIs of a mask: every label in `label_info` plus any other value present, in value order.
fn rois(mask: &Mask, options: &RtstructOptions) -> Vec<Roi> {
    let mut present = [false; 256];
    for &v in mask.labels.iter() {
        present[v as usize] = true;
    }
    let mut values: Vec<u8> = mask.label_info.iter().map(|l| l.value).collect();
    values.extend((1..=255u8).filter(|&v| present[v as usize]));
    values.retain(|&v| v != 0);
    values.sort_unstable();
    values.dedup();
    values
        .into_iter()
        .map(|value| {
            let info = mask.label_info.iter().find(|l| l.value == value);
            Roi {
                value,
                name: info
                    .map(|l| l.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("label {value}")),
                color: info.map(|l| l.color),
                coding: options
                    .codings
                    .iter()
                    .find(|(v, _)| *v == value)
                    .map(|(_, c)| c.clone()),
            }
        })
        .collect()
}

/// Builds the RTSTRUCT as an in-memory DICOM file object (for callers that send it elsewhere).
pub fn build(
    mask: &Mask,
    options: &RtstructOptions,
) -> Result<dicom_object::FileDicomObject<InMemDicomObject>> {
    let refs = dicom_source(mask, "RTSTRUCT")?;
    let (nz, ny, nx) = mask.labels.dim();
    if refs.slices.len() != nz {
        return Err(Error::InvalidArgument(format!(
            "RTSTRUCT: the mask has {nz} slices but its source references {} DICOM slices",
            refs.slices.len()
        )));
    }
    if nx == 0 || ny == 0 || nz == 0 {
        return Err(Error::InvalidArgument("RTSTRUCT: the mask is empty".into()));
    }
    let rois = rois(mask, options);
    if rois.is_empty() {
        return Err(Error::InvalidArgument(
            "RTSTRUCT: the mask has no labels to write as ROIs".into(),
        ));
    }
    let usable = usable_references(refs);
    let sop_instance_uid = uid::new_uid();
    let for_uid = frame_of_reference_uid(refs);
    let mut obj = InMemDicomObject::new_empty();
    // Copied patient/study attributes go in first so that everything set below wins.
    copy_attributes(&mut obj, refs);
    put_patient_study(&mut obj, RT_STRUCTURE_SET_STORAGE, &sop_instance_uid);
    let study_uid = put_rt_series(&mut obj, refs, options, &for_uid);
    put_seq(
        &mut obj,
        tags::REFERENCED_FRAME_OF_REFERENCE_SEQUENCE,
        vec![referenced_frame_of_reference(
            refs, &usable, &for_uid, &study_uid,
        )],
    );
    put_seq(
        &mut obj,
        tags::STRUCTURE_SET_ROI_SEQUENCE,
        rois.iter()
            .map(|r| structure_set_roi(r, &for_uid, options))
            .collect(),
    );
    let contoured = rois
        .iter()
        .map(|r| roi_contour(mask, refs, &usable, r, options.contour_inset))
        .collect();
    put_seq(&mut obj, tags::ROI_CONTOUR_SEQUENCE, contoured);
    put_seq(
        &mut obj,
        tags::RTROI_OBSERVATIONS_SEQUENCE,
        rois.iter().map(observation).collect(),
    );
    put_str(&mut obj, tags::APPROVAL_STATUS, VR::CS, "UNAPPROVED");

    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(RT_STRUCTURE_SET_STORAGE)
            .media_storage_sop_instance_uid(sop_instance_uid.as_str())
            .implementation_version_name(format!("SLICEWISE_{}", env!("CARGO_PKG_VERSION"))),
    )
    .map_err(|e| Error::InvalidArgument(format!("RTSTRUCT: building file meta: {e}")))
}

/// RT Series, General Equipment, Frame of Reference and the Structure Set's identification;
/// returns the StudyInstanceUID written.
fn put_rt_series(
    obj: &mut InMemDicomObject,
    refs: &DicomRefs,
    options: &RtstructOptions,
    for_uid: &str,
) -> String {
    let stamp = put_new_series(
        obj,
        refs,
        &NewSeries {
            modality: "RTSTRUCT",
            description: &options.series_description,
            number: options.series_number,
            instance_number: options.instance_number,
            algorithm_name: &options.algorithm_name,
        },
    );
    put_str(obj, tags::OPERATORS_NAME, VR::PN, "");
    put_str(obj, tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid);
    put_str(obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_str(
        obj,
        tags::STRUCTURE_SET_LABEL,
        VR::SH,
        &clip(&options.structure_set_label, 16),
    );
    put_str(obj, tags::STRUCTURE_SET_DATE, VR::DA, &stamp.date);
    put_str(obj, tags::STRUCTURE_SET_TIME, VR::TM, &stamp.time);
    stamp.study_uid
}

/// The ReferencedFrameOfReferenceSequence item: the frame of reference, and in it the study,
/// the series and every usable instance of the source.
fn referenced_frame_of_reference(
    refs: &DicomRefs,
    usable: &[bool],
    for_uid: &str,
    study_uid: &str,
) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid);
    if refs.series_uid.is_empty() || !usable.iter().any(|&u| u) {
        log::warn!(
            "RTSTRUCT: the source series has no usable instance references (anonymised?); \
             contours carry coordinates only"
        );
        return item;
    }
    let mut images = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (s, _) in refs.slices.iter().zip(usable).filter(|(_, &u)| u) {
        if seen.insert((s.sop_instance_uid.as_str(), s.frame)) {
            images.push(image_reference(s));
        }
    }
    let mut series = InMemDicomObject::new_empty();
    put_str(
        &mut series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &refs.series_uid,
    );
    put_seq(&mut series, tags::CONTOUR_IMAGE_SEQUENCE, images);
    let mut study = InMemDicomObject::new_empty();
    put_str(
        &mut study,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        DETACHED_STUDY_MANAGEMENT,
    );
    put_str(
        &mut study,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        study_uid,
    );
    put_seq(
        &mut study,
        tags::RT_REFERENCED_SERIES_SEQUENCE,
        vec![series],
    );
    put_seq(&mut item, tags::RT_REFERENCED_STUDY_SEQUENCE, vec![study]);
    item
}

/// A ContourImageSequence item: the source instance (and frame) of a slice.
fn image_reference(s: &SliceRef) -> InMemDicomObject {
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
    if s.frame > 0 {
        put_str(
            &mut item,
            tags::REFERENCED_FRAME_NUMBER,
            VR::IS,
            &s.frame.to_string(),
        );
    }
    item
}

/// The StructureSetROISequence item of an ROI.
fn structure_set_roi(roi: &Roi, for_uid: &str, options: &RtstructOptions) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::ROI_NUMBER, VR::IS, &roi.value.to_string());
    put_str(
        &mut item,
        tags::REFERENCED_FRAME_OF_REFERENCE_UID,
        VR::UI,
        for_uid,
    );
    put_str(&mut item, tags::ROI_NAME, VR::LO, &clip(&roi.name, 64));
    put_str(
        &mut item,
        tags::ROI_GENERATION_ALGORITHM,
        VR::CS,
        "AUTOMATIC",
    );
    let description = format!("{} {}", options.algorithm_name, options.algorithm_version);
    put_str(
        &mut item,
        tags::ROI_GENERATION_DESCRIPTION,
        VR::LO,
        &clip(&description, 64),
    );
    item
}

/// The RTROIObservationsSequence item of an ROI: its interpreted type and, when the card codes
/// the label, its codes.
fn observation(roi: &Roi) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(
        &mut item,
        tags::OBSERVATION_NUMBER,
        VR::IS,
        &roi.value.to_string(),
    );
    put_str(
        &mut item,
        tags::REFERENCED_ROI_NUMBER,
        VR::IS,
        &roi.value.to_string(),
    );
    if let Some(c) = &roi.coding {
        put_code_seq(
            &mut item,
            tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
            &c.category,
        );
        let mut ident = crate::output::dicom::dataset::code_item(&c.property_type);
        if let Some(m) = &c.property_type_modifier {
            put_code_seq(
                &mut ident,
                tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE,
                m,
            );
        }
        put_seq(
            &mut item,
            tags::RTROI_IDENTIFICATION_CODE_SEQUENCE,
            vec![ident],
        );
        if let Some(region) = &c.anatomic_region {
            put_code_seq(&mut item, tags::ANATOMIC_REGION_SEQUENCE, region);
        }
    }
    put_str(
        &mut item,
        tags::RTROI_INTERPRETED_TYPE,
        VR::CS,
        interpreted_type(roi),
    );
    put_str(&mut item, tags::ROI_INTERPRETER, VR::PN, "");
    item
}

/// RTROIInterpretedType: ORGAN for a label coded as anatomy (SNOMED CT "Anatomical Structure",
/// "Tissue" or "Body structure"), else empty: unknown.
fn interpreted_type(roi: &Roi) -> &'static str {
    let anatomical = ["91723000", "85756007", "123037004"];
    match &roi.coding {
        Some(c)
            if c.category.scheme == "SCT" && anatomical.contains(&c.category.value.as_str()) =>
        {
            "ORGAN"
        }
        _ => "",
    }
}

/// The ROIContourSequence item of an ROI: its colour and its contours, slice by slice.
fn roi_contour(
    mask: &Mask,
    refs: &DicomRefs,
    usable: &[bool],
    roi: &Roi,
    inset: f64,
) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(
        &mut item,
        tags::REFERENCED_ROI_NUMBER,
        VR::IS,
        &roi.value.to_string(),
    );
    if let Some(rgb) = roi.color {
        let rgb: Vec<String> = rgb.iter().map(u8::to_string).collect();
        put_strs(&mut item, tags::ROI_DISPLAY_COLOR, VR::IS, &rgb);
    }
    let (_, ny, nx) = mask.labels.dim();
    let mut items = Vec::new();
    for (k, slice) in mask.labels.outer_iter().enumerate() {
        if !slice.iter().any(|&v| v == roi.value) {
            continue;
        }
        let traced = contours::trace(nx, ny, |x, y| slice[[y, x]] == roi.value, inset);
        for c in traced {
            let image = usable[k].then(|| &refs.slices[k]);
            items.push(contour_item(mask, k, &c, image, items.len() + 1));
        }
    }
    // A label without voxels has no ContourSequence at all: the attribute is optional, and an
    // empty one is not allowed (PS3.3 C.8.8.6: one or more items when present).
    if !items.is_empty() {
        put_seq(&mut item, tags::CONTOUR_SEQUENCE, items);
    }
    item
}

/// A ContourSequence item: one closed polygon of slice `k` in patient coordinates.
fn contour_item(
    mask: &Mask,
    k: usize,
    c: &Contour,
    image: Option<&SliceRef>,
    number: usize,
) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::CONTOUR_NUMBER, VR::IS, &number.to_string());
    if let Some(s) = image {
        put_seq(
            &mut item,
            tags::CONTOUR_IMAGE_SEQUENCE,
            vec![image_reference(s)],
        );
    }
    put_str(
        &mut item,
        tags::CONTOUR_GEOMETRIC_TYPE,
        VR::CS,
        "CLOSED_PLANAR",
    );
    put_str(
        &mut item,
        tags::NUMBER_OF_CONTOUR_POINTS,
        VR::IS,
        &c.points.len().to_string(),
    );
    let data: Vec<String> = c
        .points
        .iter()
        .flat_map(|p| mask.geometry.index_to_lps([p[0], p[1], k as f64]))
        .map(contour_coordinate)
        .collect();
    put_strs(&mut item, tags::CONTOUR_DATA, VR::DS, &data);
    item
}

/// A coordinate in mm to 1/10,000 mm (far below the inset and any voxel), kept short: a contour
/// has thousands of them.
fn contour_coordinate(v: f64) -> String {
    format_ds((v * 1e4).round() / 1e4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::LabelInfo;
    use crate::output::dicom_seg::tests::sample_mask;
    use crate::volume::Geometry;
    use dicom_object::mem::InMemElement;

    fn items(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Vec<InMemDicomObject> {
        obj.element(tag)
            .ok()
            .and_then(|e: &InMemElement| e.items().map(|i| i.to_vec()))
            .unwrap_or_default()
    }

    fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
        obj.element(tag)
            .map(|e| e.to_str().unwrap_or_default().trim().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn rois_contours_and_references() {
        let mut m = sample_mask(Geometry::identity());
        m.label_info.push(LabelInfo {
            value: 7,
            name: "nothing".into(),
            color: [1, 2, 3],
        });
        let f = build(&m, &RtstructOptions::default()).unwrap();
        assert_eq!(text(&f, tags::MODALITY), "RTSTRUCT");
        assert_eq!(text(&f, tags::PATIENT_NAME), "Doe^Jane");
        assert_eq!(text(&f, tags::STUDY_INSTANCE_UID), "1.2.3");
        assert_eq!(
            f.meta().transfer_syntax().trim_end_matches('\0'),
            uids::IMPLICIT_VR_LITTLE_ENDIAN
        );
        let rois = items(&f, tags::STRUCTURE_SET_ROI_SEQUENCE);
        let numbers: Vec<String> = rois.iter().map(|r| text(r, tags::ROI_NUMBER)).collect();
        assert_eq!(numbers, ["1", "2", "7"]);
        assert_eq!(text(&rois[0], tags::ROI_NAME), "tumour");
        assert_eq!(text(&rois[0], tags::ROI_GENERATION_ALGORITHM), "AUTOMATIC");

        let contours = items(&f, tags::ROI_CONTOUR_SEQUENCE);
        assert_eq!(text(&contours[0], tags::ROI_DISPLAY_COLOR), "255\\0\\0");
        // Label 1: one voxel on slice 0, one on slice 2: two squares, each on its slice.
        let c1 = items(&contours[0], tags::CONTOUR_SEQUENCE);
        assert_eq!(c1.len(), 2);
        let image = &items(&c1[1], tags::CONTOUR_IMAGE_SEQUENCE)[0];
        assert_eq!(text(image, tags::REFERENCED_SOP_INSTANCE_UID), "1.2.3.4.12");
        assert_eq!(text(&c1[1], tags::NUMBER_OF_CONTOUR_POINTS), "4");
        let data: Vec<f64> = text(&c1[1], tags::CONTOUR_DATA)
            .split('\\')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(data.len(), 12);
        assert!(data.chunks(3).all(|p| p[2] == 2.0), "on slice 2: {data:?}");
        // Voxel (0, 0)'s corners, 0.02 voxel inside.
        assert!(
            data.chunks(3)
                .all(|p| p[0].abs() == 0.48 && p[1].abs() == 0.48),
            "{data:?}"
        );
        // The empty label: listed, no ContourSequence.
        assert!(contours[2].element(tags::CONTOUR_SEQUENCE).is_err());

        let for_item = &items(&f, tags::REFERENCED_FRAME_OF_REFERENCE_SEQUENCE)[0];
        assert_eq!(text(for_item, tags::FRAME_OF_REFERENCE_UID), "1.2.3.5");
        let study = &items(for_item, tags::RT_REFERENCED_STUDY_SEQUENCE)[0];
        let series = &items(study, tags::RT_REFERENCED_SERIES_SEQUENCE)[0];
        assert_eq!(items(series, tags::CONTOUR_IMAGE_SEQUENCE).len(), 3);
    }

    #[test]
    fn card_codes_go_into_the_observations() {
        let m = sample_mask(Geometry::identity());
        let codes = LabelCodes {
            value: 2,
            category: crate::mask::coding::Code::new("91723000", "SCT", "Anatomical Structure"),
            property_type: crate::mask::coding::Code::new("5366008", "SCT", "Hippocampus"),
            property_type_modifier: Some(crate::mask::coding::Code::new(
                "255549009",
                "SCT",
                "Anterior",
            )),
            anatomic_region: None,
        };
        let opts = RtstructOptions::default().with_label_codes(&[codes]);
        let f = build(&m, &opts).unwrap();
        let obs = items(&f, tags::RTROI_OBSERVATIONS_SEQUENCE);
        assert_eq!(text(&obs[0], tags::RTROI_INTERPRETED_TYPE), "");
        assert!(obs[0]
            .element(tags::RTROI_IDENTIFICATION_CODE_SEQUENCE)
            .is_err());
        assert_eq!(text(&obs[1], tags::RTROI_INTERPRETED_TYPE), "ORGAN");
        let ident = &items(&obs[1], tags::RTROI_IDENTIFICATION_CODE_SEQUENCE)[0];
        assert_eq!(text(ident, tags::CODE_MEANING), "Hippocampus");
        let modifier = &items(ident, tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE)[0];
        assert_eq!(text(modifier, tags::CODE_VALUE), "255549009");
    }

    #[test]
    fn a_mask_without_dicom_source_is_refused_naming_it() {
        let mut m = sample_mask(Geometry::identity());
        m.source.as_mut().unwrap().dicom = None;
        let e = build(&m, &RtstructOptions::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("/nowhere"), "{e}");
    }

    #[test]
    fn the_encoder_and_the_path_writer_agree() {
        let m = sample_mask(Geometry::identity());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt.dcm");
        write_mask(&path, &m).unwrap();
        let mut mem = Vec::new();
        write_mask_to(&m, &RtstructOptions::default(), &mut mem).unwrap();
        let file = std::fs::read(&path).unwrap();
        // New UIDs and times each call: same size give or take those.
        assert!((file.len() as i64 - mem.len() as i64).abs() < 64);
        let back = dicom_object::open_file(&path).unwrap();
        assert_eq!(text(&back, tags::SOP_CLASS_UID), RT_STRUCTURE_SET_STORAGE);
    }
}
