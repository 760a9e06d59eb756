//! The `slicewise` subcommands. Each lives in its own file; this one parses arguments and maps
//! results to exit codes (0 success, 1 a job failed, 2 usage error).

mod console;
mod convert;
mod evaluate;
mod info;
mod masks;
mod progress;
mod segment;
mod serve;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use slicewise_batch::merge;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "slicewise",
    version,
    about = "Slice-by-slice ONNX segmentation of DICOM, NIfTI and TIFF volumes"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a volume's dimensions, geometry and source (or a model's contract).
    Info(info::InfoArgs),
    /// Convert a volume to NIfTI (.nii/.nii.gz) or TIFF (.tif).
    Convert(convert::ConvertArgs),
    /// Segment volumes with an ONNX model: a batch of inputs, one model load, resumable.
    Segment(segment::SegmentArgs),
    /// Compare predicted masks with ground truth: Dice, IoU, precision, recall, HD95, ASSD.
    Evaluate(evaluate::EvaluateArgs),
    /// Merge the shard reports of a `segment --manifest M --shard I/N` batch into one report.
    MergeReports(MergeArgs),
    /// Serve the models over MONAI Label's REST API (for OHIF and 3D Slicer).
    Serve(serve::ServeArgs),
    /// Follow a PACS: segment each new series a model selects and store the result back
    /// (DICOM SEG), exactly once per series and model.
    Watch(watch::WatchArgs),
}

fn main() -> ExitCode {
    // Every panic is caught and reported as an error naming its place (a job's failure in
    // `segment`): no Rust report before the clean error on stderr.
    slicewise::error::quiet_panics();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .try_init();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Segment(a) => segment::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::MergeReports(a) => Ok(merge_reports(a)),
        Command::Serve(a) => serve::run(a),
        Command::Watch(a) => watch::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slicewise: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Arguments of `slicewise merge-reports`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard reports (`report.shard-I-of-N.json`), one per shard, in any order.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The merged report (JSON, and CSV next to it).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `slicewise merge-reports`: exit 0 when every job of the batch succeeded or was complete,
/// 1 when one failed (as `segment` would have), 2 when the reports are not one whole batch.
fn merge_reports(a: MergeArgs) -> ExitCode {
    let out = slicewise_batch::batch::canonical_lenient(&a.out);
    if a.reports
        .iter()
        .any(|r| slicewise_batch::batch::canonical_lenient(r) == out)
    {
        eprintln!(
            "slicewise: error: --out {} is one of the reports",
            a.out.display()
        );
        return ExitCode::from(2);
    }
    match merge::merge_to(&a.reports, &a.out) {
        Ok(merged) => {
            eprintln!("{}", console::summary_line(&merged.summary));
            if merged.summary.failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("slicewise: error: {e}");
            ExitCode::from(2)
        }
    }
}
