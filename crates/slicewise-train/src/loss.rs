//! The losses (cross-entropy, soft Dice, both, focal) over logits, and the host batch turned
//! into the (images, targets) tensors they take.

use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::LossKind;
use super::loader::Batch;

/// Host batch → (images, targets) tensors; targets are `[n, 1, s, s]` (sigmoid) or one-hot
/// `[n, K, s, s]` (softmax).
pub fn batch_tensors(
    b: &Batch,
    c: usize,
    s: usize,
    classes: usize,
    dev: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let n = b.len();
    let x = Tensor::<4>::from_data(TensorData::new(b.images.clone(), [n, c, s, s]), dev);
    let y = if classes <= 1 {
        let v: Vec<f32> = b
            .masks
            .iter()
            .map(|&m| f32::from(u8::from(m != 0)))
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [n, 1, s, s]), dev)
    } else {
        let plane = s * s;
        let mut v = vec![0f32; n * classes * plane];
        for i in 0..n {
            for p in 0..plane {
                let k = usize::from(b.masks[i * plane + p]).min(classes - 1);
                v[(i * classes + k) * plane + p] = 1.0;
            }
        }
        Tensor::<4>::from_data(TensorData::new(v, [n, classes, s, s]), dev)
    };
    (x, y)
}

/// Soft Dice pooled over the batch (`per_slice` false: a large lesion outweighs a small one) or
/// per slice, averaged over the slices whose truth has the class (`per_slice` true: each
/// lesion's slice weighs the same, however small; empty slices are left to the cross-entropy,
/// and a batch without any lesion adds 0).
fn soft_dice(p: Tensor<4>, y: Tensor<4>, first_class: usize, per_slice: bool) -> Tensor<1> {
    let k = p.dims()[1];
    let (p, y) = if first_class > 0 {
        (
            p.narrow(1, first_class, k - first_class),
            y.narrow(1, first_class, k - first_class),
        )
    } else {
        (p, y)
    };
    if per_slice {
        let inter = (p.clone() * y.clone()).sum_dims(&[2, 3]);
        let truth = y.sum_dims(&[2, 3]);
        let dice = (inter.mul_scalar(2.0).add_scalar(1.0))
            / (p.sum_dims(&[2, 3]) + truth.clone()).add_scalar(1.0);
        // 1 where the slice's truth has the class (targets are 0/1, so a sum ≥ 1), else 0.
        let has = truth.clamp_max(1.0);
        let n = has.clone().sum().clamp_min(1.0);
        return ((dice.neg().add_scalar(1.0)) * has).sum() / n;
    }
    let inter = (p.clone() * y.clone()).sum_dims(&[0, 2, 3]);
    let denom = p.sum_dims(&[0, 2, 3]) + y.sum_dims(&[0, 2, 3]);
    let dice = (inter.mul_scalar(2.0).add_scalar(1.0)) / denom.add_scalar(1.0);
    dice.mean().neg().add_scalar(1.0)
}

/// Deep supervision's loss: the loss of each output (full resolution, then 1/2, 1/4, …) against
/// the targets shrunk to it (nearest), weighted 1, 1/2, 1/4, … and normalised to sum 1 (as
/// nnU-Net weighs its deep-supervision outputs). One output: [`loss`] itself.
pub fn deep_loss(kind: LossKind, gamma: f64, outs: Vec<Tensor<4>>, y: Tensor<4>) -> Tensor<1> {
    let n = outs.len();
    let norm: f64 = (0..n).map(|i| 0.5f64.powi(i as i32)).sum();
    let mut total: Option<Tensor<1>> = None;
    for (i, logits) in outs.into_iter().enumerate() {
        let [_, _, h, w] = logits.dims();
        let target = if i == 0 {
            y.clone()
        } else {
            let nearest = InterpolateOptions::new(InterpolateMode::Nearest)
                .with_align_corners(false)
                .with_output_size([h, w]);
            interpolate(y.clone(), nearest)
        };
        let l = loss(kind, gamma, logits, target).mul_scalar(0.5f64.powi(i as i32) / norm);
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([1], &y.device()))
}

/// The loss of logits against targets (see [`batch_tensors`]).
pub fn loss(kind: LossKind, gamma: f64, logits: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    let sigmoid_out = logits.dims()[1] == 1;
    // Per-pixel cross-entropy, numerically stable from the logits.
    let ce = |logits: Tensor<4>, y: Tensor<4>| -> Tensor<4> {
        if sigmoid_out {
            logits.clone().clamp_min(0.0) - logits.clone() * y + logits.abs().neg().exp().log1p()
        } else {
            (log_softmax(logits, 1) * y).sum_dim(1).neg()
        }
    };
    let probs = |logits: Tensor<4>| {
        if sigmoid_out {
            sigmoid(logits)
        } else {
            softmax(logits, 1)
        }
    };
    let first = usize::from(!sigmoid_out);
    let focal = |logits: Tensor<4>, y: Tensor<4>| {
        let p = probs(logits.clone());
        // p_t: the probability of the true class at each pixel.
        let pt = if sigmoid_out {
            p.clone() * y.clone() + (p.neg().add_scalar(1.0)) * (y.clone().neg().add_scalar(1.0))
        } else {
            (p * y.clone()).sum_dim(1)
        };
        let w = pt.neg().add_scalar(1.0).clamp_min(0.0).powf_scalar(gamma);
        (w * ce(logits, y)).mean()
    };
    match kind {
        LossKind::Bce => ce(logits, y).mean(),
        LossKind::Dice => soft_dice(probs(logits), y, first, false),
        LossKind::BceDice => {
            ce(logits.clone(), y.clone()).mean() + soft_dice(probs(logits), y, first, false)
        }
        LossKind::BceSliceDice => {
            ce(logits.clone(), y.clone()).mean() + soft_dice(probs(logits), y, first, true)
        }
        LossKind::Focal => focal(logits, y),
        LossKind::FocalDice => {
            focal(logits.clone(), y.clone()) + soft_dice(probs(logits), y, first, false)
        }
    }
}
