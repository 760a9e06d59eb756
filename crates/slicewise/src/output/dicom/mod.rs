//! What the DICOM objects slicewise derives from a source series (SEG, RTSTRUCT) share: the
//! source's references ([`dicom_source`], [`usable_references`]), its patient and study
//! attributes copied in ([`copy_attributes`], [`put_patient_study`]), the new series in the
//! source's study ([`put_new_series`]), and the element builders ([`dataset`]) and UIDs
//! ([`uid`]) they are built with.

pub mod dataset;
pub mod uid;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::DicomRefs;
use dataset::{clip, put_str, put_strs};

/// The DICOM references of the mask's source series; `what` (e.g. "DICOM SEG") cannot be
/// written without them, and the error says so, naming the mask's source.
pub fn dicom_source<'m>(mask: &'m Mask, what: &str) -> Result<&'m DicomRefs> {
    mask.source
        .as_ref()
        .and_then(|m| m.dicom.as_ref())
        .ok_or_else(|| {
            let source = mask
                .source
                .as_ref()
                .map(|m| format!(" ({} is not a DICOM series)", m.source.display()))
                .unwrap_or_default();
            Error::InvalidArgument(format!(
                "{what} output needs a mask computed from a DICOM series (its source has no \
                 DICOM references{source}); write NIfTI or TIFF instead"
            ))
        })
}

/// Which slices can be referenced: SOP class and instance UIDs present, and the (instance,
/// frame) pair not shared with another slice (anonymisers sometimes blank or repeat UIDs, and a
/// reference to them would be ambiguous).
pub fn usable_references(refs: &DicomRefs) -> Vec<bool> {
    let mut count = std::collections::HashMap::new();
    for s in &refs.slices {
        *count
            .entry((s.sop_instance_uid.as_str(), s.frame))
            .or_insert(0usize) += 1;
    }
    refs.slices
        .iter()
        .map(|s| {
            !s.sop_class_uid.is_empty()
                && !s.sop_instance_uid.is_empty()
                && count[&(s.sop_instance_uid.as_str(), s.frame)] == 1
        })
        .collect()
}

/// Copies `(keyword, value)` attributes with their dictionary VR. Only textual VRs are copied
/// (values arrive as strings); unknown keywords and sequences are skipped.
pub fn copy_attributes(obj: &mut InMemDicomObject, refs: &DicomRefs) {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    let dict = StandardDataDictionary;
    for (keyword, value) in &refs.copied_attributes {
        let Some(entry) = dict.by_name(keyword) else {
            log::warn!("DICOM output: not copying unknown attribute {keyword}");
            continue;
        };
        let VirtualVr::Exact(vr) = entry.vr() else {
            continue;
        };
        if !is_textual(vr) {
            log::warn!("DICOM output: not copying {keyword} (VR {vr:?} is not textual)");
            continue;
        }
        let tag: Tag = entry.tag();
        if value.contains('\\') {
            let parts: Vec<String> = value.split('\\').map(str::to_string).collect();
            put_strs(obj, tag, vr, &parts);
        } else {
            put_str(obj, tag, vr, value);
        }
    }
}

/// Whether values of `vr` are text (what [`copy_attributes`] can copy from strings).
fn is_textual(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

/// SOP Common (character set, class and instance) and the type-2 Patient and General Study
/// attributes the source did not provide (present, empty).
pub fn put_patient_study(obj: &mut InMemDicomObject, sop_class: &str, sop_instance_uid: &str) {
    put_str(obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put_str(obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid);
    for (tag, vr) in [
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::ACCESSION_NUMBER, VR::SH),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_ID, VR::SH),
    ] {
        if obj.get(tag).is_none() {
            put_str(obj, tag, vr, "");
        }
    }
}

/// The new series, as every derived object describes it.
pub struct NewSeries<'a> {
    /// Modality, e.g. `"SEG"`, `"RTSTRUCT"`.
    pub modality: &'a str,
    /// SeriesDescription.
    pub description: &'a str,
    /// SeriesNumber.
    pub number: i32,
    /// InstanceNumber.
    pub instance_number: i32,
    /// ManufacturerModelName: the algorithm's name.
    pub algorithm_name: &'a str,
}

/// When and in which study a new series was made.
pub struct SeriesStamp {
    /// SeriesDate, `YYYYMMDD`.
    pub date: String,
    /// SeriesTime, `HHMMSS.ffffff`.
    pub time: String,
    /// The StudyInstanceUID written.
    pub study_uid: String,
}

/// General Series (or RT Series) and General Equipment of a new series in the source's study.
pub fn put_new_series(
    obj: &mut InMemDicomObject,
    refs: &DicomRefs,
    series: &NewSeries,
) -> SeriesStamp {
    let now = chrono::Local::now();
    let date = now.format("%Y%m%d").to_string();
    let time = now.format("%H%M%S%.6f").to_string();
    put_str(obj, tags::SERIES_DATE, VR::DA, &date);
    put_str(obj, tags::SERIES_TIME, VR::TM, &time);
    put_str(obj, tags::MODALITY, VR::CS, series.modality);
    put_str(obj, tags::MANUFACTURER, VR::LO, "slicewise");
    put_str(
        obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &clip(series.algorithm_name, 64),
    );
    put_str(obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "0");
    put_str(
        obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
    put_str(
        obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &clip(series.description, 64),
    );
    let study_uid = study_uid(refs);
    put_str(obj, tags::STUDY_INSTANCE_UID, VR::UI, &study_uid);
    put_str(obj, tags::SERIES_INSTANCE_UID, VR::UI, &uid::new_uid());
    put_str(obj, tags::SERIES_NUMBER, VR::IS, &series.number.to_string());
    put_str(
        obj,
        tags::INSTANCE_NUMBER,
        VR::IS,
        &series.instance_number.to_string(),
    );
    SeriesStamp {
        date,
        time,
        study_uid,
    }
}

/// The source's StudyInstanceUID; an anonymised source may lack it, and the derived object then
/// opens a study of its own.
pub fn study_uid(refs: &DicomRefs) -> String {
    if refs.study_uid.is_empty() {
        uid::new_uid()
    } else {
        refs.study_uid.clone()
    }
}

/// The source's FrameOfReferenceUID, or a new one when it has none.
pub fn frame_of_reference_uid(refs: &DicomRefs) -> String {
    refs.frame_of_reference_uid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(uid::new_uid)
}
