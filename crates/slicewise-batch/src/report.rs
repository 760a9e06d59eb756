//! `segment`'s report: one record per job, written as JSON (the full record) and CSV (one row per
//! job, one voxels/mL column pair per label), atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use slicewise::error::{Error, Result};
use slicewise::infer::ProviderReport;
use slicewise::mask::LabelStats;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Segmented and written in this run.
    Ok,
    /// Complete outputs from an earlier run were found (the record is the earlier one's).
    Skipped,
    /// Failed; see `error`.
    Failed,
    /// A DICOM series the model's series selection does not take (or not the one asked for);
    /// see `reason`. Nothing was read or written.
    #[serde(rename = "not_selected")]
    NotSelected,
}

impl JobStatus {
    /// The status as the report writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Skipped => "skipped",
            JobStatus::Failed => "failed",
            JobStatus::NotSelected => "not_selected",
        }
    }
}

/// Seconds per stage of a job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobTimings {
    /// Reading the volume.
    pub read: f64,
    /// Preprocessing (engine).
    pub preprocess: f64,
    /// Inference (engine).
    pub inference: f64,
    /// Postprocessing (engine).
    pub postprocess: f64,
    /// Writing mask, previews and sidecar.
    pub write: f64,
    /// Wall time of the whole job.
    pub total: f64,
}

/// An output file and its size when written (used to tell complete outputs on resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
}

/// One job of the batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// The input path (as given on the command line, or the sub-folder found in it).
    pub input: PathBuf,
    /// The manifest row (0-based) the job came from, for `--manifest` batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    /// DICOM SeriesInstanceUID, when the input is DICOM.
    pub series_uid: Option<String>,
    /// DICOM SeriesNumber, when the series has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_number: Option<i64>,
    /// DICOM SeriesDescription, when the series has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_description: Option<String>,
    /// For a multi-channel case: every channel's input, in channel order (`input` is the
    /// first). Absent for one-volume jobs, whose records read as they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<PathBuf>,
    /// Outcome.
    pub status: JobStatus,
    /// Why a series was not selected (status `not_selected`): the rule it failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The mask file.
    pub mask: Option<OutputFile>,
    /// PNG previews.
    pub previews: Vec<OutputFile>,
    /// `[x, y, z]`.
    pub dims: Option<[usize; 3]>,
    /// Voxel spacing `[x, y, z]` in mm.
    pub spacing: Option<[f64; 3]>,
    /// The execution provider that ran the model.
    pub provider: Option<String>,
    /// Voxels and millilitres per label.
    pub labels: Vec<LabelStats>,
    /// Stage timings in seconds.
    pub timings: JobTimings,
    /// Non-fatal problems (reader and engine).
    pub warnings: Vec<String>,
    /// The error, for failed jobs.
    pub error: Option<String>,
}

impl JobRecord {
    /// A record for `input` with nothing done yet.
    pub fn new(input: &Path, series_uid: Option<String>) -> JobRecord {
        JobRecord {
            input: input.to_path_buf(),
            row: None,
            series_uid,
            series_number: None,
            series_description: None,
            channels: Vec::new(),
            status: JobStatus::Failed,
            reason: None,
            mask: None,
            previews: Vec::new(),
            dims: None,
            spacing: None,
            provider: None,
            labels: Vec::new(),
            timings: JobTimings::default(),
            warnings: Vec::new(),
            error: None,
        }
    }
}

/// The model as used for the batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Model file.
    pub path: PathBuf,
    /// Contract name.
    pub name: String,
    /// Contract version.
    pub version: String,
    /// Provider selection.
    pub provider: ProviderReport,
    /// Seconds to load it (once for the batch).
    pub load_seconds: f64,
}

/// Counts over the batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Jobs in the batch.
    pub jobs: usize,
    /// Segmented in this run.
    pub ok: usize,
    /// Skipped (complete from an earlier run).
    pub skipped: usize,
    /// Failed.
    pub failed: usize,
    /// DICOM series not selected (not run).
    #[serde(default)]
    pub not_selected: usize,
    /// Wall time of the batch in seconds.
    pub seconds: f64,
    /// How `slicewise segment` ran the jobs at once (absent from other runners' reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Parallelism>,
}

