//! The losses on hand-made cases: per-slice Dice weighs a missed small lesion as much as a found
//! large one, where the batch-pooled Dice barely sees it; focal + Dice is the sum of its parts.

use burn::tensor::{Tensor, TensorData};
use slicewise_train::loss::loss;
use slicewise_train::model::libtorch_device;
use slicewise_train::LossKind;

const S: usize = 16;

/// Two slices: a large lesion (half the slice) predicted exactly, and on the second slice a 2×2
/// lesion missed (`small_lesion`) or no lesion at all. Logits ±8 (p ≈ 1 or ≈ 0).
fn two_slices(small_lesion: bool) -> (Tensor<4>, Tensor<4>) {
    let dev = libtorch_device(None);
    let mut y = vec![0f32; 2 * S * S];
    let mut logits = vec![-8f32; 2 * S * S];
    for p in 0..S * S / 2 {
        y[p] = 1.0;
        logits[p] = 8.0;
    }
    if small_lesion {
        for (r, c) in [(5, 5), (5, 6), (6, 5), (6, 6)] {
            y[S * S + r * S + c] = 1.0;
        }
    }
    let t = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [2, 1, S, S]), &dev);
    (t(logits), t(y))
}

fn value_on(kind: LossKind, small_lesion: bool) -> f32 {
    let (x, y) = two_slices(small_lesion);
    loss(kind, 2.0, x, y).into_scalar::<f32>()
}

fn value(kind: LossKind) -> f32 {
    value_on(kind, true)
}

#[test]
fn slice_dice_weighs_a_missed_small_lesion() {
    let pooled = value(LossKind::BceDice);
    let per_slice = value(LossKind::BceSliceDice);
    // Pooled: 128 of 132 lesion pixels found, Dice ≈ 0.985; per slice: 1 and ≈ 0.2 (the
    // smoothing term), mean ≈ 0.6.
    assert!(pooled < 0.1, "pooled {pooled}");
    assert!(
        per_slice - pooled > 0.3,
        "per slice {per_slice} vs pooled {pooled}"
    );
}

#[test]
fn focal_dice_is_focal_plus_dice() {
    let sum = value(LossKind::Focal) + value(LossKind::Dice);
    let both = value(LossKind::FocalDice);
    assert!((both - sum).abs() < 1e-5, "{both} vs {sum}");
}

/// Slices without a lesion add nothing to the per-slice Dice: an empty slice predicted empty
/// beside a found lesion leaves the Dice term at ≈ 0, as the found lesion alone does.
#[test]
fn slice_dice_averages_over_the_lesion_slices_only() {
    let dice = value_on(LossKind::BceSliceDice, false) - value_on(LossKind::Bce, false);
    assert!(dice.abs() < 1e-3, "Dice term {dice}");
}
