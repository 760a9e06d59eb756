//! The job layer (`slicewise-batch`) for Python: plan jobs from inputs or a manifest, run one job
//! exactly as `slicewise segment` runs it (same outputs, sidecar and record), write the report.
//! Jobs and records cross as JSON text, which Ray moves between processes as plain strings.

use std::path::PathBuf;

use std::sync::Arc;

use pyo3::prelude::*;

use crate::errors::{invalid, to_py};
use crate::model::{device, PyModel};
use slicewise::infer::Model;
use slicewise_batch::batch::{self, InputGuard, JobSettings};
use slicewise_batch::jobs::{self, Job, SeriesChoice};
use slicewise_batch::report::{self, BatchReport, JobRecord};

/// A manifest's input paths (relative ones joined to its folder), in row order.
#[pyfunction]
pub fn read_manifest(path: PathBuf) -> PyResult<Vec<PathBuf>> {
    slicewise_batch::manifest::read(&path).map_err(to_py)
}

/// The jobs of `inputs` as JSON, in the CLI's order and with its output names; `rows=True`
/// marks each with its manifest row (what `segment --manifest` does). With `model`, the DICOM
/// series its series selection does not take are marked not selected (they are reported, not
/// run); `series` runs exactly that SeriesInstanceUID, `all_series` every series (the CLI's
/// `--series`, `--all-series`).
#[pyfunction]
#[pyo3(signature = (inputs, rows=false, model=None, series=None, all_series=false))]
pub fn plan(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    rows: bool,
    model: Option<PyRef<'_, PyModel>>,
    series: Option<String>,
    all_series: bool,
) -> PyResult<Vec<String>> {
    planned_jobs(py, model, series, all_series, || {
        if rows {
            jobs::expand_rows(&inputs)
        } else {
            jobs::expand(&inputs)
        }
    })
}

/// The jobs of `inputs` for a model taking `channels` input channels, as JSON: each input is a
/// list of paths, one path (a file, folder, DICOM study) or one per channel of one case; with
/// `channels > 1`, nnU-Net-named files (`CASE_0000`, …) are grouped into one job per case.
/// `model`, `series` and `all_series` select DICOM series as in [`plan`].
#[pyfunction]
#[pyo3(signature = (inputs, channels, model=None, series=None, all_series=false))]
pub fn plan_cases(
    py: Python<'_>,
    inputs: Vec<Vec<PathBuf>>,
    channels: usize,
    model: Option<PyRef<'_, PyModel>>,
    series: Option<String>,
    all_series: bool,
) -> PyResult<Vec<String>> {
    planned_jobs(py, model, series, all_series, || {
        jobs::expand_for(&inputs, channels)
    })
}

/// The jobs `expand` plans (without the GIL), the series `model`'s rules or `--series` /
/// `--all-series` leave out marked, as JSON: what [`plan`] and [`plan_cases`] share.
fn planned_jobs(
    py: Python<'_>,
    model: Option<PyRef<'_, PyModel>>,
    series: Option<String>,
    all_series: bool,
    expand: impl FnOnce() -> Vec<jobs::Job> + Send,
) -> PyResult<Vec<String>> {
    let model = model.map(|m| Arc::clone(&m.inner));
    let choice = series_choice(series, all_series)?;
    let planned = py.detach(|| {
        let mut planned = expand();
        select(&mut planned, model.as_deref(), &choice).map(|()| planned)
    });
    planned.map_err(to_py)?.iter().map(to_json).collect()
}

/// The CLI's `--series` / `--all-series` as Python passes them.
fn series_choice(series: Option<String>, all_series: bool) -> PyResult<SeriesChoice> {
    match (series, all_series) {
        (Some(_), true) => Err(invalid("series and all_series exclude each other")),
        (Some(uid), false) => Ok(SeriesChoice::Uid(uid)),
        (None, true) => Ok(SeriesChoice::All),
        (None, false) => Ok(SeriesChoice::ByRules),
    }
}

/// Marks the series `model`'s rules (or `choice`) leave out.
fn select(
    planned: &mut [jobs::Job],
    model: Option<&Model>,
    choice: &SeriesChoice,
) -> slicewise::Result<()> {
    let rules = model.and_then(|m| m.contract().series_selection.as_ref());
    jobs::select(planned, rules, choice)
}