/// How a batch ran jobs at once (`segment --jobs K`) and the memory bound that follows from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parallelism {
    /// Jobs segmented at once.
    pub jobs: usize,
    /// ONNX Runtime sessions the jobs shared (each holds the weights and a memory arena).
    pub sessions: usize,
    /// Intra-op threads of each session (`None`: ONNX Runtime's default).
    pub threads_per_session: Option<usize>,
    /// The most volumes, each with its mask, held at once: one read ahead, one per job, one
    /// being written.
    pub volumes_in_flight: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchReport {
    /// slicewise version.
    pub slicewise_version: String,
    /// The model.
    pub model: ModelRecord,
    /// The options in effect (as given on the command line).
    pub options: serde_json::Value,
    /// The jobs, in input order.
    pub jobs: Vec<JobRecord>,
    /// Counts.
    pub summary: Summary,
    /// The shard this report covers, for `--shard` batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// The shard reports a merged report was made from (`slicewise merge-reports`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardSummary>,
}

/// Which part of a manifest a shard's report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Shard index I, 0-based.
    pub index: usize,
    /// Number of shards N.
    pub count: usize,
    /// The manifest the rows came from.
    pub manifest: PathBuf,
    /// Rows in the whole manifest (the shard runs rows r with r mod N = I).
    pub rows: usize,
}

/// One shard report of a merged report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardSummary {
    /// Shard index I.
    pub index: usize,
    /// The shard's report file.
    pub report: PathBuf,
    /// The execution provider the shard's model ran on.
    pub provider: String,
    /// The shard's model load time in seconds.
    pub load_seconds: f64,
    /// The shard's counts.
    pub summary: Summary,
}

/// Writes `report` as JSON at `path` and as CSV next to it (same name, `.csv`).
pub fn write(path: &Path, report: &BatchReport) -> Result<PathBuf> {
    slicewise::output::atomic_write(path, |w| {
        serde_json::to_writer_pretty(&mut *w, report)
            .map_err(|e| Error::io("write", path, std::io::Error::other(e)))?;
        w.write_all(b"\n").map_err(|e| Error::io("write", path, e))
    })?;
    let csv_path = path.with_extension("csv");
    slicewise::output::atomic_write(&csv_path, |w| {
        w.write_all(csv(&report.jobs).as_bytes())
            .map_err(|e| Error::io("write", &csv_path, e))
    })?;
    Ok(csv_path)
}

/// Reads a report written by [`write`].
pub fn read(path: &Path) -> Result<BatchReport> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(path, format!("not a slicewise report: {e}")))
}

