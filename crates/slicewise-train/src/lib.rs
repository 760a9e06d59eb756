//! # slicewise-train
//!
//! Training U-Nets with Burn on LibTorch and exporting them to ONNX for the slicewise engine. The
//! only crate of the workspace that links libtorch.
//!
//! * [`model`]: the configurable U-Net and its presets (`small`, `unet`).
//! * [`data`]: the training set, preprocessed per volume as the engine does, split by volume.
//! * [`sources`] / [`coco`] / [`raw`]: LGG-style slice folders and NIfTI (MSD) read through the
//!   engine's readers, COCO polygons rasterised; the raw volumes they give.
//! * [`strip`]: skull-stripped copies of training volumes.
//! * [`augment`]: geometric and intensity augmentation, image and mask kept aligned.
//! * [`dark_core`]: a hypo-intense core drawn inside a training lesion, its label kept.
//! * [`distance`]: chamfer distance transforms (the stripping rim, the lesion core's depth).
//! * [`loader`]: batches built by worker threads, reproducible per seed.
//! * [`config`]: the [`TrainingConfig`] saved with every run (`config.json`), defaults included.
//! * [`loss`], [`evaluation`], [`schedule`], [`checkpoint`]: losses; validation scores; the LR
//!   schedule and early stopping; weights, optimiser state and JSON written atomically.
//! * [`training`]: the loop (epochs, steps, per-epoch CSV, checkpoints, resuming).
//! * [`inference`]: eval-mode forward (the reference for export parity).
//! * [`overlay`]: PNG overlays of validation predictions at the end of a run.
//! * [`export`] / [`onnx`]: the ONNX writer with the `slicewise.*` contract, and the model card.
//! * [`ensemble`]: one ONNX model averaging several exported members.

#![warn(missing_docs)]

pub mod augment;
pub mod checkpoint;
pub mod coco;
pub mod config;
pub mod curves;
pub mod dark_core;
pub mod data;
pub mod distance;
pub mod ensemble;
pub mod evaluation;
pub mod export;
pub mod inference;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod overlay;
pub mod raw;
pub mod schedule;
pub mod sources;
pub mod strip;
pub mod training;

pub use config::{LossKind, OptimizerKind, TrainingConfig};
pub use data::{DataConfig, DataKind, Dataset, Split};
pub use model::{OutputActivation, UNet, UNetConfig};
pub use training::{train, RunOptions, TrainSummary};
