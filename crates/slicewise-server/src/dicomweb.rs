//! The PACS side (`--dicomweb URL`, e.g. Orthanc's `http://127.0.0.1:8042/dicom-web`): an image
//! id that is a DICOM UID names a series in the PACS, as in MONAI Label's DICOMweb datastore.
//! The client itself (QIDO, WADO, STOW, the viewer's proxy) is the crate `slicewise-dicomweb`,
//! shared with `slicewise watch`; here is what the datastore endpoints show of the PACS, in
//! MONAI Label's shapes.

use serde_json::{json, Value};

pub use slicewise_dicomweb::{is_uid, redact, DicomWeb, PacsError, SeriesInfo, SetupError, Stored};

/// `GET /datastore/?output=all` with a PACS: the local datastore's `objects` plus one per
/// PACS image series, keyed by SeriesInstanceUID.
pub async fn all_json(pacs: &DicomWeb, mut local: Value) -> Result<Value, PacsError> {
    let series = pacs.list_series().await?;
    if let Some(objects) = local.get_mut("objects").and_then(Value::as_object_mut) {
        for s in &series {
            objects.insert(
                s.series_uid.clone(),
                json!({ "image": { "ext": "", "info": info_json(s) }, "labels": {} }),
            );
        }
    }
    if let Some(o) = local.as_object_mut() {
        o.insert("name".into(), json!(pacs.url()));
        o.insert(
            "description".into(),
            json!("slicewise: DICOMweb datastore (and local uploads)"),
        );
    }
    Ok(local)
}

/// `GET /datastore/` (stats) with a PACS: the local stats with the PACS's image series added
/// to `total`.
pub async fn stats_json(pacs: &DicomWeb, mut local: Value) -> Result<Value, PacsError> {
    let n = pacs.list_series().await?.len() as u64;
    let local_total = local["total"].as_u64().unwrap_or(0);
    local["total"] = json!(local_total + n);
    Ok(local)
}

/// What `GET /datastore/?output=all` shows of a series (MONAI Label's `_dicom_info` fields).
fn info_json(s: &SeriesInfo) -> Value {
    json!({
        "SeriesInstanceUID": s.series_uid,
        "StudyInstanceUID": s.study_uid,
        "Modality": s.modality,
        "PatientID": s.attribute("00100020"),
        "StudyDate": s.attribute("00080020"),
        "StudyTime": s.attribute("00080030"),
        "SeriesDescription": s.description(),
        "RetrieveURL": s.attribute("00081190"),
        "instances": s.instances,
    })
}
