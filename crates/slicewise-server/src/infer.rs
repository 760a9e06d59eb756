//! One infer request on the engine: the `params` it honours, the segmentation itself (the same
//! `slicewise::infer::segment` the CLI runs) and the label file in the format asked for.
//!
//! `params` is MONAI Label's free-form JSON object. Honoured keys: `result_extension`
//! (`.nii.gz` default, `.nii`, `.nrrd`, `.seg.nrrd`), `result_dtype` (`uint8` only: labels are
//! u8), `result_compress` (gzip encoding for NRRD), and the engine's own post-processing:
//! `threshold`, `largest_component`, `fill_holes`, `min_size`, `tta`. Other keys (`client_id`,
//! `label_info`, …) are ignored, as MONAI Label's own tasks ignore keys they do not use.
//!
//! A DICOM series is segmented whatever the model's series selection says (the viewer's user
//! chose it); when the rules would skip it, the answer's `slicewise.warnings` says which rule.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};
use slicewise::error::ErrorKind;
use slicewise::infer::{CancelToken, Model, Progress, SegmentOptions};
use slicewise::output::dicom_seg::DicomSegOptions;
use slicewise::output::rtstruct::RtstructOptions;
use slicewise::output::{write_mask_to, EncodeOptions, OutputFormat};
use slicewise::volume::SourceFormat;
use slicewise::Mask;
use slicewise_batch::report::JobRecord;
use slicewise_batch::{batch, jobs};

use crate::error::ApiError;
use crate::models::label_names;

/// The label file an answer carries: the engine's format and encoding, and the extension the
/// answer names it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelFile {
    /// The format.
    pub format: OutputFormat,
    /// gzip: `.nii.gz` rather than `.nii`; NRRD's `gzip` encoding (`result_compress`).
    pub gzip: bool,
    /// The file extension, e.g. `.seg.nrrd`: NRRD named as Slicer names segmentations.
    pub extension: &'static str,
}

impl LabelFile {
    /// NIfTI-1, gzip-compressed (`.nii.gz`): the default.
    pub const NIFTI_GZ: LabelFile = LabelFile::new(OutputFormat::Nifti, true, ".nii.gz");
    /// NIfTI-1, uncompressed (`.nii`).
    pub const NIFTI: LabelFile = LabelFile::new(OutputFormat::Nifti, false, ".nii");
    /// DICOM SEG (`.dcm`), for DICOM images only; asked for with `output=dicom_seg`.
    pub const DICOM_SEG: LabelFile = LabelFile::new(OutputFormat::DicomSeg, false, ".dcm");
    /// DICOM RT Structure Set (`.dcm`), for DICOM images only; asked for with `output=rtstruct`.
    pub const RTSTRUCT: LabelFile = LabelFile::new(OutputFormat::Rtstruct, false, ".dcm");

    const fn new(format: OutputFormat, gzip: bool, extension: &'static str) -> Self {
        LabelFile {
            format,
            gzip,
            extension,
        }
    }

    /// NRRD, `gzip` or raw encoding, named `.seg.nrrd` when `seg` else `.nrrd`.
    pub const fn nrrd(gzip: bool, seg: bool) -> Self {
        let extension = if seg { ".seg.nrrd" } else { ".nrrd" };
        LabelFile::new(OutputFormat::Nrrd, gzip, extension)
    }
}

/// What an infer request asks for, from its `params`.
#[derive(Debug, Clone)]
pub struct InferParams {
    /// The label file.
    pub file: LabelFile,
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
    let file = match opt_str(p, "result_extension")?.as_deref() {
        None | Some(".nii.gz") => LabelFile::NIFTI_GZ,
        Some(".nii") => LabelFile::NIFTI,
        Some(".nrrd") => LabelFile::nrrd(gzip, false),
        Some(".seg.nrrd") => LabelFile::nrrd(gzip, true),
        Some(other) => return Err(unsupported_extension(other)),
    };
    let options = SegmentOptions::from_json(&value).map_err(|e| match e {
        slicewise::Error::InvalidArgument(detail) => bad(detail),
        other => bad(other.to_string()),
    })?;
    Ok(InferParams { file, options })
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
    /// For a multi-channel case: one image per channel, in channel order (`image` is the
    /// first); empty otherwise.
    pub channels: Vec<std::path::PathBuf>,
    /// What the request asked for.
    pub params: InferParams,
    /// Slices per batch.
    pub batch_size: usize,
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
    let volume = if job.channels.is_empty() {
        batch::read_input(&job.image, None, &mut rec)?
    } else {
        batch::read_channels(&job.channels, &mut rec)?
    };
    if volume.meta.format != SourceFormat::Dicom {
        match job.params.file.format {
            OutputFormat::DicomSeg => {
                return Err(ApiError::bad_request(
                    "dicom_seg_needs_dicom",
                    "output=dicom_seg needs an image uploaded as DICOM; this one is not",
                ))
            }
            OutputFormat::Rtstruct => {
                return Err(ApiError::bad_request(
                    "rtstruct_needs_dicom",
                    "output=rtstruct needs an image uploaded as DICOM; this one is not",
                ))
            }
            _ => {}
        }
    }
    if volume.meta.format == SourceFormat::Dicom {
        // The viewer chose this series: the model's series selection warns, it does not refuse.
        let rules = job.model.contract().series_selection.as_ref();
        let uid = volume.meta.series_uid.as_deref();
        rec.warnings
            .extend(jobs::requested_series_note(&job.image, uid, rules));
    }
    let read_s = t0.elapsed().as_secs_f64();
    let options = segment_options(job, cancel);
    let mask = batch::segment_volume(&volume, &job.model, &options, &mut rec, progress)?;
    drop(volume);
    let t1 = Instant::now();
    let label = encode(&mask, job.params.file, &job.model)?;
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
        "result_extension": job.params.file.extension,
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
        file_name: format!("label-{}{}", job.id, job.params.file.extension),
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

/// The label file's bytes, encoded in memory by the engine's writer of its format.
fn encode(mask: &Mask, file: LabelFile, model: &Model) -> Result<Vec<u8>, ApiError> {
    let c = model.contract();
    let options = EncodeOptions {
        gzip: file.gzip,
        // Named after the model, its labels coded as its card codes them, as `slicewise segment`
        // writes its SEG files.
        dicom_seg: DicomSegOptions::default().with_contract(c),
        rtstruct: RtstructOptions::default().with_contract(c),
    };
    let mut out = Cursor::new(Vec::new());
    match write_mask_to(mask, file.format, &options, &mut out) {
        Ok(()) => Ok(out.into_inner()),
        // A mask the format cannot hold is the request's problem; nothing else should fail.
        Err(e) if e.kind() == ErrorKind::InvalidArgument => Err(e.into()),
        Err(e) => Err(ApiError::internal(format!(
            "cannot encode the label file: {e}"
        ))),
    }
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
        assert_eq!(p.file, LabelFile::nrrd(false, false));
        assert_eq!(p.file.extension, ".nrrd");
        assert_eq!(parse_params(None).unwrap().file, LabelFile::NIFTI_GZ);
        assert_eq!(parse_params(Some("")).unwrap().file, LabelFile::NIFTI_GZ);
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
