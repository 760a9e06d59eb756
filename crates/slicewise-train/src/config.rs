//! The config of a training run: the network, the data and its preprocessing, augmentation,
//! loss, optimiser and schedule, saved as `config.json` beside the run's artefacts (burn's
//! `Config`); its defaults are the command line's.

use std::path::Path;

use burn::config::Config;

use super::augment::AugmentConfig;
use super::data::DataConfig;
use super::model::UNetConfig;
use slicewise::error::{Error, Result};

/// The loss.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Binary (sigmoid) or categorical (softmax) cross-entropy.
    Bce,
    /// Soft Dice (foreground classes).
    Dice,
    /// Cross-entropy + soft Dice.
    BceDice,
    /// Focal loss (γ = `focal_gamma`).
    Focal,
    /// Cross-entropy + soft Dice per slice, averaged: a small lesion's slice weighs as much as a
    /// large one's (batch-pooled Dice lets large lesions dominate).
    BceSliceDice,
    /// Focal loss (γ = `focal_gamma`: hard, e.g. faint, pixels weigh more) + soft Dice.
    FocalDice,
}

/// The optimiser.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Adam (L2 weight decay when `weight_decay` > 0).
    Adam,
    /// AdamW (decoupled weight decay).
    AdamW,
}

/// Everything that defines a training run (saved as `config.json` beside the artefacts).
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The network.
    pub model: UNetConfig,
    /// The data and its preprocessing.
    pub data: DataConfig,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Model name for the exported contract.
    #[config(default = "\"slicewise-unet\".to_string()")]
    pub name: String,
    /// Loss.
    #[config(default = "LossKind::BceDice")]
    pub loss: LossKind,
    /// Focal loss exponent.
    #[config(default = 2.0)]
    pub focal_gamma: f64,
    /// Optimiser.
    #[config(default = "OptimizerKind::Adam")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Weight decay (AdamW: decoupled; Adam: L2; 0: none).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Slices per step.
    #[config(default = 8)]
    pub batch_size: usize,
    /// Epochs at most.
    #[config(default = 50)]
    pub epochs: usize,
    /// Seed of weights, shuffling and augmentation.
    #[config(default = 42)]
    pub seed: u64,
    /// Stop after this many epochs without a better validation Dice (0: never).
    #[config(default = 10)]
    pub early_stopping: usize,
    /// ReduceLROnPlateau: epochs without a better validation Dice before the rate drops (0: off).
    #[config(default = 4)]
    pub plateau_patience: usize,
    /// ReduceLROnPlateau factor.
    #[config(default = 0.5)]
    pub plateau_factor: f64,
    /// Smallest learning rate.
    #[config(default = 1e-6)]
    pub min_lr: f64,
    /// Cosine annealing from `learning_rate` to `min_lr` over `epochs` instead of
    /// ReduceLROnPlateau: a budget-bound run ends on small steps rather than mid-descent.
    #[config(default = false)]
    pub cosine: bool,
    /// Improvements smaller than this do not count.
    #[config(default = 1e-4)]
    pub min_delta: f64,
    /// Sigmoid threshold for the metrics (and the exported contract).
    #[config(default = 0.5)]
    pub threshold: f32,
    /// Batch-producing worker threads (0: on the training thread).
    #[config(default = 1)]
    pub loader_workers: usize,
    /// Start from these weights (fine-tuning): a `.bpk` file or a run folder (its `best.bpk`).
    #[config(default = "None")]
    pub init_from: Option<String>,
}

/// Reads a `config.json` (a run folder's, or one written by hand).
pub fn load_config(path: &Path) -> Result<TrainingConfig> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    TrainingConfig::load_binary(&bytes).map_err(|e| Error::format(path, e.to_string()))
}

/// Writes `cfg` as `config.json` at `path` (atomically: the file is whole or the previous one).
pub fn save_config(cfg: &TrainingConfig, path: &Path) -> Result<()> {
    slicewise::output::atomic_write(path, |w| {
        use std::io::Write;
        w.write_all(burn::config::config_to_json(cfg).as_bytes())
            .map_err(|e| Error::io("write", path, e))
    })
}

/// The checks a config must pass before anything is loaded.
pub fn check_config(cfg: &TrainingConfig) -> Result<()> {
    cfg.model.validate().map_err(Error::InvalidArgument)?;
    if !cfg.data.size.is_multiple_of(cfg.model.multiple()) {
        return Err(Error::InvalidArgument(format!(
            "input size {} is not a multiple of {} (depth {})",
            cfg.data.size,
            cfg.model.multiple(),
            cfg.model.depth
        )));
    }
    let k = cfg.data.context_slices();
    if k > slicewise::infer::contract::MAX_CONTEXT_SLICES {
        return Err(Error::InvalidArgument(format!(
            "context {k} is more than the {} slices a model contract may declare",
            slicewise::infer::contract::MAX_CONTEXT_SLICES
        )));
    }
    if cfg.data.fold.is_some() && cfg.data.cv_folds() == 0 {
        return Err(Error::InvalidArgument(
            "a fold is named but no cross-validation folds (--folds K) are set".into(),
        ));
    }
    if let Some(p) = cfg.data.patch {
        if p == 0 || p > cfg.data.size || !p.is_multiple_of(cfg.model.multiple()) {
            return Err(Error::InvalidArgument(format!(
                "training crop {p} must be at most the input size {} and a multiple of {}",
                cfg.data.size,
                cfg.model.multiple()
            )));
        }
    }
    if let Some(f) = cfg.data.patch_foreground {
        if cfg.data.patch.is_none() || !(0.0..=1.0).contains(&f) {
            return Err(Error::InvalidArgument(format!(
                "the share of lesion-centred crops ({f}) must be from 0 to 1 and needs --patch"
            )));
        }
    }
    let sources = if cfg.data.grayscale {
        1
    } else {
        cfg.data.channels.len()
    };
    // Each source channel comes as its 2k+1 context slices.
    let in_ch = sources * (2 * cfg.data.context_slices() + 1);
    if in_ch != cfg.model.in_channels {
        return Err(Error::InvalidArgument(format!(
            "the model takes {} channels, the data gives {in_ch}",
            cfg.model.in_channels
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data: DataConfig) -> TrainingConfig {
        TrainingConfig::new(UNetConfig::small(1), data, AugmentConfig::new())
    }

    /// Options that cannot work together are refused before a run starts, naming the option.
    #[test]
    fn refuses_options_that_cannot_work_together() {
        let data = || DataConfig::new("d".into()).with_size(128);
        assert!(check_config(&config(data())).is_ok());
        assert!(check_config(&config(data().with_patch(Some(64)))).is_ok());
        let ok = data().with_patch(Some(64)).with_patch_foreground(Some(0.0));
        assert!(check_config(&config(ok)).is_ok());
        let refused = [
            (data().with_patch(Some(256)), "training crop"),
            (data().with_patch(Some(60)), "multiple of"),
            (data().with_patch_foreground(Some(0.5)), "needs --patch"),
            (
                data().with_patch(Some(64)).with_patch_foreground(Some(1.5)),
                "from 0 to 1",
            ),
            (data().with_fold(Some(1)), "--folds"),
            (data().with_context(Some(9)), "context"),
        ];
        for (d, says) in refused {
            let e = check_config(&config(d)).expect_err(says).to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