/// Why `out` cannot take the outputs of `inputs` (it lies inside an input folder), or None.
#[pyfunction]
pub fn check_out(inputs: Vec<PathBuf>, out: PathBuf) -> Option<String> {
    batch::out_problem(&inputs, &out)
}

/// Job settings from the JSON object Python passes (`out`, the job options and the
/// segmentation options), read by the job layer itself.
fn job_settings(settings: &str) -> PyResult<JobSettings> {
    let value: serde_json::Value =
        serde_json::from_str(settings).map_err(|e| invalid(format!("settings: {e}")))?;
    JobSettings::from_json(&value).map_err(to_py)
}

/// Runs planned jobs (JSON from `plan`) with one model, writing into the settings' `out` what the
/// CLI writes. Made once per worker: it holds the model and the batch's guarded inputs.
#[pyclass(name = "Runner", module = "slicewise._slicewise", frozen)]
pub struct Runner {
    model: Arc<Model>,
    settings: JobSettings,
    guard: InputGuard,
}

#[pymethods]
impl Runner {
    /// A runner for `model` with `settings` (a JSON object); `inputs` are the batch's inputs,
    /// which no output may overwrite. Creates the output folder.
    #[new]
    fn new(model: PyRef<'_, PyModel>, settings: &str, inputs: Vec<PathBuf>) -> PyResult<Self> {
        let settings = job_settings(settings)?;
        std::fs::create_dir_all(&settings.out)
            .map_err(|e| to_py(slicewise::Error::io("create folder", &settings.out, e)))?;
        Ok(Runner {
            model: Arc::clone(&model.inner),
            settings,
            guard: InputGuard::new(&inputs),
        })
    }

    /// Runs one job without the GIL (skipped when complete from an earlier run, unless
    /// `overwrite`); returns its record as JSON. A failed job is a record, not an exception.
    fn run(&self, py: Python<'_>, job: &str) -> PyResult<String> {
        let job: Job = serde_json::from_str(job).map_err(|e| invalid(format!("job: {e}")))?;
        let rec = py.detach(|| {
            batch::run_job(&job, &self.model, &self.settings, &self.guard, &mut |_| {
                true
            })
        });
        to_json(&rec)
    }
}

/// The report's record of `model` (path, name, version, provider, load time) as JSON.
#[pyfunction]
pub fn model_record(model: PyRef<'_, PyModel>) -> PyResult<String> {
    to_json(&batch::model_record(&model.inner, model.load_seconds))
}

/// The report's `options` object for `settings` (a JSON object) on `device` with `threads`, as
/// JSON.
#[pyfunction]
#[pyo3(signature = (settings, device_name, threads=None))]
pub fn options_json(settings: &str, device_name: &str, threads: Option<usize>) -> PyResult<String> {
    let s = job_settings(settings)?;
    Ok(s.options_json(device(device_name)?, threads).to_string())
}

/// Writes the batch report (JSON at `path`, CSV next to it) from the record of the model that
/// ran the jobs (JSON from `model_record`), the options (JSON from `options_json`), the job
/// records (JSON, in job order) and the batch's wall time.
#[pyfunction]
pub fn write_report(
    py: Python<'_>,
    path: PathBuf,
    model: &str,
    options: &str,
    records: Vec<String>,
    seconds: f64,
) -> PyResult<()> {
    let jobs = records
        .iter()
        .map(|r| serde_json::from_str::<JobRecord>(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("record: {e}")))?;
    let options = serde_json::from_str(options).map_err(|e| invalid(format!("options: {e}")))?;
    let model = serde_json::from_str(model).map_err(|e| invalid(format!("model: {e}")))?;
    let report = BatchReport {
        slicewise_version: env!("CARGO_PKG_VERSION").to_string(),
        model,
        options,
        summary: batch::tally(&jobs, seconds),
        jobs,
        shard: None,
        shards: Vec::new(),
    };
    py.detach(|| report::write(&path, &report))
        .map(|_| ())
        .map_err(to_py)
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| invalid(e.to_string()))
}
