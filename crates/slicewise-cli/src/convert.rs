//! `slicewise convert`: any supported input to NIfTI or TIFF.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use slicewise::error::{Error, Result};
use slicewise::volume::{ReadOptions, Volume};

/// Arguments of `slicewise convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A DICOM file or folder, a NIfTI file, or a TIFF file or folder.
    pub input: PathBuf,
    /// Output file: `.nii`, `.nii.gz`, `.tif` or `.tiff`.
    pub output: PathBuf,
    /// For DICOM folders with several series: which SeriesInstanceUID to convert.
    #[arg(long)]
    pub series: Option<String>,
    /// Replace an existing output file.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `slicewise convert`.
pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    if args.output.exists() && !args.overwrite {
        return Err(Error::InvalidArgument(format!(
            "{}: output exists (use --overwrite to replace it)",
            args.output.display()
        )));
    }
    if same_file(&args.input, &args.output) {
        return Err(Error::InvalidArgument(format!(
            "{}: refusing to overwrite the input",
            args.output.display()
        )));
    }
    let mut opts = ReadOptions::default();
    if let Some(uid) = &args.series {
        opts = opts.series_uid(uid.clone());
    }
    let v = Volume::open_with(&args.input, &opts)?;
    slicewise::output::write_volume(&args.output, &v)?;
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
