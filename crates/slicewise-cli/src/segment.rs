//! `slicewise segment`: a batch of volumes through one model, loaded once per session.
//!
//! Arguments become jobs ([`jobs`]) and job settings; each job runs through
//! [`batch::run_job`] (read, segment, write mask, previews and the sidecar that marks it
//! complete, so an interrupted batch resumes where it stopped). With `--manifest` the inputs
//! are a manifest's rows, and `--shard I/N` runs only shard I's rows ([`manifest`]) and writes
//! the shard's own report, for `slicewise merge-reports` to merge. The jobs run through
//! [`pipeline`]: the next volume is read and the last mask written while a job is segmented, and
//! `--jobs K` segments K at once. A DICOM study runs only the series the model's card selects
//! (`slicewise.series_selection`); the others are listed, with the rule each failed, in the
//! report and on the console. `--series UID` runs exactly that series, `--all-series` every one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use crate::console;
use crate::progress::Bars;
use slicewise::error::{Error, Result};
use slicewise::infer::{Device, Model, ModelOptions, SegmentOptions};
use slicewise::output::OutputFormat;
use slicewise_batch::batch::{self, InputGuard, JobSettings};
use slicewise_batch::jobs::{self, Input, Job, SeriesChoice};
use slicewise_batch::manifest::{self, Shard};
use slicewise_batch::pipeline::{self, Event};
use slicewise_batch::report::{self, BatchReport, JobRecord, JobStatus, Parallelism, ShardRecord};

