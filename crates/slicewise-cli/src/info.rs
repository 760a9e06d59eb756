//! `slicewise info`: what a volume holds.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use slicewise::error::{Error, Result};
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
    if args.json {
        return print(&json_text(&volume_json(&v)));
    }
    let mut t = String::new();
    // Writing to a String cannot fail.
    let _ = volume_text(&mut t, &v);
    print(&t)
}

/// The JSON of `info` on a volume.
fn volume_json(v: &Volume) -> serde_json::Value {
    let [x, y, z] = v.dims_xyz();
    let g = &v.geometry;
    let m = &v.meta;
    json!({
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
    })
}

/// The text of `info` on a volume.
fn volume_text(t: &mut String, v: &Volume) -> std::fmt::Result {
    let [x, y, z] = v.dims_xyz();
    let g = &v.geometry;
    let m = &v.meta;
    writeln!(t, "source:       {}", m.source.display())?;
    writeln!(t, "format:       {:?}", m.format)?;
    writeln!(t, "dims (x,y,z): {x} × {y} × {z}")?;
    writeln!(t, "channels:     {} {:?}", v.channels(), m.channel_names)?;
    writeln!(t, "dtype:        {:?}", m.original_dtype)?;
    writeln!(t, "spacing (mm): {:?}", g.spacing)?;
    writeln!(t, "origin (LPS): {:?}", g.origin)?;
    writeln!(
        t,
        "direction:    {:?} ({})",
        g.direction,
        g.orientation_code()
    )?;
    if let Some(mo) = &m.modality {
        writeln!(t, "modality:     {mo}")?;
    }
    if let Some(uid) = &m.series_uid {
        writeln!(t, "series UID:   {uid}")?;
    }
    for w in &m.warnings {
        writeln!(t, "warning:      {w}")?;
    }
    Ok(())
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
        return print(&json_text(&value));
    }
    let mut t = String::new();
    // Writing to a String cannot fail.
    let _ = model_text(&mut t, &model);
    print(&t)
}

/// The text of `info` on a model.
fn model_text(t: &mut String, model: &slicewise::infer::Model) -> std::fmt::Result {
    let c = model.contract();
    let p = model.provider();
    writeln!(t, "model:        {}", model.path().display())?;
    writeln!(t, "name:         {} {}", c.name, c.version)?;
    writeln!(
        t,
        "input:        {} ({} × {}, channels from source {:?})",
        c.input_name, c.height, c.width, c.source_channels
    )?;
    writeln!(
        t,
        "output:       {} ({:?}, threshold {})",
        c.output_name, c.output, c.threshold
    )?;
    match &c.tiled {
        Some(tiled) => {
            let spec = serde_json::to_string(tiled).unwrap_or_default();
            writeln!(t, "family:       tiled {spec}")?;
        }
        None => {
            writeln!(t, "normalise:    {:?}", c.normalization)?;
            writeln!(t, "keep aspect:  {}", c.keep_aspect)?;
            if c.context_slices > 0 {
                let k = c.context_slices;
                writeln!(
                    t,
                    "context:      2.5D, slices z−{k}…z+{k} of each channel ({} model channels)",
                    c.input_channels()
                )?;
            }
        }
    }
    if !c.channel_names.is_empty() {
        writeln!(t, "channels:     {}", c.channel_names.join(", "))?;
    }
    if let Some(p) = &c.provenance {
        writeln!(t, "provenance:   {p}")?;
    }
    for l in &c.labels {
        writeln!(t, "label {:>3}:    {} {:?}", l.value, l.name, l.color)?;
    }
    if let Some(tr) = &c.training_data {
        writeln!(t, "training:     {tr}")?;
    }
    writeln!(t, "provider:     {} (asked: {:?})", p.used, p.requested)?;
    for n in &p.notes {
        writeln!(t, "note:         {n}")?;
    }
    Ok(())
}

/// Pretty JSON with a final newline.
fn json_text(value: &serde_json::Value) -> String {
    let mut t = serde_json::to_string_pretty(value).unwrap_or_default();
    t.push('\n');
    t
}

/// Writes `text` to standard output. A reader that stopped reading (`slicewise info X | head`)
/// is not an error: what it wanted has been written, so exit 0 quietly (`println!` panicked
/// here). Any other write error, e.g. a full disk, is reported.
fn print(text: &str) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Error::io("write", "standard output", e)),
    }
}
