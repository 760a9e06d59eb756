//! Evaluation of a model in eval mode on a set of slices: loss, pixels pooled, Dice per volume
//! and per tumour slice ([`ValidationReport`]); the pixel scoring the training loop shares.

use std::sync::Arc;

use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::TrainingConfig;
use super::data::Dataset;
use super::loader::{Batch, EpochLoader};
use super::loss::{batch_tensors, loss};
use super::metrics::{foreground, Confusion, EpochMetrics};
use super::model::{OutputActivation, UNet, UNetConfig};

/// Validation results: pooled, per volume, per tumour slice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Loss, pooled counts, mean volume Dice and mean tumour-slice Dice.
    pub metrics: EpochMetrics,
    /// Dice per validation volume (pixels pooled per volume).
    pub per_volume: Vec<(String, f64)>,
}

/// The output channels a model is scored on: 1 for a sigmoid foreground, else its classes.
pub fn classes_of(m: &UNetConfig) -> usize {
    match m.output {
        OutputActivation::Sigmoid => 1,
        OutputActivation::Softmax => m.out_channels,
    }
}

/// Scores a batch's output probabilities `[n, K, s, s]` against its masks.
pub(crate) fn score(
    probs: &[f32],
    b: &Batch,
    ds: &Dataset,
    classes: usize,
    threshold: f32,
    per_volume: &mut [Confusion],
    slice_dice: &mut Vec<f64>,
) -> Confusion {
    let plane = b.size * b.size;
    let k = classes.max(1);
    let mut total = Confusion::default();
    for (i, &idx) in b.indices.iter().enumerate() {
        let pr = &probs[i * k * plane..(i + 1) * k * plane];
        let mut c = Confusion::default();
        for p in 0..plane {
            c.add(
                foreground(pr, classes, plane, p, threshold) != 0,
                b.masks[i * plane + p] != 0,
            );
        }
        if let Some(v) = per_volume.get_mut(ds.slices[idx].volume) {
            v.merge(&c);
        }
        if c.tp + c.fn_ > 0 {
            slice_dice.push(c.dice());
        }
        total.merge(&c);
    }
    total
}

/// Evaluates `model` (eval mode) on `indices`: loss, pooled and per-volume scores.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &UNet,
    ds: &Arc<Dataset>,
    indices: &[usize],
    cfg: &TrainingConfig,
    dev: &Device,
    epoch: usize,
) -> ValidationReport {
    let classes = classes_of(&cfg.model);
    let mut per_volume = vec![Confusion::default(); ds.volumes.len()];
    let mut slice_dice = Vec::new();
    let mut pooled = Confusion::default();
    let (mut loss_sum, mut batches) = (0.0, 0usize);
    let loader = EpochLoader::start(
        ds.clone(),
        indices.to_vec(),
        cfg.batch_size,
        false,
        None,
        0,
        0,
        0,
    );
    for b in loader {
        let (x, y) = batch_tensors(&b, ds.input_channels(), b.size, classes, dev);
        let logits = model.forward_logits(x);
        loss_sum +=
            f64::from(loss(cfg.loss, cfg.focal_gamma, logits.clone(), y).into_scalar::<f32>());
        batches += 1;
        let probs = if classes <= 1 {
            sigmoid(logits)
        } else {
            softmax(logits, 1)
        };
        let probs = probs.into_data().try_into_vec::<f32>().unwrap_or_default();
        pooled.merge(&score(
            &probs,
            &b,
            ds,
            classes,
            cfg.threshold,
            &mut per_volume,
            &mut slice_dice,
        ));
    }
    let mut vols: Vec<usize> = indices.iter().map(|&i| ds.slices[i].volume).collect();
    vols.sort_unstable();
    vols.dedup();
    let per: Vec<(String, f64)> = vols
        .iter()
        .map(|&v| (ds.volumes[v].clone(), per_volume[v].dice()))
        .collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    ValidationReport {
        epoch,
        metrics: EpochMetrics {
            loss: loss_sum / batches.max(1) as f64,
            pooled,
            volume_dice: mean(&per.iter().map(|p| p.1).collect::<Vec<_>>()),
            tumour_slice_dice: mean(&slice_dice),
        },
        per_volume: per,
    }
}
