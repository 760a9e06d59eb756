//! The trainer's scores: foreground confusion counts pooled per epoch, and the decision of a
//! pixel from the model's output.
//!
//! The counts and their ratios (Dice, IoU, precision, recall, accuracy, with their empty-case
//! conventions) are the engine's [`slicewise::metrics::Confusion`], the same functions
//! `slicewise evaluate` reports with, so the training CSV and `slicewise evaluate` agree on the
//! same masks.

use serde::{Deserialize, Serialize};

use slicewise::infer::contract::argmax_class;
pub use slicewise::metrics::Confusion;

/// Scores of one pass over a set of slices.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Mean loss per batch.
    pub loss: f64,
    /// Counts pooled over all pixels.
    pub pooled: Confusion,
    /// Mean Dice over volumes (each volume's pixels pooled); NaN when not computed.
    pub volume_dice: f64,
    /// Mean Dice over slices whose truth has foreground.
    pub tumour_slice_dice: f64,
}

/// Foreground decision of one pixel from the model's output: sigmoid probability above
/// `threshold`, or (softmax) a non-background arg-max.
pub fn foreground(probs: &[f32], classes: usize, plane: usize, pixel: usize, threshold: f32) -> u8 {
    if classes <= 1 {
        return u8::from(probs[pixel] > threshold);
    }
    argmax_class((0..classes).map(|k| probs[k * plane + pixel])) as u8
}

/// The header of `metrics.csv`, one row per epoch ([`csv_row`]); [`crate::curves`] reads it.
pub const CSV_HEADER: &str = "epoch,lr,train_loss,train_dice,train_iou,train_precision,train_recall,train_accuracy,val_loss,val_dice,val_iou,val_precision,val_recall,val_accuracy,val_volume_dice,val_tumour_slice_dice,seconds";

/// One epoch's row of `metrics.csv`: the rate, training and validation scores, seconds. A run
/// without validation (a cross-validation fold) leaves the validation fields empty rather than
/// writing the scores of an empty set, which would read as a perfect 1.
pub fn csv_row(
    epoch: usize,
    lr: f64,
    t: &EpochMetrics,
    v: Option<&EpochMetrics>,
    secs: f64,
) -> String {
    let m = |e: &EpochMetrics| {
        let c = &e.pooled;
        format!(
            "{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            e.loss,
            c.dice(),
            c.iou(),
            c.precision(),
            c.recall(),
            c.accuracy()
        )
    };
    let val = match v {
        Some(v) => format!("{},{:.6},{:.6}", m(v), v.volume_dice, v.tumour_slice_dice),
        None => ",,,,,,,".to_string(),
    };
    format!("{epoch},{lr:.3e},{},{val},{secs:.1}", m(t))
}
