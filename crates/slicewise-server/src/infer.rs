//! One infer request on the engine: the `params` it honours, the segmentation itself (the same
//! `slicewise::infer::segment` the CLI runs) and the label file in the format asked for.
//!
//! `params` is MONAI Label's free-form JSON object. Honoured keys: `result_extension`
//! (`.nii.gz` default, `.nii`, `.nrrd`, `.seg.nrrd`), `result_dtype` (`uint8` only: labels are
//! u8), `result_compress` (gzip encoding for NRRD), and the engine's own post-processing:
//! `threshold`, `largest_component`, `fill_holes`, `min_size`, `tta`. Other keys (`client_id`,
//! `label_info`, …) are ignored, as MONAI Label's own tasks ignore keys they do not use.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};
use slicewise::infer::{CancelToken, Model, Progress, SegmentOptions};
use slicewise::volume::SourceFormat;
use slicewise::Mask;
use slicewise_batch::batch;
use slicewise_batch::report::JobRecord;

use crate::error::ApiError;
use crate::models::label_names;

/// The label file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFormat {
    /// NIfTI-1, gzip-compressed.
    NiftiGz,
    /// NIfTI-1, uncompressed.
    Nifti,
    /// NRRD; `true` for gzip encoding. `seg` names the file `.seg.nrrd` (Slicer's choice).
    Nrrd {
        /// gzip encoding.
        gzip: bool,
        /// `.seg.nrrd` rather than `.nrrd`.
        seg: bool,
    },
    /// DICOM SEG (for DICOM images only; asked for with `output=dicom_seg`).
    DicomSeg,
}

impl LabelFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            LabelFormat::NiftiGz => ".nii.gz",
            LabelFormat::Nifti => ".nii",
            LabelFormat::Nrrd { seg: false, .. } => ".nrrd",
            LabelFormat::Nrrd { seg: true, .. } => ".seg.nrrd",
            LabelFormat::DicomSeg => ".dcm",
        }
    }
}

/// What an infer request asks for, from its `params`.
#[derive(Debug, Clone)]
pub struct InferParams {
    /// Label file format.
    pub format: LabelFormat,
    /// The engine's segmentation options, deserialised from the same `params` (`threshold`,
    /// `largest_component`, `fill_holes`, `min_size`, `tta`, and any the engine adds). The
    /// batch size is the server's own (`--batch-size`), never a client's.
    pub options: SegmentOptions,
}

/// Parses the `params` form field (absent or empty: `{}`); 400 for a value of the wrong type
/// or an unsupported format.
pub fn parse_params(text: Option<&str>) -> Result<InferParams, ApiError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("{}");
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("`params` is not JSON: {e}")))?;
    let p = value
        .as_object()
        .ok_or_else(|| bad("`params` must be a JSON object".into()))?;
    if let Some(dtype) = opt_str(p, "result_dtype")? {
        if dtype != "uint8" {
            return Err(bad(format!(
                "result_dtype {dtype:?} is not supported: labels are uint8"
            )));
        }
    }
    let gzip = opt_bool(p, "result_compress")?.unwrap_or(false);
    let format = match opt_str(p, "result_extension")?.as_deref() {
        None | Some(".nii.gz") => LabelFormat::NiftiGz,
        Some(".nii") => LabelFormat::Nifti,
        Some(".nrrd") => LabelFormat::Nrrd { gzip, seg: false },
        Some(".seg.nrrd") => LabelFormat::Nrrd { gzip, seg: true },
        Some(other) => return Err(unsupported_extension(other)),
    };
    let options = SegmentOptions::from_json(&value).map_err(|e| match e {
        slicewise::Error::InvalidArgument(detail) => bad(detail),
        other => bad(other.to_string()),
    })?;
    Ok(InferParams { format, options })
}

fn unsupported_extension(ext: &str) -> ApiError {
    bad(format!(
        "result_extension {ext:?} is not supported (use .nii.gz, .nii, .nrrd or .seg.nrrd)"
    ))
}

fn bad(detail: String) -> ApiError {
    ApiError::bad_request("bad_params", detail)
}

fn opt_str(p: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(format!("{key} must be a string, not {v}"))),
    }
}

fn opt_bool(p: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(format!("{key} must be true or false, not {v}"))),
    }
}

/// One job's inputs.
pub struct InferJob {
    /// Job id (reported in the answer's params).
    pub id: String,
    /// Model name.
    pub model_name: String,
    /// The loaded model.
    pub model: Arc<Model>,
    /// The image: a file or a DICOM folder.
    pub image: std::path::PathBuf,
    /// What the request asked for.
    pub params: InferParams,
    /// Slices per batch.
    pub batch_size: usize,
    /// Folder for the temporary files of writers that only write files.
    pub staging: std::path::PathBuf,
}

/// The answer of a finished job.
pub struct InferResult {
    /// The label file's bytes.
    pub label: Vec<u8>,
    /// Its file name (`label-<job><ext>`).
    pub file_name: String,
    /// The `params` JSON of the answer.
    pub params: Value,
}

