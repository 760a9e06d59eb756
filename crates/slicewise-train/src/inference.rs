//! Eval-mode inference with Burn: what the exported ONNX model must reproduce.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::checkpoint::{load_weights, weights_path};
use super::config::{load_config, TrainingConfig};
use super::model::{libtorch_device, UNet};
use slicewise::error::{Error, Result};

/// A trained run loaded for inference: its config and its model in eval mode.
pub struct Trained {
    /// The run's config.
    pub config: TrainingConfig,
    /// The model (eval mode, no autodiff).
    pub model: UNet,
    /// The device it runs on.
    pub device: Device,
}

/// Loads a run folder (`config.json` + `best.bpk`, or the `.bpk` given as `weights`) on CPU
/// LibTorch, in eval mode.
pub fn load_run(run_dir: &Path, weights: Option<&Path>) -> Result<Trained> {
    let cfg_path = run_dir.join("config.json");
    let config = load_config(&cfg_path)?;
    let device = libtorch_device(None);
    let w = weights.map_or_else(|| weights_path(run_dir), Path::to_path_buf);
    let model = load_weights(&config.model, &w, &device)?.valid();
    Ok(Trained {
        config,
        model,
        device,
    })
}

/// Runs `model` in eval mode on `input` (`[n, c, h, w]`, row-major) and returns its
/// probabilities `[n, k, h, w]`.
pub fn predict(
    model: &UNet,
    device: &Device,
    input: &[f32],
    shape: [usize; 4],
) -> Result<Vec<f32>> {
    if input.len() != shape.iter().product::<usize>() {
        return Err(Error::InvalidArgument(format!(
            "input of {} values does not have shape {shape:?}",
            input.len()
        )));
    }
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), shape), device);
    model
        .valid()
        .forward(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Training(format!("Burn forward output: {e:?}")))
}