/// Mask file formats `segment` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// NIfTI-1, `.nii.gz` (default for NIfTI and DICOM input).
    Nifti,
    /// Multi-page TIFF, `.tif` (default for TIFF input).
    Tiff,
    /// DICOM SEG (BINARY) referencing the source series, `.dcm` (DICOM input only).
    DicomSeg,
    /// NRRD, uint8 labels in LPS with gzip encoding, `.nrrd`.
    Nrrd,
    /// DICOM RT Structure Set: contours per label and slice referencing the source series,
    /// `_rtstruct.dcm` (DICOM input only).
    Rtstruct,
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
            FormatArg::Nrrd => OutputFormat::Nrrd,
            FormatArg::Rtstruct => OutputFormat::Rtstruct,
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
    /// Inputs: files, DICOM folders (each series the model selects is a job), NIfTI, TIFF
    /// stacks, LGG-style patient folders, or folders of such folders. For a model taking C > 1
    /// channels, files named the nnU-Net way (CASE_0000.nii.gz … CASE_{C-1}.nii.gz; given, or in
    /// a folder given) are one job per case, named CASE.
    #[arg(required_unless_present_any = ["manifest", "channels"], conflicts_with = "manifest")]
    pub inputs: Vec<PathBuf>,
    /// One multi-channel case: its volumes (files or DICOM series folders), one per model
    /// input channel, in channel order, on one voxel grid, e.g. `--channels flair.nii.gz
    /// t1c.nii.gz` (after the other inputs, or end the list with `--`). The mask is named after
    /// the first file. For many cases, use nnU-Net's file naming or a manifest with
    /// input_0000, input_0001, … columns.
    #[arg(long, num_args = 2.., value_name = "VOLUME", action = clap::ArgAction::Set,
          conflicts_with = "manifest")]
    pub channels: Vec<PathBuf>,
    /// Read the inputs from a manifest: a CSV with an `input` column, or one path per line
    /// (relative paths are relative to the manifest's folder). A multi-channel case takes one
    /// row of a CSV with columns input_0000, input_0001, … (one file per channel) instead.
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
    /// Of the DICOM inputs, run exactly the series with this SeriesInstanceUID, whatever the
    /// model's series selection says (NIfTI and TIFF inputs run as usual).
    #[arg(long, value_name = "UID", conflicts_with = "all_series")]
    pub series: Option<String>,
    /// Run every DICOM series, also those the model's series selection skips.
    #[arg(long)]
    pub all_series: bool,
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
    /// Intra-op threads, in all (default: ONNX Runtime's choice; with several sessions, the
    /// machine's cores): each of the sessions gets an equal share, at least 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Jobs segmented at once. With any K, the next volume is read and the last mask written
    /// while a job is segmented; at most K + 2 volumes are held at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// ONNX Runtime sessions the jobs share (at most --jobs; default: one per job on CPU, one
    /// on a GPU). Each holds its own weights and memory arena; one session runs one job's
    /// batch at a time.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sessions: Option<u32>,
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
    /// Test-time augmentation: average over the flips the model's contract names (left-right by
    /// default; both mirrors for a model exported with `--tta-flips hv`).
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
    rows: Vec<Input>,
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
    let paths: Vec<PathBuf> = rows.iter().flatten().cloned().collect();
    let guard = InputGuard::new(&paths);
    if let Some(problem) = usage_problem(&args, &paths, shard, &guard) {
        return usage(&problem);
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io("create folder", &args.out, e))?;
    if let Err(e) = writable_outputs(&args, shard) {
        eprintln!("slicewise: error: {e}");
        return Ok(ExitCode::from(2));
    }
    // Planned for a one-channel model first: the plan sizes the sessions to load, and only a
    // model taking several channels groups files into cases (planned again once it is known).
    let mut plan = plan(&args, rows, shard, 1);
    // No more workers (and sessions) than jobs.
    let mut workers = (args.jobs as usize).min(plan.jobs.len()).max(1);
    let (mut models, load_seconds) = match load_models(&args, workers) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("slicewise: error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let channels = models[0].contract().source_channels.len();
    if channels > 1 {
        plan = self::plan(&args, plan.rows, shard, channels);
        workers = workers.min(plan.jobs.len()).max(1);
        models.truncate(workers);
    }
    announce(&plan);
    let model = &models[0];
    let rules = model.contract().series_selection.as_ref();
    if let Err(e) = jobs::select(&mut plan.jobs, rules, &series_choice(&args)) {
        return usage(&e.to_string());
    }
    // Once per run, not per job: the device is the batch's.
    if let Some(line) = console::device_line(model) {
        eprintln!("{line}");
    }

    let settings = settings(&args);
    let records = run_jobs(&plan.jobs, &models, &settings, &guard, workers);
    let mut summary = batch::tally(&records, started.elapsed().as_secs_f64());
    summary.parallel = Some(parallelism(&args, workers, models.len()));
    eprintln!("{}", console::summary_line(&summary));
    let failed = summary.failed > 0;
    if let Some(path) = report_path(&args, plan.shard) {
        let report = BatchReport {
            slicewise_version: env!("CARGO_PKG_VERSION").to_string(),
            model: batch::model_record(model, load_seconds),
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

/// Which DICOM series run: `--series`, `--all-series`, else the model's rules.
fn series_choice(args: &SegmentArgs) -> SeriesChoice {
    match (&args.series, args.all_series) {
        (Some(uid), _) => SeriesChoice::Uid(uid.clone()),
        (None, true) => SeriesChoice::All,
        (None, false) => SeriesChoice::ByRules,
    }
}

/// The input rows (the positional inputs and channel lists, or the manifest's) and the shard
/// asked for.
fn rows_and_shard(args: &SegmentArgs) -> std::result::Result<(Vec<Input>, Option<Shard>), String> {
    let shard = match &args.shard {
        Some(spec) => {
            let index = std::env::var(manifest::INDEX_VAR).ok();
            Some(Shard::parse(spec, index.as_deref())?)
        }
        None => None,
    };
    let rows = match &args.manifest {
        Some(m) => manifest::read_rows(m).map_err(|e| e.to_string())?,
        None => args
            .inputs
            .iter()
            .map(|p| vec![p.clone()])
            .chain((!args.channels.is_empty()).then(|| args.channels.clone()))
            .collect(),
    };
    if rows.is_empty() {
        return Err("the manifest lists no inputs".into());
    }
    Ok((rows, shard))
}

/// The jobs of the batch, or of this shard's rows (named over the whole manifest), for a model
/// taking `channels` input channels.
fn plan(args: &SegmentArgs, rows: Vec<Input>, shard: Option<Shard>, channels: usize) -> Plan {
    let mut jobs = if args.manifest.is_some() {
        jobs::expand_rows_for(&rows, channels)
    } else {
        jobs::expand_for(&rows, channels)
    };
    if let Some(s) = shard {
        jobs.retain(|j| j.row.is_some_and(|r| s.owns(r)));
    }
    Plan { rows, jobs, shard }
}

/// Says what the batch holds: the shard's rows and jobs, and (logged) the jobs of the inputs.
fn announce(plan: &Plan) {
    let (rows, jobs) = (&plan.rows, &plan.jobs);
    if let Some(s) = plan.shard {
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
}

/// Fails before any work when the output folder, or the report's folder, takes no files: a
/// read-only `--out` is reported at once, not once per job after its inference.
fn writable_outputs(args: &SegmentArgs, shard: Option<Shard>) -> Result<()> {
    slicewise::output::check_writable_folder(&args.out)?;
    if let Some(dir) = report_path(args, shard).as_deref().and_then(Path::parent) {
        if !dir.as_os_str().is_empty() && dir.is_dir() {
            slicewise::output::check_writable_folder(dir)?;
        }
    }
    Ok(())
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

/// Intra-op threads of each of `sessions` sessions: `--threads` (default: the machine's cores)
/// shared out, at least 1 each; with one session, `--threads` or ONNX Runtime's default. The
/// sessions run at once, so more would only make them fight over the cores.
fn session_threads(args: &SegmentArgs, sessions: usize) -> Option<usize> {
    if sessions <= 1 {
        return threads(args);
    }
    let total = threads(args).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    Some((total / sessions).max(1))
}

/// How the batch ran `workers` jobs at once on `sessions` sessions, for the report.
fn parallelism(args: &SegmentArgs, workers: usize, sessions: usize) -> Parallelism {
    Parallelism {
        jobs: workers,
        sessions,
        threads_per_session: session_threads(args, sessions),
        volumes_in_flight: pipeline::volumes_in_flight(workers),
    }
}

/// The settings every job of the batch shares.
fn settings(args: &SegmentArgs) -> JobSettings {
    JobSettings {
        format: args.format.map(OutputFormat::from),
        options: SegmentOptions::default()
            .batch_size(args.batch_size as usize)
            .threshold(args.threshold)
            .largest_component(args.largest_component)
            .fill_holes(args.fill_holes)
            .min_size(args.min_size)
            .tta(args.tta),
        preview: args.preview,
        overwrite: args.overwrite,
        ..JobSettings::new(&args.out)
    }
}

/// Loads the model on the device, threads and runtime library asked for, once per session of
/// `jobs` concurrent jobs; returns the sessions' models with the load time of them all in seconds.
fn load_models(args: &SegmentArgs, jobs: usize) -> Result<(Vec<Model>, f64)> {
    let asked = args.sessions.map(|s| (s as usize).min(jobs));
    let t_load = Instant::now();
    let first = load_model(args, session_threads(args, asked.unwrap_or(jobs)))?;
    // A GPU runs one batch at a time anyway; more sessions would only take its memory.
    let sessions = asked.unwrap_or(if on_cpu(&first) { jobs } else { 1 });
    let mut models = vec![first];
    while models.len() < sessions {
        models.push(load_model(args, session_threads(args, sessions))?);
    }
    let load_seconds = t_load.elapsed().as_secs_f64();
    log::info!(
        "model {} loaded in {load_seconds:.2} s on {} ({})",
        args.model.display(),
        models[0].provider().used,
        console::plural(sessions, "session")
    );
    Ok((models, load_seconds))
}

/// Whether ONNX Runtime runs `model` on the CPU alone.
fn on_cpu(model: &Model) -> bool {
    model.provider().used == "CPUExecutionProvider"
}

/// Loads the model once, with `threads` intra-op threads.
fn load_model(args: &SegmentArgs, threads: Option<usize>) -> Result<Model> {
    let runtime_path = args
        .ort_lib
        .clone()
        .or_else(|| std::env::var_os("SLICEWISE_ORT_LIB").map(PathBuf::from));
    let mut mopts = ModelOptions::default().device(args.device.into());
    if let Some(t) = threads {
        mopts = mopts.threads(t);
    }
    if let Some(p) = runtime_path {
        mopts = mopts.runtime_path(p);
    }
    Model::open(&args.model, &mopts)
}

/// Runs the jobs through the pipeline, `workers` at once, under the progress bars.
fn run_jobs(
    jobs: &[Job],
    models: &[Model],
    settings: &JobSettings,
    guard: &InputGuard,
    workers: usize,
) -> Vec<JobRecord> {
    let bars = Bars::new(jobs.len(), workers);
    let records = pipeline::run(jobs, models, settings, guard, workers, &|e| match e {
        Event::Started { worker, job } => bars.start_job(worker, &job.base),
        Event::Slices {
            worker,
            done,
            total,
        } => bars.slices(worker, done, total),
        Event::Finished { job, record } => {
            log_outcome(job, record, &bars);
            bars.finish_job();
        }
    });
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
        JobStatus::NotSelected => {}
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
