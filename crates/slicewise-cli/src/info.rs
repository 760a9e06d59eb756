//! `slicewise info`: what a volume holds.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use slicewise::error::Result;
use slicewise::volume::{ReadOptions, Volume};

/// Arguments of `slicewise info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A DICOM file or folder, a NIfTI file, a TIFF file or folder, or an `.onnx` model.
    pub input: PathBuf,
    /// For DICOM folders with several series: which SeriesInstanceUID to show.
    #[arg(long)]
    pub series: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `slicewise info`.
pub fn run(args: InfoArgs) -> Result<ExitCode> {
    let is_onnx = args
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if is_onnx {
        return model_info(&args);
    }
    let mut opts = ReadOptions::default();
    if let Some(uid) = &args.series {
        opts = opts.series_uid(uid.clone());
    }
    let v = Volume::open_with(&args.input, &opts)?;
    let [x, y, z] = v.dims_xyz();
    let g = &v.geometry;
    let m = &v.meta;
    let value = json!({
        "source": m.source,
        "format": m.format,
        "dims": [x, y, z],
        "channels": v.channels(),
        "channel_names": m.channel_names,
        "dtype": m.original_dtype,
        "spacing": g.spacing,
        "origin_lps": g.origin,
        "direction_lps": g.direction,
        "orientation": g.orientation_code(),
        "modality": m.modality,
        "series_uid": m.series_uid,
        "description": m.description,
        "slices": z,
        "acquisition_axis": m.acquisition_axis,
        "warnings": m.warnings,
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        println!("source:       {}", m.source.display());
        println!("format:       {:?}", m.format);
        println!("dims (x,y,z): {x} × {y} × {z}");
        println!("channels:     {} {:?}", v.channels(), m.channel_names);
        println!("dtype:        {:?}", m.original_dtype);
        println!("spacing (mm): {:?}", g.spacing);
        println!("origin (LPS): {:?}", g.origin);
        println!("direction:    {:?} ({})", g.direction, g.orientation_code());
        if let Some(mo) = &m.modality {
            println!("modality:     {mo}");
        }
        if let Some(uid) = &m.series_uid {
            println!("series UID:   {uid}");
        }
        for w in &m.warnings {
            println!("warning:      {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `info` of an `.onnx` model: its contract and the provider it would run on.
fn model_info(args: &InfoArgs) -> Result<ExitCode> {
    use slicewise::infer::{Model, ModelOptions};
    let mut opts = ModelOptions::default();
    if let Some(p) = std::env::var_os("SLICEWISE_ORT_LIB") {
        opts = opts.runtime_path(std::path::PathBuf::from(p));
    }
    let model = Model::open(&args.input, &opts)?;
    let value = json!({
        "model": model.path(),
        "contract": model.contract(),
        "provider": model.provider(),
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let c = model.contract();
        println!("model:        {}", model.path().display());
        println!("name:         {} {}", c.name, c.version);
        println!(
            "input:        {} ({} × {}, channels from source {:?})",
            c.input_name, c.height, c.width, c.source_channels
        );
        println!(
            "output:       {} ({:?}, threshold {})",
            c.output_name, c.output, c.threshold
        );
        println!("normalise:    {:?}", c.normalization);
        println!("keep aspect:  {}", c.keep_aspect);
        for l in &c.labels {
            println!("label {:>3}:    {} {:?}", l.value, l.name, l.color);
        }
        if let Some(t) = &c.training_data {
            println!("training:     {t}");
        }
        println!(
            "provider:     {} (asked: {:?})",
            model.provider().used,
            model.provider().requested
        );
        for n in &model.provider().notes {
            println!("note:         {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
