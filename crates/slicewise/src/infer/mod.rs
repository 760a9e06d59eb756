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

pub mod model;
pub mod postprocess;
pub mod preprocess;
mod provider;
mod runtime;
mod segment;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ndarray::Array4;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mask::{LabelInfo, Mask};
use crate::volume::Volume;

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

/// How slices are normalised before inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalization {
    /// Values used as they are.
    None,
    /// (v - min) / (max - min) over each slice.
    MinMaxSlice,
    /// (v - min) / (max - min) over the whole volume (per channel).
    MinMaxVolume,
    /// (v - mean) / std over the whole volume (per channel).
    ZScore,
    /// Clip to the [lower, upper] percentiles of the volume (per channel), then scale to [0, 1].
    Percentile {
        /// Lower percentile, 0..100.
        lower: f32,
        /// Upper percentile, 0..100.
        upper: f32,
    },
    /// Like `Percentile`, but the percentiles come from the foreground, the voxels above the
    /// channel's minimum, and voxels at the minimum map to 0. For skull-stripped or masked volumes
    /// whose background is one constant (0 in most files, -3.55 in BraTS' z-scored FLAIR): how
    /// much of the field of view is background no longer moves the clips (with 83 % background,
    /// BraTS' plain 99th percentile falls inside the brain and saturates the tumour), nor does
    /// the background's value; on unmasked scans (a few voxels at the minimum) it equals
    /// `Percentile`.
    #[serde(rename = "percentile-fg")]
    PercentileForeground {
        /// Lower percentile, 0..100.
        lower: f32,
        /// Upper percentile, 0..100.
        upper: f32,
    },
    /// Fixed window: clip to [center - width/2, center + width/2], scale to [0, 1].
    Window {
        /// Window centre.
        center: f32,
        /// Window width.
        width: f32,
    },
}

/// What the model outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// One channel of foreground probability (sigmoid applied in the model), thresholded.
    Sigmoid,
    /// K channels of class probabilities (softmax in the model), argmax.
    Softmax,
}

/// The contract a model declares in its `slicewise.*` metadata (or sidecar card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelContract {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Input tensor name.
    pub input_name: String,
    /// Output tensor name.
    pub output_name: String,
    /// Model input height and width in pixels.
    pub height: usize,
    /// Model input width in pixels.
    pub width: usize,
    /// For each model input channel, the source volume channel it takes.
    pub source_channels: Vec<usize>,
    /// Normalisation.
    pub normalization: Normalization,
    /// Keep the slice aspect ratio when resizing (pad to square) instead of stretching.
    pub keep_aspect: bool,
    /// Output kind.
    pub output: OutputKind,
    /// Threshold for sigmoid output.
    pub threshold: f32,
    /// Labels (value 1.. for sigmoid: one label; softmax: one per non-background class).
    pub labels: Vec<LabelInfo>,
    /// Free-text note on the training data.
    pub training_data: Option<String>,
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

/// A loaded model: an ONNX Runtime session plus its contract. `Send + Sync`: one model can serve
/// several threads.
pub struct Model {
    contract: ModelContract,
    provider: ProviderReport,
    path: PathBuf,
    // rc.15's `Session::run` takes `&mut self`; runs on one model are serialised.
    session: Mutex<ort::session::Session>,
    fixed_batch: Option<usize>,
    classes: usize,
}

impl Model {
    /// Loads a model and checks its contract. Initialises the runtime if needed.
    pub fn open(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
        if !meta.is_file() {
            return Err(Error::model(path, "not a file"));
        }
        let (_, env) = runtime::environment(options.runtime_path.as_deref())?;
        let (session, provider) = provider::build_session(&env, path, options)?;
        let mut props = BTreeMap::new();
        let md = session
            .metadata()
            .map_err(|e| Error::model(path, format!("cannot read metadata: {e}")))?;
        for k in md.custom_keys().unwrap_or_default() {
            if let Some(v) = md.custom(&k) {
                props.insert(k, v);
            }
        }
        drop(md);
        if let Some(card) = model::card_path(path) {
            props.extend(model::read_card(path, &card)?);
        }
        let io = graph_io(&session);
        let (contract, facts) = model::parse_contract(path, &props, &io)?;
        Ok(Model {
            contract,
            provider,
            path: path.to_path_buf(),
            session: Mutex::new(session),
            fixed_batch: facts.fixed_batch,
            classes: facts.classes,
        })
    }

    /// Output channels of the graph (1 for sigmoid models, K for softmax).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The graph's fixed batch size, if it has one (batches are split or padded to it).
    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }
    /// The model's contract.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }
    /// The provider in use.
    pub fn provider(&self) -> &ProviderReport {
        &self.provider
    }
    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Cooperative cancellation, settable from any thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options for one segmentation run.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Slices per inference batch.
    pub batch_size: usize,
    /// Overrides the model's threshold (sigmoid models).
    pub threshold: Option<f32>,
    /// Keep only the largest 3-D connected component of each label.
    pub largest_component: bool,
    /// Fill holes in each label (3-D, background not connected to the border).
    pub fill_holes: bool,
    /// Remove 3-D components smaller than this many voxels (0: keep all).
    pub min_component_voxels: usize,
    /// Average predictions over horizontal-flip test-time augmentation.
    pub tta: bool,
    /// Cancellation token checked between batches (and terminating the batch in flight).
    pub cancel: Option<CancelToken>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            batch_size: 8,
            threshold: None,
            largest_component: false,
            fill_holes: false,
            min_component_voxels: 0,
            tta: false,
            cancel: None,
        }
    }
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
    segment::segment(model, volume, options, progress)
}

/// Runs the model on preprocessed slices `[N, C, H, W]` (C, H, W as the contract says) and
/// returns its raw output `[N, K, H, W]` (probabilities): no normalisation, resize, threshold
/// or TTA. The pipeline runs its batches through the same code.
pub fn predict_slices(model: &Model, input: &Array4<f32>) -> Result<Array4<f32>> {
    segment::run_batches(model, input.view(), None)
}

/// The model input the pipeline builds for slices `start..start + count` of `volume` along its
/// acquisition axis: channel pick, normalisation (volume statistics), resize or aspect-keeping
/// pad, as defined in [`preprocess`]. Shape `[count, C, H, W]`. For tests and debugging.
pub fn prepare_slices(
    model: &Model,
    volume: &Volume,
    start: usize,
    count: usize,
) -> Result<Array4<f32>> {
    let prep = segment::Prep::new(model, volume)?;
    if start.checked_add(count).is_none_or(|e| e > prep.n_slices) {
        return Err(Error::InvalidArgument(format!(
            "slices {start}..{} outside 0..{}",
            start.saturating_add(count),
            prep.n_slices
        )));
    }
    Ok(prep.batch(start, count, false))
}

fn graph_io(session: &ort::session::Session) -> model::GraphIo {
    let conv = |o: &ort::value::Outlet| {
        let shape = o
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        (o.name().to_string(), shape)
    };
    model::GraphIo {
        inputs: session.inputs().iter().map(conv).collect(),
        outputs: session.outputs().iter().map(conv).collect(),
    }
}

// The C ABI shares one model between threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
};