/// The CSV text: a header and one row per job.
pub fn csv(jobs: &[JobRecord]) -> String {
    // Every label any job found gets a column pair, so the rows line up.
    let mut labels: Vec<u8> = jobs
        .iter()
        .flat_map(|j| j.labels.iter().map(|l| l.value))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut out = csv_head(&labels).join(",");
    out.push('\n');
    for j in jobs {
        let row: Vec<String> = csv_row(j, &labels).iter().map(|f| field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// The column names, with a voxels/mL pair for each of `labels`.
fn csv_head(labels: &[u8]) -> Vec<String> {
    let mut head: Vec<String> = [
        "input",
        "series_uid",
        "status",
        "mask",
        "dims_x",
        "dims_y",
        "dims_z",
        "spacing_x",
        "spacing_y",
        "spacing_z",
        "provider",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for l in labels {
        head.push(format!("label{l}_voxels"));
        head.push(format!("label{l}_ml"));
    }
    head.extend(
        [
            "read_s",
            "preprocess_s",
            "inference_s",
            "postprocess_s",
            "write_s",
            "total_s",
            "warnings",
            "error",
            "reason",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    head
}

/// The unquoted fields of one job's row, in [`csv_head`]'s order (empty where a value is
/// missing or the job has no such label).
fn csv_row(j: &JobRecord, labels: &[u8]) -> Vec<String> {
    let mut row: Vec<String> = vec![
        j.input.display().to_string(),
        j.series_uid.clone().unwrap_or_default(),
        j.status.as_str().to_string(),
        j.mask
            .as_ref()
            .map(|m| m.path.display().to_string())
            .unwrap_or_default(),
    ];
    for i in 0..3 {
        row.push(j.dims.map(|d| d[i].to_string()).unwrap_or_default());
    }
    for i in 0..3 {
        row.push(j.spacing.map(|s| s[i].to_string()).unwrap_or_default());
    }
    row.push(j.provider.clone().unwrap_or_default());
    for l in labels {
        match j.labels.iter().find(|s| s.value == *l) {
            Some(s) => {
                row.push(s.voxels.to_string());
                row.push(ml_field(s.ml));
            }
            None => row.extend([String::new(), String::new()]),
        }
    }
    let t = &j.timings;
    for v in [
        t.read,
        t.preprocess,
        t.inference,
        t.postprocess,
        t.write,
        t.total,
    ] {
        row.push(format!("{v:.4}"));
    }
    row.push(j.warnings.join("; "));
    row.push(j.error.clone().unwrap_or_default());
    row.push(j.reason.clone().unwrap_or_default());
    row
}

/// A volume in mL for the CSV: 6 significant digits, finer than one voxel for masks of up to a
/// million voxels and free of float noise (1.6260000000000001 → 1.626). The JSON keeps full
/// precision (the exact voxels × voxel volume, for programs that check it).
fn ml_field(v: f64) -> String {
    significant(v, 6)
}

/// `v` rounded to `digits` significant digits, written without exponent or trailing zeros
/// (1.6260000000000001 → "1.626" for 6 digits): binary floating-point noise is not data.
fn significant(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    // The exponent form rounds to significant digits; parsing it back and printing the shortest
    // round-trip form drops the zeros the rounding left.
    let rounded = format!("{v:.*e}", digits.max(1) - 1);
    rounded.parse::<f64>().map_or(rounded, |r| r.to_string())
}

/// RFC 4180 quoting.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_has_label_columns() {
        let mut j = JobRecord::new(Path::new("a,b.nii"), None);
        j.labels.push(LabelStats {
            value: 1,
            name: "t".into(),
            voxels: 10,
            ml: 0.01,
        });
        j.error = Some("x \"y\"".into());
        let c = csv(&[j]);
        let mut lines = c.lines();
        assert!(lines
            .next()
            .unwrap_or("")
            .contains("label1_voxels,label1_ml"));
        let row = lines.next().unwrap_or("");
        assert!(row.starts_with("\"a,b.nii\",,failed,"));
        assert!(row.contains(",10,0.01,"));
        // The error, then the (empty) reason a series was not selected.
        assert!(row.ends_with("\"x \"\"y\"\"\","));
    }

    #[test]
    fn records_read_back_hold_the_very_values_written() {
        // 1642 voxels of 1 mm³ (1642 × 0.001): what a resumed job or a merged shard reports.
        let mut j = JobRecord::new(Path::new("a.nii"), None);
        j.row = Some(3);
        j.labels.push(LabelStats {
            value: 2,
            name: String::new(),
            voxels: 1642,
            ml: 1642.0 * 0.001,
        });
        let back: JobRecord = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back.labels[0].ml.to_bits(), j.labels[0].ml.to_bits());
        assert_eq!(back.row, Some(3));
        let old: JobRecord = serde_json::from_str(
            r#"{"input":"a","series_uid":null,"status":"ok","mask":null,"previews":[],"dims":null,
               "spacing":null,"provider":null,"labels":[],"timings":{"read":0,"preprocess":0,
               "inference":0,"postprocess":0,"write":0,"total":0},"warnings":[],"error":null}"#,
        )
        .unwrap();
        assert_eq!(
            old.row, None,
            "sidecars written before rows existed still read"
        );
    }

    #[test]
    fn significant_digits_drop_float_noise_and_keep_small_values() {
        assert_eq!(significant(1.6260000000000001, 6), "1.626");
        assert_eq!(significant(1.82, 6), "1.82");
        assert_eq!(significant(0.000001234567, 6), "0.00000123457");
        assert_eq!(significant(123456789.0, 6), "123457000");
        assert_eq!(significant(0.0, 6), "0");
    }

    #[test]
    fn csv_rounds_millilitres_to_six_significant_digits() {
        let mut j = JobRecord::new(Path::new("a.nii"), None);
        for (value, voxels, ml) in [(1, 1626, 1.6260000000000001), (2, 3, 2.636718750001e-6)] {
            let name = String::new();
            j.labels.push(LabelStats {
                value,
                name,
                voxels,
                ml,
            });
        }
        let c = csv(&[j]);
        assert!(c.contains(",1626,1.626,3,0.00000263672,"), "{c}");
    }
}
