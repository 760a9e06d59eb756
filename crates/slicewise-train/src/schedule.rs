//! The learning-rate schedule and early stopping between epochs: ReduceLROnPlateau or cosine
//! annealing, the best validation Dice, and the [`TrainState`] they keep (`state.json`).

use serde::{Deserialize, Serialize};

use super::config::TrainingConfig;

/// Progress kept between epochs (`state.json`), for resuming.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Current learning rate.
    pub lr: f64,
    /// Best validation Dice so far (−∞, written as `null`, before any, and in a run without
    /// validation volumes).
    #[serde(deserialize_with = "null_as_neg_infinity")]
    pub best_dice: f64,
    /// Epoch (1-based) of the best Dice.
    pub best_epoch: usize,
    /// Epochs since the best Dice.
    pub since_best: usize,
    /// Epochs since the last improvement or rate drop.
    pub since_drop: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// JSON has no infinities: serde_json writes −∞ as `null`, read back here.
fn null_as_neg_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

/// Early stopping and ReduceLROnPlateau after an epoch whose validation Dice is `val_dice`;
/// returns whether it is a new best (by more than `min_delta`). Without validation volumes
/// (`None`, a cross-validation fold) nothing can choose an epoch: each one is the best so far, so
/// the last is the model, and only the cosine schedule moves the rate.
pub fn update_schedule(
    state: &mut TrainState,
    cfg: &TrainingConfig,
    epoch: usize,
    val_dice: Option<f64>,
) -> bool {
    if cfg.cosine {
        state.lr = cosine_lr(cfg, epoch + 1);
    }
    let Some(val_dice) = val_dice else {
        state.best_epoch = epoch;
        return true;
    };
    if val_dice > state.best_dice + cfg.min_delta {
        state.best_dice = val_dice;
        state.best_epoch = epoch;
        state.since_best = 0;
        state.since_drop = 0;
        return true;
    }
    state.since_best += 1;
    state.since_drop += 1;
    if !cfg.cosine && cfg.plateau_patience > 0 && state.since_drop >= cfg.plateau_patience {
        state.lr = (state.lr * cfg.plateau_factor).max(cfg.min_lr);
        state.since_drop = 0;
        log::info!(
            "validation Dice plateaued: learning rate now {:.2e}",
            state.lr
        );
    }
    if cfg.early_stopping > 0 && state.since_best >= cfg.early_stopping {
        state.stopped_early = true;
        log::info!(
            "early stop: no better validation Dice for {} epochs",
            state.since_best
        );
    }
    false
}

/// The cosine schedule's rate for `epoch` (1-based): `learning_rate` at epoch 1, falling
/// towards `min_lr` at epoch `epochs + 1`.
fn cosine_lr(cfg: &TrainingConfig, epoch: usize) -> f64 {
    let done = epoch.saturating_sub(1) as f64 / cfg.epochs.max(1) as f64;
    let span = cfg.learning_rate - cfg.min_lr;
    cfg.min_lr + 0.5 * span * (1.0 + (std::f64::consts::PI * done.min(1.0)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::AugmentConfig;
    use crate::data::DataConfig;
    use crate::model::UNetConfig;

    /// A config for the schedule tests (model and data unused).
    fn schedule_config() -> TrainingConfig {
        TrainingConfig::new(
            UNetConfig::small(1),
            DataConfig::new(String::new()),
            AugmentConfig::none(),
        )
    }

    /// The state a fresh run starts from.
    fn fresh_state(cfg: &TrainingConfig) -> TrainState {
        TrainState {
            lr: cfg.learning_rate,
            best_dice: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    #[test]
    fn schedule_drops_the_rate_on_a_plateau_and_stops_early() {
        let cfg = schedule_config()
            .with_plateau_patience(2)
            .with_early_stopping(3)
            .with_learning_rate(1e-3);
        let mut s = fresh_state(&cfg);
        assert!(update_schedule(&mut s, &cfg, 1, Some(0.5)));
        assert!(!update_schedule(&mut s, &cfg, 2, Some(0.5)));
        assert!(!update_schedule(&mut s, &cfg, 3, Some(0.5)));
        assert_eq!((s.lr, s.since_drop, s.stopped_early), (5e-4, 0, false));
        assert!(!update_schedule(&mut s, &cfg, 4, Some(0.5)));
        assert!(s.stopped_early);
        assert_eq!((s.best_epoch, s.best_dice), (1, 0.5));
    }

    #[test]
    fn cosine_schedule_anneals_over_the_epochs_and_ignores_plateaus() {
        let cfg = schedule_config()
            .with_cosine(true)
            .with_epochs(4)
            .with_plateau_patience(1)
            .with_min_lr(0.0)
            .with_learning_rate(1e-3);
        let mut s = fresh_state(&cfg);
        let mut rates = vec![s.lr];
        for epoch in 1..4 {
            update_schedule(&mut s, &cfg, epoch, Some(0.5));
            rates.push(s.lr);
        }
        let want = [
            1e-3,
            0.5e-3 * (1.0 + 0.5f64.sqrt()),
            0.5e-3,
            0.5e-3 * (1.0 - 0.5f64.sqrt()),
        ];
        for (got, want) in rates.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
    }
}
