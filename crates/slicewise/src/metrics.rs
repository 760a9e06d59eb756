//! Segmentation quality metrics: Dice, IoU, precision, recall, accuracy, HD95 and the average
//! symmetric surface distance (ASSD), per volume and per slice, in millimetres.
//!
//! # Definitions (MONAI-style)
//! * Counts over voxels: TP, FP, FN, TN of a binary prediction against a binary truth.
//!   Dice = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN), precision = TP / (TP + FP),
//!   recall = TP / (TP + FN), accuracy = (TP + TN) / all.
//! * **Surface** of a mask: its foreground voxels with at least one 6-neighbour (4-neighbour in a
//!   slice) in the background; voxels outside the grid count as background (scipy
//!   `binary_erosion` with `border_value=0`, as MONAI's `get_mask_edges`).
//! * **Surface distances** are exact Euclidean distances in mm between voxel centres (spacing
//!   applied): every surface voxel of one mask gets the distance to the nearest surface voxel of
//!   the other, computed with an exact separable squared Euclidean distance transform
//!   (Felzenszwalb–Huttenlocher, anisotropic), the same values as
//!   `scipy.ndimage.distance_transform_edt(~surface, sampling=spacing)`.
//! * **HD95** = max(p95(pred→truth), p95(truth→pred)), where p95 is numpy's default (linear
//!   interpolation) 95th percentile of the directed distances. **ASSD** = the mean of all directed
//!   distances of both directions together (MONAI `compute_average_surface_distance(symmetric=True)`).
//!
//! # Empty-mask conventions
//! * The counts and the overlap ratios (and their empty-case rules) are [`Confusion`]'s, the one
//!   definition `slicewise evaluate` and the trainer's metrics both use: both empty: Dice, IoU,
//!   precision, recall = 1; otherwise a ratio with a zero denominator is 0 (prediction empty:
//!   precision 0; truth empty: recall 0).
//! * Both empty: HD95 = ASSD = 0; the item is marked `both_empty` and **excluded from per-slice
//!   means**.
//! * Exactly one empty: HD95 and ASSD are undefined (`None`, JSON `null`) and left out of means.
//!
//! Per-slice metrics are 2-D: slices along the array's first (z) axis, in-plane surfaces
//! (4-neighbours) and in-plane distances using the x/y spacing.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

/// Metrics of one binary prediction against one binary truth (a volume or a slice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// True positives (voxels).
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
    /// Dice coefficient.
    pub dice: f64,
    /// Intersection over union (Jaccard).
    pub iou: f64,
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN) (sensitivity).
    pub recall: f64,
    /// (TP + TN) / all voxels.
    pub accuracy: f64,
    /// 95th-percentile symmetric Hausdorff distance in mm; `None` when exactly one mask is empty.
    pub hd95_mm: Option<f64>,
    /// Average symmetric surface distance in mm; `None` when exactly one mask is empty.
    pub assd_mm: Option<f64>,
    /// Both masks empty (excluded from per-slice means).
    pub both_empty: bool,
}

/// Means of per-slice metrics over the slices where at least one mask has foreground.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceMeans {
    /// Slices averaged (not both empty).
    pub slices: usize,
    /// Slices left out because both masks are empty there.
    pub both_empty: usize,
    /// Mean Dice.
    pub dice: Option<f64>,
    /// Mean IoU.
    pub iou: Option<f64>,
    /// Mean precision.
    pub precision: Option<f64>,
    /// Mean recall.
    pub recall: Option<f64>,
    /// Mean accuracy.
    pub accuracy: Option<f64>,
    /// Mean HD95 over the slices where it is defined.
    pub hd95_mm: Option<f64>,
    /// Mean ASSD over the slices where it is defined.
    pub assd_mm: Option<f64>,
}

