//! Order statistics shared by the engine's normalisation ([`crate::infer::preprocess`]) and the
//! evaluation metrics ([`crate::metrics`]): one definition of a percentile.

use std::cmp::Ordering;

/// A float sample with a total order (IEEE 754 `totalOrder`), widened to f64 for arithmetic.
pub trait Sample: Copy + Into<f64> {
    /// The total order of [`f32::total_cmp`] / [`f64::total_cmp`].
    fn total_cmp(&self, other: &Self) -> Ordering;
}

impl Sample for f32 {
    fn total_cmp(&self, other: &Self) -> Ordering {
        f32::total_cmp(self, other)
    }
}

impl Sample for f64 {
    fn total_cmp(&self, other: &Self) -> Ordering {
        f64::total_cmp(self, other)
    }
}

/// numpy's default (`linear`) percentile `q` (0..=100; clamped) of `values`, computed in f64:
/// with `pos = q / 100 · (n − 1)`, `k = ⌊pos⌋`, the `k`-th and `k+1`-th smallest values `a`, `b`
/// give `a + (b − a) · (pos − k)`. `values` are reordered in place (a selection, not a full sort);
/// `None` when empty.
pub fn percentile<T: Sample>(values: &mut [T], q: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let k = pos.floor() as usize;
    let frac = pos - k as f64;
    let (_, &mut a, rest) = values.select_nth_unstable_by(k, T::total_cmp);
    let a: f64 = a.into();
    match rest.iter().copied().min_by(T::total_cmp) {
        Some(b) if frac != 0.0 => Some(a + (b.into() - a) * frac),
        _ => Some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_numpy_linear() {
        // f32 samples (the normalisation's voxels).
        let mut v: Vec<f32> = (0..11).map(|i| i as f32).rev().collect();
        assert_eq!(percentile(&mut v, 50.0), Some(5.0));
        assert!((percentile(&mut v, 25.0).unwrap() - 2.5).abs() < 1e-12);
        let mut w = vec![1.0f32, 2.0, 3.0, 4.0];
        assert!((percentile(&mut w, 10.0).unwrap() - 1.3).abs() < 1e-6);
        // f64 samples (the metrics' surface distances).
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert!((percentile(&mut v, 95.0).unwrap_or(0.0) - 3.85).abs() < 1e-12);
        assert_eq!(percentile::<f64>(&mut [], 95.0), None);
    }

    #[test]
    fn percentile_ends_are_the_extremes() {
        let mut v = vec![3.0f64, -1.0, 7.5, 2.0];
        assert_eq!(percentile(&mut v, 0.0), Some(-1.0));
        assert_eq!(percentile(&mut v, 100.0), Some(7.5));
        assert_eq!(percentile(&mut [4.0f32], 37.0), Some(4.0));
    }
}
