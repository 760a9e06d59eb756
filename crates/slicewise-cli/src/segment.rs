//! `slicewise segment`: a batch of volumes through one loaded model.
//!
//! Arguments become jobs ([`jobs`]) and job settings; each job runs through
//! [`batch::run_job`] (read, segment, write mask, previews and the sidecar that marks it
//! complete, so an interrupted batch resumes where it stopped). With `--manifest` the inputs
//! are a manifest's rows, and `--shard I/N` runs only shard I's rows ([`manifest`]) and writes
//! the shard's own report, for `slicewise merge-reports` to merge.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::progress::Bars;
use slicewise::error::{Error, Result};
use slicewise::infer::{Device, Model, ModelOptions};
use slicewise::output::OutputFormat;
use slicewise_cli::batch::{self, InputGuard, JobSettings};
use slicewise_cli::console;
use slicewise_cli::jobs::{self, Job};
use slicewise_cli::manifest::{self, Shard};
use slicewise_cli::report::{self, BatchReport, JobRecord, JobStatus, ShardRecord};

/// Mask file formats `segment` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// NIfTI-1, `.nii.gz` (default for NIfTI and DICOM input).
    Nifti,
    /// Multi-page TIFF, `.tif` (default for TIFF input).
    Tiff,
    /// DICOM SEG (BINARY) referencing the source series, `.dcm` (DICOM input only).
    DicomSeg,
}

/// Execution providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CUDA, then TensorRT, then CPU.
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA (an error when unavailable).
    Cuda,
    /// TensorRT (an error when unavailable).
    Tensorrt,
}

impl From<FormatArg> for OutputFormat {
    fn from(f: FormatArg) -> OutputFormat {
        match f {
            FormatArg::Nifti => OutputFormat::Nifti,
            FormatArg::Tiff => OutputFormat::Tiff,
            FormatArg::DicomSeg => OutputFormat::DicomSeg,
        }
    }
}

impl From<DeviceArg> for Device {
    fn from(d: DeviceArg) -> Device {
        match d {
            DeviceArg::Auto => Device::Auto,
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
            DeviceArg::Tensorrt => Device::TensorRt,
        }
    }
}

/// Arguments of `slicewise segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Inputs: files, DICOM folders (every series is a job), NIfTI, TIFF stacks, LGG-style
    /// patient folders, or folders of such folders.
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    pub inputs: Vec<PathBuf>,
    /// Read the inputs from a manifest: a CSV with an `input` column, or one path per line
    /// (relative paths are relative to the manifest's folder).
    #[arg(long, value_name = "CSV")]
    pub manifest: Option<PathBuf>,
    /// Run only shard I of N of the manifest (rows r with r mod N = I, counted from 0) and write
    /// the report as REPORT.shard-I-of-N.json (default REPORT: OUT/report.json). `--shard N`
    /// takes I from $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "I/N", requires = "manifest")]
    pub shard: Option<String>,
    /// The ONNX model.
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder (created if missing; must not lie inside an input folder).
    #[arg(long)]
    pub out: PathBuf,
    /// Mask format (default: NIfTI for NIfTI/DICOM input, TIFF for TIFF input).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Execution provider.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Slices per inference batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Intra-op threads (default: ONNX Runtime's choice).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Probability threshold for sigmoid models (default: the model's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Keep only the largest 3-D connected component of each label.
    #[arg(long)]
    pub largest_component: bool,
    /// Fill holes in each label.
    #[arg(long)]
    pub fill_holes: bool,
    /// Remove 3-D components smaller than N voxels.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_size: usize,
    /// Horizontal-flip test-time augmentation.
    #[arg(long)]
    pub tta: bool,
    /// Write a JSON report here (and a CSV next to it).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write PNG overlays of the slices with the most foreground.
    #[arg(long)]
    pub preview: bool,
    /// Redo jobs whose outputs are already complete.
    #[arg(long)]
    pub overwrite: bool,
    /// ONNX Runtime shared library (default: $SLICEWISE_ORT_LIB, then the engine's search).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

