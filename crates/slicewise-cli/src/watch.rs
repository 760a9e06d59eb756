//! `slicewise watch`: the PACS watcher (crate `slicewise-watch`). This file only turns
//! arguments into [`WatchOptions`] and the outcome into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::segment::DeviceArg;
use slicewise::error::Result;
use slicewise::infer::{ModelOptions, SegmentOptions};
use slicewise::output::OutputFormat;
use slicewise_watch::{WatchError, WatchOptions};

/// Result formats a PACS can store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoredFormat {
    /// DICOM Segmentation (one object per series and model).
    Seg,
    /// DICOM RTSTRUCT: one ROI per label, closed planar contours (one object per series and
    /// model).
    Rtstruct,
}

/// Arguments of `slicewise watch`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct WatchArgs {
    /// DICOMweb root of the PACS, e.g. http://127.0.0.1:8042/dicom-web (Orthanc). Basic auth:
    /// http://USER:PASSWORD@host/... (never logged).
    #[arg(long, value_name = "URL")]
    pub pacs: String,
    /// Read a bearer token for the PACS from FILE (surrounding whitespace ignored; also
    /// $SLICEWISE_PACS_TOKEN). Never logged.
    #[arg(long, value_name = "FILE")]
    pub pacs_token_file: Option<PathBuf>,
    /// The PACS is Orthanc: follow its changes feed (StableSeries) at the parent of the DICOMweb
    /// root rather than polling QIDO-RS.
    #[arg(long)]
    pub orthanc: bool,
    /// A model (ONNX with its card) to run on each series it selects (repeatable).
    #[arg(long = "model", value_name = "M.onnx", required = true)]
    pub models: Vec<PathBuf>,
    /// State folder: the journal that makes each (series, model) done exactly once, across
    /// restarts and crashes, and audit.jsonl. One watcher per folder.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Result format, stored back with STOW-RS.
    #[arg(long, value_enum, default_value_t = StoredFormat::Seg)]
    pub format: StoredFormat,
    /// Seconds between two looks at the PACS once caught up.
    #[arg(long, value_name = "N", default_value_t = 10.0)]
    pub poll_seconds: f64,
    /// Without --orthanc: poll only studies dated within the last N days (QIDO-RS
    /// StudyDate=FROM-), rather than every series of the PACS.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub study_days: Option<u32>,
    /// Process what the PACS holds now, then exit (for tests and cron); exit 1 if a series failed.
    #[arg(long)]
    pub once: bool,
    /// On the first start (empty state folder), also segment the series already in the PACS.
    #[arg(long)]
    pub backfill: bool,
    /// Series segmented at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Series that may wait for a worker (the feed is not read further while full).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub queue: u32,
    /// Longest wait, in seconds, between two tries while the PACS is away (waits double from 1 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub max_backoff: f64,
    /// Largest series fetched, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_series_mb: u32,
    /// Execution provider.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Intra-op threads per model (default: ONNX Runtime's choice).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Slices per inference batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// ONNX Runtime shared library (default: $SLICEWISE_ORT_LIB, then the engine's search).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

const AFTER_HELP: &str = "\
Each new series is offered to every model; the audit (stdout and STATE/audit.jsonl, one JSON \
line per event) says whether the model selected it or why not: image series only (not SEG, \
SR, RTSTRUCT, ...), then, on the fetched headers, the model card's series selection rules \
(those `slicewise segment` applies to a study).

A selected series is fetched with WADO-RS into STATE/tmp, segmented as `slicewise segment` \
would, and its result stored with STOW-RS under UIDs derived from (series, model name and \
version, format): one result per (series, model), never two, even across crashes and kills \
(a series claimed but unfinished is redone at the next start; a result already in the PACS \
is not stored again). While the PACS is away the watcher waits, retrying with backoff.

Exit status: 0 on Ctrl-C/SIGTERM or when --once finished; 1 when --once saw a series fail or \
the watcher had to stop; 2 when it cannot start.";

/// Runs the watcher.
pub fn run(args: WatchArgs) -> Result<ExitCode> {
    let once = args.once;
    let opts = match options(args) {
        Ok(o) => o,
        Err(problem) => return Ok(fail(&problem, 2)),
    };
    match slicewise_watch::run(opts) {
        Ok(s) => {
            eprintln!(
                "slicewise watch: {} stored, {} skipped, {} failed",
                s.stored, s.skipped, s.failed
            );
            Ok(if once && s.failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e @ WatchError::Setup(_)) => Ok(fail(&e.to_string(), 2)),
        Err(e) => Ok(fail(&e.to_string(), 1)),
    }
}

fn fail(problem: &str, code: u8) -> ExitCode {
    eprintln!("slicewise watch: error: {problem}");
    ExitCode::from(code)
}

fn seconds(name: &str, s: f64) -> std::result::Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{name} {s}: give a positive number of seconds"))
}

/// The watcher options the arguments describe.
fn options(args: WatchArgs) -> std::result::Result<WatchOptions, String> {
    let mut o = WatchOptions::new(args.pacs, args.models, args.state);
    o.token = token(args.pacs_token_file)?;
    o.orthanc = args.orthanc;
    o.format = match args.format {
        StoredFormat::Seg => OutputFormat::DicomSeg,
        StoredFormat::Rtstruct => OutputFormat::Rtstruct,
    };
    o.poll = seconds("--poll-seconds", args.poll_seconds)?;
    o.max_backoff = seconds("--max-backoff", args.max_backoff)?;
    o.study_days = args.study_days;
    o.once = args.once;
    o.backfill = args.backfill;
    o.workers = args.workers as usize;
    o.queue = args.queue as usize;
    o.max_series_bytes = args.max_series_mb as usize * (1 << 20);
    let mut m = ModelOptions::default().device(args.device.into());
    if let Some(t) = args.threads {
        m = m.threads(t as usize);
    }
    let ort = args
        .ort_lib
        .or_else(|| std::env::var_os("SLICEWISE_ORT_LIB").map(PathBuf::from));
    if let Some(p) = ort {
        m = m.runtime_path(p);
    }
    o.model = m;
    o.segment = SegmentOptions::default().batch_size(args.batch_size as usize);
    Ok(o)
}

/// The PACS bearer token: from --pacs-token-file, else $SLICEWISE_PACS_TOKEN.
fn token(file: Option<PathBuf>) -> std::result::Result<Option<String>, String> {
    let t = match file {
        Some(f) => std::fs::read_to_string(&f)
            .map_err(|e| format!("--pacs-token-file {}: {e}", f.display()))?,
        None => match std::env::var("SLICEWISE_PACS_TOKEN") {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err("the PACS token is empty".into());
    }
    Ok(Some(t))
}