/// Voxel (pixel) counts of a binary prediction against a binary truth, and the overlap ratios
/// derived from them: the **one** definition of Dice, IoU, precision, recall and accuracy.
/// [`Metrics`] (what `slicewise evaluate` reports) takes its ratios from here, and so does the
/// trainer's per-epoch CSV (`slicewise_train::metrics::Confusion` is this type), so both report
/// the same figures for the same masks.
///
/// # Empty-case conventions
/// * **Both masks empty** (TP + FP + FN = 0): Dice, IoU, precision and recall are 1. Nothing was
///   to be found and nothing was claimed: the prediction is perfect, and a perfect prediction
///   must not score 0 (nor NaN, which would poison means and comparisons).
/// * **Otherwise a ratio whose denominator is 0 is 0**: nothing predicted while the truth has
///   foreground gives precision 0 (as recall and Dice are 0, the prediction found nothing);
///   predictions on an empty truth give recall 0. This is sklearn's `zero_division=0` and what
///   `slicewise evaluate` documents and its independent reference (`tests/python/metrics_ref.py`)
///   computes. Scoring "nothing predicted" as precision 1 would reward a net that never fires.
/// * Accuracy is (TP + TN) / all; an empty grid (no voxels at all) has accuracy 1, like any
///   other case with nothing to get wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Foreground predicted and true (true positives).
    pub tp: u64,
    /// Foreground predicted, background true (false positives).
    pub fp: u64,
    /// Background predicted, foreground true (false negatives). JSON key `"fn"` (the field is
    /// `fn_` only because `fn` is a Rust keyword); `"fn_"`, what earlier cards and metrics files
    /// hold, is still read.
    #[serde(rename = "fn", alias = "fn_")]
    pub fn_: u64,
    /// Background predicted and true (true negatives).
    pub tn: u64,
}

impl Confusion {
    /// Counts pairs of (prediction, truth) decisions.
    pub fn of(pred: impl IntoIterator<Item = bool>, truth: impl IntoIterator<Item = bool>) -> Self {
        let mut c = [0u64; 4];
        for (p, t) in pred.into_iter().zip(truth) {
            c[(p as usize) << 1 | t as usize] += 1;
        }
        // index: pred<<1 | truth → 0 TN, 1 FN, 2 FP, 3 TP
        Confusion {
            tp: c[3],
            fp: c[2],
            fn_: c[1],
            tn: c[0],
        }
    }