/// Reads the image, segments it and encodes the label: the whole job, on a blocking thread.
pub fn run(
    job: &InferJob,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<InferResult, ApiError> {
    let t0 = Instant::now();
    // A request that went away while queued need not read its image.
    if cancel.is_cancelled() {
        return Err(slicewise::Error::Cancelled.into());
    }
    // Read and segmented as every slicewise job is (the job layer), answered with the label
    // file itself rather than written beside a sidecar.
    let mut rec = JobRecord::new(&job.image, None);
    let volume = batch::read_input(&job.image, None, &mut rec)?;
    if job.params.format == LabelFormat::DicomSeg && volume.meta.format != SourceFormat::Dicom {
        return Err(ApiError::bad_request(
            "dicom_seg_needs_dicom",
            "output=dicom_seg needs an image uploaded as DICOM; this one is not",
        ));
    }
    let read_s = t0.elapsed().as_secs_f64();
    let options = segment_options(job, cancel);
    let mask = batch::segment_volume(&volume, &job.model, &options, &mut rec, progress)?;
    drop(volume);
    let t1 = Instant::now();
    let label = encode(&mask, job.params.format, &job.staging, &job.model)?;
    let write_s = t1.elapsed().as_secs_f64();
    let t = &rec.timings;
    let params = json!({
        "label_names": label_names(&job.model),
        "latencies": {
            "pre": read_s + t.preprocess,
            "infer": t.inference,
            "invert": 0.0,
            "post": t.postprocess,
            "write": write_s,
            "total": t0.elapsed().as_secs_f64(),
            "transform": null,
        },
        "result_extension": job.params.format.extension(),
        "result_dtype": "uint8",
        "slicewise": {
            "job": job.id,
            "model": job.model_name,
            "provider": rec.provider,
            "dims": rec.dims,
            "labels": rec.labels,
            "warnings": rec.warnings,
        },
    });
    Ok(InferResult {
        label,
        file_name: format!("label-{}{}", job.id, job.params.format.extension()),
        params,
    })
}

/// The request's options with the server's batch size and the job's cancellation token.
fn segment_options(job: &InferJob, cancel: &CancelToken) -> SegmentOptions {
    job.params
        .options
        .clone()
        .batch_size(job.batch_size)
        .cancel(cancel.clone())
}

/// The label file's bytes. NRRD and DICOM SEG are encoded in memory; the NIfTI writer writes
/// files, so it writes a temporary one in `staging`, which is read back and removed.
fn encode(
    mask: &Mask,
    format: LabelFormat,
    staging: &Path,
    model: &Model,
) -> Result<Vec<u8>, ApiError> {
    use slicewise::output;
    match format {
        LabelFormat::Nrrd { gzip, .. } => return Ok(output::nrrd::encode_mask(mask, gzip)?),
        LabelFormat::DicomSeg => {
            // Named after the model, as `slicewise segment` names its SEG files.
            let c = model.contract();
            let opts =
                output::dicom_seg::DicomSegOptions::default().with_model(&c.name, &c.version);
            let file = output::dicom_seg::build(mask, &opts)?;
            let mut bytes = Vec::new();
            file.write_all(&mut bytes)
                .map_err(|e| ApiError::internal(format!("cannot encode the DICOM SEG: {e}")))?;
            return Ok(bytes);
        }
        _ => {}
    }
    let tmp = tempfile::Builder::new()
        .prefix("label-")
        .suffix(format.extension())
        .tempfile_in(staging)
        .map_err(|e| ApiError::internal(format!("cannot create a temporary label file: {e}")))?
        .into_temp_path();
    output::nifti::write_mask(&tmp, mask)?;
    std::fs::read(&tmp)
        .map_err(|e| ApiError::internal(format!("cannot read the temporary label file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_pick_the_format_and_ignore_foreign_keys() {
        let p = parse_params(Some(
            r#"{"result_extension": ".nrrd", "result_dtype": "uint8", "result_compress": false, "client_id": "x", "label_info": []}"#,
        ))
        .unwrap();
        assert_eq!(
            p.format,
            LabelFormat::Nrrd {
                gzip: false,
                seg: false
            }
        );
        assert_eq!(parse_params(None).unwrap().format, LabelFormat::NiftiGz);
        assert_eq!(parse_params(Some("")).unwrap().format, LabelFormat::NiftiGz);
        let p = parse_params(Some(r#"{"threshold": 0.3, "min_size": 10, "tta": true}"#)).unwrap();
        let o = &p.options;
        assert_eq!((o.threshold, o.min_size, o.tta), (Some(0.3), 10, true));
    }

    #[test]
    fn bad_params_are_400_naming_the_key() {
        for (text, key) in [
            ("[1]", "object"),
            ("{", "JSON"),
            (r#"{"result_extension": ".png"}"#, "result_extension"),
            (r#"{"result_dtype": "float32"}"#, "result_dtype"),
            (r#"{"threshold": 2}"#, "threshold"),
            (r#"{"min_size": -1}"#, "min_size"),
            (r#"{"tta": "yes"}"#, "tta"),
        ] {
            let e = parse_params(Some(text)).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{text}");
            assert!(e.detail.contains(key), "{text}: {}", e.detail);
        }
    }
}