/// The batch as planned: the input rows, the jobs to run here, and the shard.
struct Plan {
    rows: Vec<PathBuf>,
    jobs: Vec<Job>,
    shard: Option<Shard>,
}

/// Runs `slicewise segment`: exit 0 when every job succeeded or was complete, 1 when a job
/// failed, 2 when the batch could not start (usage, manifest, output folder, model).
pub fn run(args: SegmentArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let (rows, shard) = match rows_and_shard(&args) {
        Ok(v) => v,
        Err(problem) => return usage(&problem),
    };
    let guard = InputGuard::new(&rows);
    if let Some(problem) = usage_problem(&args, &rows, shard, &guard) {
        return usage(&problem);
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io("create folder", &args.out, e))?;
    let plan = plan(&args, rows, shard);
    let (model, load_seconds) = match load_model(&args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("slicewise: error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Once per run, not per job: the device is the batch's.
    if let Some(line) = console::device_line(&model) {
        eprintln!("{line}");
    }

    let settings = settings(&args);
    let records = run_jobs(&plan.jobs, &model, &settings, &guard);
    let summary = batch::tally(&records, started.elapsed().as_secs_f64());
    eprintln!("{}", console::summary_line(&summary));
    let failed = summary.failed > 0;
    if let Some(path) = report_path(&args, plan.shard) {
        let report = BatchReport {
            slicewise_version: env!("CARGO_PKG_VERSION").to_string(),
            model: batch::model_record(&model, load_seconds),
            options: settings.options_json(args.device.into(), threads(&args)),
            jobs: records,
            summary,
            shard: shard_record(&args, &plan),
            shards: Vec::new(),
        };
        report::write(&path, &report)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The input rows (the positional inputs or the manifest's) and the shard asked for.
fn rows_and_shard(
    args: &SegmentArgs,
) -> std::result::Result<(Vec<PathBuf>, Option<Shard>), String> {
    let shard = match &args.shard {
        Some(spec) => {
            let index = std::env::var(manifest::INDEX_VAR).ok();
            Some(Shard::parse(spec, index.as_deref())?)
        }
        None => None,
    };
    let rows = match &args.manifest {
        Some(m) => manifest::read(m).map_err(|e| e.to_string())?,
        None => args.inputs.clone(),
    };
    if rows.is_empty() {
        return Err("the manifest lists no inputs".into());
    }
    Ok((rows, shard))
}

/// The jobs of the batch, or of this shard's rows (named over the whole manifest).
fn plan(args: &SegmentArgs, rows: Vec<PathBuf>, shard: Option<Shard>) -> Plan {
    let mut jobs = if args.manifest.is_some() {
        jobs::expand_rows(&rows)
    } else {
        jobs::expand(&rows)
    };
    if let Some(s) = shard {
        jobs.retain(|j| j.row.is_some_and(|r| s.owns(r)));
        let mine = (0..rows.len()).filter(|&r| s.owns(r)).count();
        eprintln!(
            "slicewise: shard {}/{}: {} of {}, {}",
            s.index,
            s.count,
            console::plural(mine, "row"),
            rows.len(),
            console::plural(jobs.len(), "job")
        );
    }
    log::info!(
        "{} from {}",
        console::plural(jobs.len(), "job"),
        console::plural(rows.len(), "input")
    );
    Plan { rows, jobs, shard }
}

/// Where the report goes: `--report`, or for a shard its own file next to it (a shard always
/// writes one: it is what `merge-reports` merges).
fn report_path(args: &SegmentArgs, shard: Option<Shard>) -> Option<PathBuf> {
    match (shard, &args.report) {
        (Some(s), Some(r)) => Some(s.report_path(r)),
        (Some(s), None) => Some(s.report_path(&args.out.join("report.json"))),
        (None, r) => r.clone(),
    }
}

fn shard_record(args: &SegmentArgs, plan: &Plan) -> Option<ShardRecord> {
    let (s, m) = (plan.shard?, args.manifest.as_ref()?);
    Some(ShardRecord {
        index: s.index,
        count: s.count,
        manifest: m.clone(),
        rows: plan.rows.len(),
    })
}

/// What makes the arguments unusable, found before anything is created or loaded.
fn usage_problem(
    args: &SegmentArgs,
    rows: &[PathBuf],
    shard: Option<Shard>,
    guard: &InputGuard,
) -> Option<String> {
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Some(format!("--threshold {t} is outside 0..1"));
        }
    }
    if let Some(p) = batch::out_problem(rows, &args.out) {
        return Some(p);
    }
    report_path(args, shard)
        .filter(|r| guard.is_input(r))
        .map(|r| format!("--report {} is an input", r.display()))
}

fn threads(args: &SegmentArgs) -> Option<usize> {
    args.threads.map(|t| t as usize)
}

/// The settings every job of the batch shares.
fn settings(args: &SegmentArgs) -> JobSettings {
    JobSettings {
        format: args.format.map(OutputFormat::from),
        batch_size: args.batch_size as usize,
        threshold: args.threshold,
        largest_component: args.largest_component,
        fill_holes: args.fill_holes,
        min_size: args.min_size,
        tta: args.tta,
        preview: args.preview,
        overwrite: args.overwrite,
        ..JobSettings::new(&args.out)
    }
}

/// Loads the model on the device, threads and runtime library asked for; returns it with its
/// load time in seconds.
fn load_model(args: &SegmentArgs) -> Result<(Model, f64)> {
    let runtime_path = args
        .ort_lib
        .clone()
        .or_else(|| std::env::var_os("SLICEWISE_ORT_LIB").map(PathBuf::from));
    let mut mopts = ModelOptions::default().device(args.device.into());
    if let Some(t) = threads(args) {
        mopts = mopts.threads(t);
    }
    if let Some(p) = runtime_path {
        mopts = mopts.runtime_path(p);
    }
    let t_load = Instant::now();
    let model = Model::open(&args.model, &mopts)?;
    let load_seconds = t_load.elapsed().as_secs_f64();
    log::info!(
        "model {} loaded in {load_seconds:.2} s on {}",
        args.model.display(),
        model.provider().used
    );
    Ok((model, load_seconds))
}

/// Runs the jobs in turn under the progress bars.
fn run_jobs(
    jobs: &[Job],
    model: &Model,
    settings: &JobSettings,
    guard: &InputGuard,
) -> Vec<JobRecord> {
    let bars = Bars::new(jobs.len());
    let mut records = Vec::with_capacity(jobs.len());
    for job in jobs {
        bars.start_job(&job.base);
        let rec = batch::run_job(job, model, settings, guard, &mut |p| {
            bars.slices(p.done, p.total);
            true
        });
        log_outcome(job, &rec, &bars);
        records.push(rec);
        bars.finish_job();
    }
    bars.finish();
    records
}

/// Prints a finished or skipped job's volumes and a failed job's error, above the bars.
fn log_outcome(job: &Job, rec: &JobRecord, bars: &Bars) {
    if let Some(line) = console::job_line(&job.base, rec) {
        bars.println(&line);
    }
    match rec.status {
        JobStatus::Failed => {
            // Errors name their file already; add the series for DICOM jobs.
            let series = job
                .series_uid
                .as_deref()
                .map(|u| format!(" (series {u})"))
                .unwrap_or_default();
            bars.println(&format!(
                "slicewise: error: {}{series}",
                rec.error.as_deref().unwrap_or("failed")
            ))
        }
        JobStatus::Skipped => {
            log::info!("{}: complete from an earlier run, skipped", job_name(job))
        }
        JobStatus::Ok => log::info!("{}: done in {:.2} s", job_name(job), rec.timings.total),
    }
}

fn usage(msg: &str) -> Result<ExitCode> {
    eprintln!("slicewise: error: {msg}");
    Ok(ExitCode::from(2))
}

fn job_name(job: &Job) -> String {
    match &job.series_uid {
        Some(uid) => format!("{} (series {uid})", job.input.display()),
        None => job.input.display().to_string(),
    }
}
