//! The `slicewise` subcommands. Each lives in its own file; this one parses arguments and maps
//! results to exit codes (0 success, 1 a job failed, 2 usage error).

mod console;
mod convert;
mod evaluate;
mod info;
mod jobs;
mod masks;
mod preview;
mod progress;
mod report;
mod segment;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Serve the models over MONAI Label's REST API (for OHIF and 3D Slicer).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
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
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slicewise: error: {e}");
            ExitCode::from(1)
        }
    }
}
