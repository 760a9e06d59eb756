//! `slicewise segment`: a batch of volumes through one loaded model.
//!
//! Every job writes its mask, then its previews, then a sidecar `<base>.slicewise.json` (its
//! [`JobRecord`], with output sizes) — each atomically. The sidecar is the completion marker: a
//! rerun skips a job whose sidecar says `ok` for the same input and whose outputs still exist
//! with the recorded sizes, so an interrupted batch resumes where it stopped. `--overwrite`
//! removes the sidecar before redoing a job, so a failure never leaves a stale "complete" marker.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::console;
use super::jobs::{self, Job};
use super::progress::Bars;
use super::report::{self, BatchReport, JobRecord, JobStatus, ModelRecord, OutputFile, Summary};
use slicewise::error::{Error, Result};
use slicewise::infer::{self, Device, Model, ModelOptions, SegmentOptions};
use slicewise::output::OutputFormat;
use slicewise::volume::{InputKind, ReadOptions, Volume};

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
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
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

/// Previews per job.
const PREVIEWS: usize = 3;

/// Runs `slicewise segment`: exit 0 when every job succeeded or was complete, 1 when a job
/// failed, 2 when the batch could not start (usage, output folder, model).
pub fn run(args: SegmentArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let input_files = input_files(&args);
    if let Some(problem) = usage_problem(&args, &input_files) {
        return usage(&problem);
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io("create folder", &args.out, e))?;

    let jobs = jobs::expand(&args.inputs);
    log::info!(
        "{} from {}",
        console::plural(jobs.len(), "job"),
        console::plural(args.inputs.len(), "input")
    );
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

    let records = run_jobs(&jobs, &model, &args, &input_files);
    let summary = summarize(&records, started);
    let failed = summary.failed > 0;
    if let Some(path) = &args.report {
        write_report(path, &args, &model, load_seconds, records, summary)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The input files, canonical, so that no output can overwrite one.
fn input_files(args: &SegmentArgs) -> HashSet<PathBuf> {
    args.inputs
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

/// What makes the arguments unusable, found before anything is created or loaded.
fn usage_problem(args: &SegmentArgs, input_files: &HashSet<PathBuf>) -> Option<String> {
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Some(format!("--threshold {t} is outside 0..1"));
        }
    }
    // Outputs inside an input folder would be taken for inputs by the next run.
    let input_dirs: Vec<PathBuf> = args
        .inputs
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let out_canon = canonical_lenient(&args.out);
    if let Some(d) = input_dirs.iter().find(|d| out_canon.starts_with(d)) {
        return Some(format!(
            "--out {} lies inside the input folder {}; choose an output folder outside the inputs",
            args.out.display(),
            d.display()
        ));
    }
    if let Some(r) = &args.report {
        if input_files.contains(&canonical_lenient(r)) {
            return Some(format!("--report {} is an input", r.display()));
        }
    }
    None
}

/// Loads the model on the device, threads and runtime library asked for; returns it with its
/// load time in seconds.
fn load_model(args: &SegmentArgs) -> Result<(Model, f64)> {
    let runtime_path = args
        .ort_lib
        .clone()
        .or_else(|| std::env::var_os("SLICEWISE_ORT_LIB").map(PathBuf::from));
    let mut mopts = ModelOptions::default().device(args.device.into());
    if let Some(t) = args.threads {
        mopts = mopts.threads(t as usize);
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

/// Runs the jobs in turn under the progress bars. A panic in a job becomes that job's failure,
/// so one bad input cannot end the batch.
fn run_jobs(
    jobs: &[Job],
    model: &Model,
    args: &SegmentArgs,
    input_files: &HashSet<PathBuf>,
) -> Vec<JobRecord> {
    let bars = Bars::new(jobs.len());
    let mut records = Vec::with_capacity(jobs.len());
    for job in jobs {
        bars.start_job(&job.base);
        let rec = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(job, model, args, input_files, &bars)
        }))
        .unwrap_or_else(|p| {
            let mut r = JobRecord::new(&job.input, job.series_uid.clone());
            r.error = Some(format!("internal error (panic): {}", panic_text(&p)));
            r
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

/// Counts the jobs by outcome and prints the one-line summary.
fn summarize(records: &[JobRecord], started: Instant) -> Summary {
    let mut summary = Summary {
        jobs: records.len(),
        seconds: started.elapsed().as_secs_f64(),
        ..Summary::default()
    };
    for r in records {
        match r.status {
            JobStatus::Ok => summary.ok += 1,
            JobStatus::Skipped => summary.skipped += 1,
            JobStatus::Failed => summary.failed += 1,
        }
    }
    eprintln!("{}", console::summary_line(&summary));
    summary
}

/// Writes the batch report at `path` (JSON, and CSV next to it).
fn write_report(
    path: &Path,
    args: &SegmentArgs,
    model: &Model,
    load_seconds: f64,
    records: Vec<JobRecord>,
    summary: Summary,
) -> Result<()> {
    let c = model.contract();
    let report = BatchReport {
        slicewise_version: env!("CARGO_PKG_VERSION").to_string(),
        model: ModelRecord {
            path: args.model.clone(),
            name: c.name.clone(),
            version: c.version.clone(),
            provider: model.provider().clone(),
            load_seconds,
        },
        options: options_json(args),
        jobs: records,
        summary,
    };
    report::write(path, &report)?;
    Ok(())
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

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

/// The canonical path of `p`, or of its nearest existing ancestor joined with the rest.
fn canonical_lenient(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut tail = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for t in tail.iter().rev() {
                out.push(t);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

fn options_json(a: &SegmentArgs) -> serde_json::Value {
    json!({
        "format": a.format.map(|f| format!("{f:?}").to_lowercase()),
        "device": format!("{:?}", a.device).to_lowercase(),
        "batch_size": a.batch_size,
        "threads": a.threads,
        "threshold": a.threshold,
        "largest_component": a.largest_component,
        "fill_holes": a.fill_holes,
        "min_size": a.min_size,
        "tta": a.tta,
        "preview": a.preview,
        "overwrite": a.overwrite,
    })
}

/// Output paths of a job.
struct Outputs {
    mask: PathBuf,
    sidecar: PathBuf,
}

fn outputs(job: &Job, args: &SegmentArgs) -> Outputs {
    let fmt = match args.format {
        Some(FormatArg::Tiff) => OutputFormat::Tiff,
        Some(FormatArg::DicomSeg) => OutputFormat::DicomSeg,
        Some(FormatArg::Nifti) => OutputFormat::Nifti,
        None if job.kind == Some(InputKind::Tiff) => OutputFormat::Tiff,
        None => OutputFormat::Nifti,
    };
    let ext = match fmt {
        OutputFormat::Tiff => "tif",
        OutputFormat::Nifti => "nii.gz",
        OutputFormat::DicomSeg => "dcm",
    };
    Outputs {
        mask: args.out.join(format!("{}_mask.{ext}", job.base)),
        sidecar: args.out.join(format!("{}.slicewise.json", job.base)),
    }
}

/// The earlier record when the job's outputs are complete.
fn complete(job: &Job, sidecar: &Path) -> Option<JobRecord> {
    let bytes = std::fs::read(sidecar).ok()?;
    let rec: JobRecord = serde_json::from_slice(&bytes).ok()?;
    let same_input = rec.input.canonicalize().ok()? == job.input.canonicalize().ok()?;
    if rec.status != JobStatus::Ok || !same_input || rec.series_uid != job.series_uid {
        return None;
    }
    let files_ok = rec.mask.iter().chain(rec.previews.iter()).all(|f| {
        std::fs::metadata(&f.path)
            .map(|m| m.is_file() && m.len() == f.bytes)
            .unwrap_or(false)
    });
    (files_ok && rec.mask.is_some()).then_some(rec)
}

fn output_file(path: &Path) -> Result<OutputFile> {
    let m = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
    Ok(OutputFile {
        path: path.to_path_buf(),
        bytes: m.len(),
    })
}

fn run_job(
    job: &Job,
    model: &Model,
    args: &SegmentArgs,
    input_files: &HashSet<PathBuf>,
    bars: &Bars,
) -> JobRecord {
    let mut rec = JobRecord::new(&job.input, job.series_uid.clone());
    if let Some(e) = &job.error {
        rec.error = Some(e.clone());
        return rec;
    }
    let out = outputs(job, args);
    if !args.overwrite {
        if let Some(mut earlier) = complete(job, &out.sidecar) {
            earlier.status = JobStatus::Skipped;
            return earlier;
        }
    }
    let t0 = Instant::now();
    match segment_job(job, model, args, input_files, bars, &out, &mut rec) {
        Ok(()) => rec.status = JobStatus::Ok,
        Err(e) => {
            rec.status = JobStatus::Failed;
            rec.error = Some(e.to_string());
        }
    }
    rec.timings.total = t0.elapsed().as_secs_f64();
    if rec.status == JobStatus::Ok {
        // The completion marker, written last.
        let r = slicewise::output::atomic_write(&out.sidecar, |w| {
            serde_json::to_writer_pretty(w, &rec)
                .map_err(|e| Error::io("write", &out.sidecar, std::io::Error::other(e)))
        });
        if let Err(e) = r {
            rec.status = JobStatus::Failed;
            rec.error = Some(e.to_string());
        }
    }
    rec
}

fn segment_job(
    job: &Job,
    model: &Model,
    args: &SegmentArgs,
    input_files: &HashSet<PathBuf>,
    bars: &Bars,
    out: &Outputs,
    rec: &mut JobRecord,
) -> Result<()> {
    for p in [&out.mask, &out.sidecar] {
        if input_files.contains(&canonical_lenient(p)) {
            return Err(Error::InvalidArgument(format!(
                "{}: output would overwrite an input",
                p.display()
            )));
        }
    }
    // A stale marker must not survive a redo that fails.
    match std::fs::remove_file(&out.sidecar) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", &out.sidecar, e)),
    }

    let t = Instant::now();
    let mut ropts = ReadOptions::default();
    if let Some(uid) = &job.series_uid {
        ropts = ropts.series_uid(uid.clone());
    }
    let volume = Volume::open_with(&job.input, &ropts)?;
    rec.timings.read = t.elapsed().as_secs_f64();
    rec.dims = Some(volume.dims_xyz());
    rec.spacing = Some(volume.geometry.spacing);
    rec.warnings.extend(volume.meta.warnings.iter().cloned());

    let sopts = SegmentOptions {
        batch_size: args.batch_size as usize,
        threshold: args.threshold,
        largest_component: args.largest_component,
        fill_holes: args.fill_holes,
        min_component_voxels: args.min_size,
        tta: args.tta,
        ..SegmentOptions::default()
    };
    let seg = infer::segment(model, &volume, &sopts, &mut |p| {
        bars.slices(p.done, p.total);
        true
    })?;
    rec.provider = Some(seg.provider.clone());
    rec.timings.preprocess = seg.timings.preprocess;
    rec.timings.inference = seg.timings.inference;
    rec.timings.postprocess = seg.timings.postprocess;
    rec.warnings.extend(seg.warnings.iter().cloned());
    rec.labels = seg.mask.stats();

    let t = Instant::now();
    if out.mask.extension().is_some_and(|e| e == "dcm") {
        let c = model.contract();
        let opts = slicewise::output::dicom_seg::DicomSegOptions::default()
            .with_model(&c.name, &c.version);
        slicewise::output::dicom_seg::write_mask_with(&out.mask, &seg.mask, &opts)?;
    } else {
        slicewise::output::write_mask(&out.mask, &seg.mask)?;
    }
    rec.mask = Some(output_file(&out.mask)?);
    if args.preview {
        let channel = model
            .contract()
            .source_channels
            .first()
            .copied()
            .unwrap_or(0);
        for z in crate::preview::top_slices(&seg.mask, PREVIEWS) {
            let p = args.out.join(format!("{}_preview_z{z:04}.png", job.base));
            crate::preview::write(&p, &volume, &seg.mask, z, channel)?;
            rec.previews.push(output_file(&p)?);
        }
    }
    rec.timings.write = t.elapsed().as_secs_f64();
    Ok(())
}