    /// Adds one voxel.
    pub fn add(&mut self, pred: bool, truth: bool) {
        match (pred, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Adds another set of counts (pooling voxels).
    pub fn merge(&mut self, o: &Confusion) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }

    /// Neither mask has foreground (TP + FP + FN = 0).
    pub fn both_empty(&self) -> bool {
        self.tp + self.fp + self.fn_ == 0
    }

    /// All voxels counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// The ratio rule of every score: 1 when both masks are empty, otherwise `num / den`, 0 when
    /// `den` is 0 (see the type's conventions).
    fn ratio(&self, num: u64, den: u64) -> f64 {
        if self.both_empty() {
            1.0
        } else if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    }

    /// Dice = 2TP / (2TP + FP + FN); 1 when both masks are empty.
    pub fn dice(&self) -> f64 {
        self.ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// IoU (Jaccard) = TP / (TP + FP + FN); 1 when both masks are empty.
    pub fn iou(&self) -> f64 {
        self.ratio(self.tp, self.tp + self.fp + self.fn_)
    }

    /// Precision = TP / (TP + FP); 1 when both masks are empty, 0 when nothing is predicted but
    /// the truth has foreground.
    pub fn precision(&self) -> f64 {
        self.ratio(self.tp, self.tp + self.fp)
    }

    /// Recall (sensitivity) = TP / (TP + FN); 1 when both masks are empty, 0 when the truth is
    /// empty but something is predicted.
    pub fn recall(&self) -> f64 {
        self.ratio(self.tp, self.tp + self.fn_)
    }

    /// Accuracy = (TP + TN) / all voxels; 1 for an empty grid.
    pub fn accuracy(&self) -> f64 {
        match self.total() {
            0 => 1.0,
            all => (self.tp + self.tn) as f64 / all as f64,
        }
    }
}

impl Metrics {
    /// The counts these metrics were computed from.
    pub fn confusion(&self) -> Confusion {
        Confusion {
            tp: self.tp,
            fp: self.fp,
            fn_: self.fn_,
            tn: self.tn,
        }
    }
}

/// Metrics of a 3-D binary prediction against a truth on the same `[z, y, x]` grid.
/// `spacing` is in index-axis order `[x, y, z]` (as [`crate::Geometry::spacing`]), in mm.
///
/// # Panics
/// When the shapes differ (callers check geometry first).
pub fn volume(pred: ArrayView3<bool>, truth: ArrayView3<bool>, spacing: [f64; 3]) -> Metrics {
    assert_eq!(pred.shape(), truth.shape(), "metrics: shapes differ");
    let c = Confusion::of(pred.iter().copied(), truth.iter().copied());
    let zyx = [spacing[2], spacing[1], spacing[0]];
    let d = if c.tp + c.fp == 0 || c.tp + c.fn_ == 0 {
        None
    } else {
        let sp = surface3(pred);
        let st = surface3(truth);
        Some(symmetric_distances(
            directed3(&sp, &st, zyx),
            directed3(&st, &sp, zyx),
        ))
    };
    finish(c, d)
}

/// Per-slice 2-D metrics along the first array axis (z), one entry per slice.
pub fn per_slice(
    pred: ArrayView3<bool>,
    truth: ArrayView3<bool>,
    spacing: [f64; 3],
) -> Vec<Metrics> {
    assert_eq!(pred.shape(), truth.shape(), "metrics: shapes differ");
    pred.axis_iter(Axis(0))
        .zip(truth.axis_iter(Axis(0)))
        .map(|(p, t)| slice(p, t, [spacing[1], spacing[0]]))
        .collect()
}

/// Metrics of one 2-D slice `[y, x]`; `spacing_yx` is `[row spacing, column spacing]` in mm.
pub fn slice(pred: ArrayView2<bool>, truth: ArrayView2<bool>, spacing_yx: [f64; 2]) -> Metrics {
    let c = Confusion::of(pred.iter().copied(), truth.iter().copied());
    let d = if c.tp + c.fp == 0 || c.tp + c.fn_ == 0 {
        None
    } else {
        let sp = surface2(pred).insert_axis(Axis(0));
        let st = surface2(truth).insert_axis(Axis(0));
        let zyx = [1.0, spacing_yx[0], spacing_yx[1]];
        Some(symmetric_distances(
            directed3(&sp, &st, zyx),
            directed3(&st, &sp, zyx),
        ))
    };
    finish(c, d)
}

/// Means over slices that are not both empty (see the module's conventions).
pub fn slice_means(slices: &[Metrics]) -> SliceMeans {
    let used: Vec<&Metrics> = slices.iter().filter(|m| !m.both_empty).collect();
    let mean = |f: &dyn Fn(&Metrics) -> Option<f64>| {
        let v: Vec<f64> = used.iter().filter_map(|m| f(m)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    SliceMeans {
        slices: used.len(),
        both_empty: slices.len() - used.len(),
        dice: mean(&|m| Some(m.dice)),
        iou: mean(&|m| Some(m.iou)),
        precision: mean(&|m| Some(m.precision)),
        recall: mean(&|m| Some(m.recall)),
        accuracy: mean(&|m| Some(m.accuracy)),
        hd95_mm: mean(&|m| m.hd95_mm),
        assd_mm: mean(&|m| m.assd_mm),
    }
}

/// numpy's default (linear) percentile `q` (0..=100) of unsorted values; `None` when empty.
/// The one definition is [`crate::stats::percentile`].
pub use crate::stats::percentile;

/// Surface voxels of a 3-D mask: foreground with a background 6-neighbour (outside counts as
/// background).
pub fn surface3(mask: ArrayView3<bool>) -> Array3<bool> {
    let (nz, ny, nx) = mask.dim();
    Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        if !mask[[z, y, x]] {
            return false;
        }
        let bg = |dz: isize, dy: isize, dx: isize| -> bool {
            let (zz, yy, xx) = (z as isize + dz, y as isize + dy, x as isize + dx);
            if zz < 0
                || yy < 0
                || xx < 0
                || zz >= nz as isize
                || yy >= ny as isize
                || xx >= nx as isize
            {
                return true;
            }
            !mask[[zz as usize, yy as usize, xx as usize]]
        };
        bg(-1, 0, 0) || bg(1, 0, 0) || bg(0, -1, 0) || bg(0, 1, 0) || bg(0, 0, -1) || bg(0, 0, 1)
    })
}

/// Surface pixels of a 2-D mask: foreground with a background 4-neighbour (outside counts as
/// background).
pub fn surface2(mask: ArrayView2<bool>) -> Array2<bool> {
    let (ny, nx) = mask.dim();
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        if !mask[[y, x]] {
            return false;
        }
        let bg = |dy: isize, dx: isize| -> bool {
            let (yy, xx) = (y as isize + dy, x as isize + dx);
            if yy < 0 || xx < 0 || yy >= ny as isize || xx >= nx as isize {
                return true;
            }
            !mask[[yy as usize, xx as usize]]
        };
        bg(-1, 0) || bg(1, 0) || bg(0, -1) || bg(0, 1)
    })
}

