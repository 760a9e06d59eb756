//! Segmentation with ONNX models through ONNX Runtime.
//!
//! The public API below is the contract the C ABI and the CLI build on: items may be added, but
//! names and signatures stay. Typical use:
//!
//! ```no_run
//! use slicewise::infer::{Model, ModelOptions, SegmentOptions, segment};
//! use slicewise::Volume;
//! let model = Model::open("models/lgg-flair.onnx", &ModelOptions::default())?;
//! let volume = Volume::open("patient.nii.gz")?;
//! let seg = segment(&model, &volume, &SegmentOptions::default(), &mut |_p| true)?;
//! slicewise::output::write_mask("mask.nii.gz".as_ref(), &seg.mask)?;
//! # Ok::<(), slicewise::Error>(())
//! ```

pub mod contract;
pub mod crop;
pub mod model;
mod options;
pub mod postprocess;
pub mod preprocess;
mod provider;
pub mod resample;
mod runtime;
mod segment;
mod tiled;

use std::path::{Path, PathBuf};

use ndarray::Array4;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;

pub use contract::{ModelContract, Normalization, OutputKind, TiledSpec, TtaFlips};
pub use model::Model;
pub use options::{from_json_named, CancelToken, SegmentOptions};

/// Facts about the loaded ONNX Runtime library.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// The shared library that was loaded.
    pub path: PathBuf,
    /// Its version, e.g. "1.31.1".
    pub version: String,
}

/// Loads ONNX Runtime once per process. `path` is an explicit library path; `None` searches
/// `$ORT_DYLIB_PATH`, then next to our own shared library, then the project-local
/// `.cache/onnxruntime/`. Later calls return the first call's result (a different explicit path is
/// an error). Never panics.
pub fn init_runtime(path: Option<&Path>) -> Result<RuntimeInfo> {
    runtime::environment(path).map(|(info, _)| info)
}

/// The runtime loaded in this process, if any (does not load one).
pub fn runtime_info() -> Option<RuntimeInfo> {
    runtime::loaded()
}

/// Which execution provider to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA, then TensorRT, then CPU: the first that registers.
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA; an error when it cannot run.
    Cuda,
    /// TensorRT; an error when it cannot run.
    TensorRt,
}

/// Options for loading a model.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Execution provider.
    pub device: Device,
    /// Intra-op threads (`None`: ONNX Runtime's default).
    pub threads: Option<usize>,
    /// Explicit ONNX Runtime library (see [`init_runtime`]).
    pub runtime_path: Option<PathBuf>,
}

impl ModelOptions {
    /// Sets the device.
    pub fn device(mut self, d: Device) -> Self {
        self.device = d;
        self
    }
    /// Sets the intra-op thread count.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Sets the ONNX Runtime library path.
    pub fn runtime_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.runtime_path = Some(p.into());
        self
    }
}

/// Which execution provider actually runs the model, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderReport {
    /// What was asked for.
    pub requested: Device,
    /// The provider that runs the nodes, e.g. "CPUExecutionProvider".
    pub used: String,
    /// Why others were skipped (e.g. "CUDA: not available in this ONNX Runtime build").
    pub notes: Vec<String>,
}

/// Progress of a segmentation run, reported between batches.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Slices finished.
    pub done: usize,
    /// Slices in the volume.
    pub total: usize,
}

/// Time spent in each stage, in seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Channel pick, normalisation, resize, batching.
    pub preprocess: f64,
    /// `session.run`.
    pub inference: f64,
    /// Resize back, threshold/argmax, connected components.
    pub postprocess: f64,
}

/// The result of [`segment`].
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The label mask on the volume's grid, with its geometry and source metadata.
    pub mask: Mask,
    /// The provider that ran.
    pub provider: String,
    /// Stage timings.
    pub timings: Timings,
    /// Non-fatal notes (e.g. channel substitutions).
    pub warnings: Vec<String>,
}

/// Segments `volume` slice by slice along its acquisition axis. `progress` is called between
/// batches; returning `false` cancels (as does `options.cancel`), giving [`Error::Cancelled`].
pub fn segment(
    model: &Model,
    volume: &Volume,
    options: &SegmentOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Segmentation> {
    // Refused here for every family and front end, before anything is read or allocated.
    options.validate()?;
    match &model.contract.tiled {
        Some(spec) => tiled::segment(model, spec, volume, options, progress),
        None => segment::segment(model, volume, options, progress),
    }
}

/// Runs the model on preprocessed slices `[N, C, H, W]` (C = [`ModelContract::input_channels`],
/// H, W as the contract says) and
/// returns its raw output `[N, K, H, W]` (probabilities): no normalisation, resize, threshold
/// or TTA. The pipeline runs its batches through the same code.
pub fn predict_slices(model: &Model, input: &Array4<f32>) -> Result<Array4<f32>> {
    segment::run_batches(model, input.view(), None)
}

/// The model input the pipeline builds for slices `start..start + count` of `volume` along its
/// acquisition axis: channel pick, normalisation (volume statistics), resize or aspect-keeping
/// pad, as defined in [`preprocess`], with each channel's context slices when the contract
/// declares them. Shape `[count, C, H, W]`, C = [`ModelContract::input_channels`]. For tests and
/// debugging.
pub fn prepare_slices(
    model: &Model,
    volume: &Volume,
    start: usize,
    count: usize,
) -> Result<Array4<f32>> {
    if model.contract.tiled.is_some() {
        return Err(Error::InvalidArgument(
            "prepare_slices builds the resize family's input; this model is tiled".into(),
        ));
    }
    let prep = segment::Prep::new(model, volume)?;
    if start.checked_add(count).is_none_or(|e| e > prep.n_slices) {
        return Err(Error::InvalidArgument(format!(
            "slices {start}..{} outside 0..{}",
            start.saturating_add(count),
            prep.n_slices
        )));
    }
    Ok(prep.batch(start, count, &[(false, false)]))
}
