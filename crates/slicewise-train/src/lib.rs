//! # slicewise-train
//!
//! Training U-Nets with Burn on LibTorch and exporting them to ONNX for the slicewise engine. The
//! only crate of the workspace that links libtorch.
//!
//! * [`model`]: the configurable U-Net and its presets (`small`, `unet`).
//! * [`data`] / [`sources`]: LGG-style image/mask pairs, NIfTI (MSD) and COCO polygons,
//!   preprocessed per volume as the engine does, split by volume.
//! * [`strip`]: skull-stripped copies of training volumes.
//! * [`augment`]: geometric and intensity augmentation, image and mask kept aligned.
//! * [`dark_core`]: a hypo-intense core drawn inside a training lesion, its label kept.
//! * [`distance`]: chamfer distance transforms (the stripping rim, the lesion core's depth).
//! * [`loader`]: batches built by worker threads, reproducible per seed.
//! * [`training`]: losses, optimisers, LR schedule, early stopping, checkpoints, metrics CSV.
//! * [`inference`]: eval-mode forward (the reference for export parity).
//! * [`overlay`]: PNG overlays of validation predictions at the end of a run.
//! * [`export`] / [`onnx`]: the ONNX writer with the `slicewise.*` contract, and the model card.
//! * [`ensemble`]: one ONNX model averaging several exported members.

#![warn(missing_docs)]

pub mod augment;
pub mod curves;
pub mod dark_core;
pub mod data;
pub mod distance;
pub mod ensemble;
pub mod export;
pub mod inference;
pub mod loader;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod overlay;
pub mod sources;
pub mod strip;
pub mod training;

pub use data::{DataConfig, DataKind, Dataset, Split};
pub use model::{OutputActivation, UNet, UNetConfig};
pub use training::{train, LossKind, OptimizerKind, RunOptions, TrainSummary, TrainingConfig};
