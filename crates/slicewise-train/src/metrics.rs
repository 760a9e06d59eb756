//! Foreground confusion counts and the scores derived from them.

use serde::{Deserialize, Serialize};

/// Pixel counts of foreground prediction vs truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Foreground predicted and true.
    pub tp: f64,
    /// Foreground predicted, background true.
    pub fp: f64,
    /// Background predicted, foreground true.
    pub fn_: f64,
    /// Background predicted and true.
    pub tn: f64,
}

fn ratio(a: f64, b: f64, empty: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        empty
    }
}

impl Confusion {
    /// Adds one pixel.
    pub fn add(&mut self, pred: bool, truth: bool) {
        match (pred, truth) {
            (true, true) => self.tp += 1.0,
            (true, false) => self.fp += 1.0,
            (false, true) => self.fn_ += 1.0,
            (false, false) => self.tn += 1.0,
        }
    }
    /// Sums counts.
    pub fn merge(&mut self, o: &Confusion) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }
    /// 2TP / (2TP + FP + FN); 1 when both are empty.
    pub fn dice(&self) -> f64 {
        ratio(2.0 * self.tp, 2.0 * self.tp + self.fp + self.fn_, 1.0)
    }
    /// TP / (TP + FP + FN); 1 when both are empty.
    pub fn iou(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp + self.fn_, 1.0)
    }
    /// TP / (TP + FP); 1 when nothing is predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp, 1.0)
    }
    /// TP / (TP + FN); 1 when there is no foreground.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_, 1.0)
    }
    /// (TP + TN) / all.
    pub fn accuracy(&self) -> f64 {
        ratio(
            self.tp + self.tn,
            self.tp + self.tn + self.fp + self.fn_,
            1.0,
        )
    }
}

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
    let mut best = (0usize, f32::NEG_INFINITY);
    for k in 0..classes {
        let v = probs[k * plane + pixel];
        if v > best.1 {
            best = (k, v);
        }
    }
    best.0 as u8
}