/// Exact squared Euclidean distance (mm²) from every voxel to the nearest `true` voxel of
/// `sites`; `spacing_zyx` per array axis. Infinite everywhere when `sites` has no `true` voxel.
pub fn squared_edt(sites: ArrayView3<bool>, spacing_zyx: [f64; 3]) -> Array3<f64> {
    let mut d = sites.map(|&s| if s { 0.0 } else { f64::INFINITY });
    let mut f = Vec::new();
    let mut out = Vec::new();
    let mut v = Vec::new();
    let mut zb = Vec::new();
    for (axis, &s) in spacing_zyx.iter().enumerate() {
        for mut lane in d.lanes_mut(Axis(axis)) {
            f.clear();
            f.extend(lane.iter().copied());
            out.resize(f.len(), 0.0);
            edt_1d(&f, s, &mut out, &mut v, &mut zb);
            for (dst, &src) in lane.iter_mut().zip(out.iter()) {
                *dst = src;
            }
        }
    }
    d
}

/// One pass of the lower envelope of parabolas `f[q] + (s·(p − q))²` (Felzenszwalb &
/// Huttenlocher 2012), skipping infinite sites.
fn edt_1d(f: &[f64], s: f64, out: &mut [f64], v: &mut Vec<usize>, zb: &mut Vec<f64>) {
    v.clear();
    zb.clear();
    let pos = |q: usize| q as f64 * s;
    for q in 0..f.len() {
        if !f[q].is_finite() {
            continue;
        }
        loop {
            match v.last() {
                None => {
                    v.push(q);
                    zb.push(f64::NEG_INFINITY);
                    break;
                }
                Some(&r) => {
                    let (xq, xr) = (pos(q), pos(r));
                    let x = ((f[q] + xq * xq) - (f[r] + xr * xr)) / (2.0 * (xq - xr));
                    if x <= *zb.last().unwrap_or(&f64::NEG_INFINITY) {
                        v.pop();
                        zb.pop();
                    } else {
                        v.push(q);
                        zb.push(x);
                        break;
                    }
                }
            }
        }
    }
    if v.is_empty() {
        out.fill(f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (p, o) in out.iter_mut().enumerate() {
        let xp = pos(p);
        while k + 1 < v.len() && zb[k + 1] < xp {
            k += 1;
        }
        let dx = xp - pos(v[k]);
        *o = f[v[k]] + dx * dx;
    }
}

/// Distances (mm) from each `true` voxel of `from` to the nearest `true` voxel of `to`.
fn directed3(from: &Array3<bool>, to: &Array3<bool>, spacing_zyx: [f64; 3]) -> Vec<f64> {
    let d2 = squared_edt(to.view(), spacing_zyx);
    from.iter()
        .zip(d2.iter())
        .filter(|(f, _)| **f)
        .map(|(_, d)| d.sqrt())
        .collect()
}

fn symmetric_distances(mut a: Vec<f64>, mut b: Vec<f64>) -> (f64, f64) {
    let n = (a.len() + b.len()) as f64;
    let mean = (a.iter().sum::<f64>() + b.iter().sum::<f64>()) / n;
    let pa = percentile(&mut a, 95.0).unwrap_or(0.0);
    let pb = percentile(&mut b, 95.0).unwrap_or(0.0);
    (pa.max(pb), mean)
}

/// The counts' ratios (the one rule, [`Confusion`]'s) and the surface distances, when defined.
fn finish(c: Confusion, dist: Option<(f64, f64)>) -> Metrics {
    let both_empty = c.both_empty();
    // Both empty: the surfaces coincide (no distance at all).
    let dist = if both_empty { Some((0.0, 0.0)) } else { dist };
    Metrics {
        tp: c.tp,
        fp: c.fp,
        fn_: c.fn_,
        tn: c.tn,
        dice: c.dice(),
        iou: c.iou(),
        precision: c.precision(),
        recall: c.recall(),
        accuracy: c.accuracy(),
        hd95_mm: dist.map(|d| d.0),
        assd_mm: dist.map(|d| d.1),
        both_empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_json_key_is_fn_and_the_old_fn_underscore_still_reads() {
        let c = Confusion {
            tp: 1,
            fp: 2,
            fn_: 3,
            tn: 4,
        };
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"tp": 1, "fp": 2, "fn": 3, "tn": 4})
        );
        assert_eq!(serde_json::from_value::<Confusion>(json).unwrap(), c);
        let old = serde_json::json!({"tp": 1, "fp": 2, "fn_": 3, "tn": 4});
        assert_eq!(serde_json::from_value::<Confusion>(old).unwrap(), c);
    }

    fn grid(shape: (usize, usize, usize)) -> Array3<bool> {
        Array3::from_elem(shape, false)
    }

    #[test]
    fn two_points_distance_is_anisotropic_euclidean() {
        let mut a = grid((6, 7, 8));
        let mut b = grid((6, 7, 8));
        a[[1, 2, 3]] = true;
        b[[4, 6, 1]] = true;
        let sp = [0.5, 0.75, 2.5]; // x, y, z
        let m = volume(a.view(), b.view(), sp);
        let expect =
            ((2.0 * 0.5f64).powi(2) + (4.0 * 0.75f64).powi(2) + (3.0 * 2.5f64).powi(2)).sqrt();
        assert_eq!(m.hd95_mm, Some(expect));
        assert_eq!(m.assd_mm, Some(expect));
        assert_eq!((m.tp, m.fp, m.fn_), (0, 1, 1));
        assert_eq!(m.dice, 0.0);
    }

    #[test]
    fn parallel_planes_offset_by_k_slices_give_k_times_z_spacing() {
        let mut a = grid((12, 10, 9));
        let mut b = grid((12, 10, 9));
        for y in 2..8 {
            for x in 1..7 {
                a[[2, y, x]] = true;
                b[[7, y, x]] = true;
            }
        }
        let m = volume(a.view(), b.view(), [0.8, 1.1, 3.0]);
        assert_eq!(m.hd95_mm, Some(15.0));
        assert_eq!(m.assd_mm, Some(15.0));
    }

    #[test]
    fn both_empty_convention_and_exclusion_from_means() {
        let a = grid((3, 4, 4));
        let mut b = grid((3, 4, 4));
        b[[1, 1, 1]] = true;
        let s = per_slice(b.view(), b.view(), [1.0; 3]);
        assert!(s[0].both_empty && s[0].dice == 1.0 && s[0].hd95_mm == Some(0.0));
        assert!(!s[1].both_empty);
        let means = slice_means(&s);
        assert_eq!((means.slices, means.both_empty), (1, 2));
        assert_eq!(means.dice, Some(1.0));
        let one_empty = volume(a.view(), b.view(), [1.0; 3]);
        assert_eq!(
            (one_empty.dice, one_empty.precision, one_empty.hd95_mm),
            (0.0, 0.0, None)
        );
    }

    #[test]
    fn counts_and_overlap_ratios() {
        let mut a = grid((1, 1, 10));
        let mut b = grid((1, 1, 10));
        for x in 0..6 {
            a[[0, 0, x]] = true;
        }
        for x in 2..10 {
            b[[0, 0, x]] = true;
        }
        let m = volume(a.view(), b.view(), [1.0; 3]);
        assert_eq!((m.tp, m.fp, m.fn_, m.tn), (4, 2, 4, 0));
        assert_eq!(m.dice, 8.0 / 14.0);
        assert_eq!(m.iou, 4.0 / 10.0);
        assert_eq!(m.precision, 4.0 / 6.0);
        assert_eq!(m.recall, 0.5);
    }

    /// The trainer's CSV figures (`slicewise_train::metrics::Confusion`, this type, counted pixel
    /// by pixel with `add`) and `slicewise evaluate`'s (`volume` / `per_slice`) come from the same
    /// ratio functions, empty cases included.
    #[test]
    fn trainer_and_evaluate_figures_come_from_one_confusion() {
        let shape = (2, 3, 4);
        let mut cases = Vec::new();
        let empty = grid(shape);
        let mut some = grid(shape);
        some[[0, 1, 1]] = true;
        some[[1, 2, 3]] = true;
        let mut other = grid(shape);
        other[[0, 1, 1]] = true;
        other[[0, 0, 0]] = true;
        cases.push((empty.clone(), empty.clone())); // both empty
        cases.push((empty.clone(), some.clone())); // nothing predicted
        cases.push((some.clone(), empty.clone())); // empty truth
        cases.push((some.clone(), other.clone())); // partial overlap
        for (pred, truth) in &cases {
            // What the trainer does: one decision at a time.
            let mut trainer = Confusion::default();
            for (&p, &t) in pred.iter().zip(truth.iter()) {
                trainer.add(p, t);
            }
            let m = volume(pred.view(), truth.view(), [1.0; 3]);
            assert_eq!(m.confusion(), trainer);
            let figures =
                |c: &Confusion| [c.dice(), c.iou(), c.precision(), c.recall(), c.accuracy()];
            assert_eq!(
                [m.dice, m.iou, m.precision, m.recall, m.accuracy],
                figures(&trainer)
            );
            assert_eq!(m.both_empty, trainer.both_empty());
            // Per slice, and pooled over slices as the trainer pools batches.
            let mut pooled = Confusion::default();
            for s in per_slice(pred.view(), truth.view(), [1.0; 3]) {
                assert_eq!(
                    [s.dice, s.iou, s.precision, s.recall, s.accuracy],
                    figures(&s.confusion())
                );
                pooled.merge(&s.confusion());
            }
            assert_eq!(pooled, trainer);
        }
        // The conventions themselves.
        let both = Confusion::of(empty.iter().copied(), empty.iter().copied());
        assert_eq!(
            [both.dice(), both.iou(), both.precision(), both.recall()],
            [1.0; 4]
        );
        let none_predicted = Confusion::of(empty.iter().copied(), some.iter().copied());
        assert_eq!(
            (none_predicted.precision(), none_predicted.recall()),
            (0.0, 0.0)
        );
        assert_eq!(none_predicted.dice(), 0.0);
        let empty_truth = Confusion::of(some.iter().copied(), empty.iter().copied());
        assert_eq!((empty_truth.precision(), empty_truth.recall()), (0.0, 0.0));
        assert_eq!(Confusion::default().accuracy(), 1.0);
    }

    #[test]
    fn edt_matches_brute_force() {
        let mut s = grid((5, 6, 7));
        for &(z, y, x) in &[(0, 0, 0), (4, 5, 6), (2, 1, 5), (3, 3, 3)] {
            s[[z, y, x]] = true;
        }
        let sp = [2.0, 0.7, 1.3];
        let d = squared_edt(s.view(), sp);
        for ((z, y, x), &v) in d.indexed_iter() {
            let best = s
                .indexed_iter()
                .filter(|(_, &t)| t)
                .map(|((a, b, c), _)| {
                    let dz = (z as f64 - a as f64) * sp[0];
                    let dy = (y as f64 - b as f64) * sp[1];
                    let dx = (x as f64 - c as f64) * sp[2];
                    dz * dz + dy * dy + dx * dx
                })
                .fold(f64::INFINITY, f64::min);
            assert!((v - best).abs() < 1e-9, "at {z},{y},{x}: {v} vs {best}");
        }
    }
}
