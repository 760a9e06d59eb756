//! Slice preprocessing: channel pick, normalisation, resize to the model grid.
//!
//! Definitions (reproduced by `tests/python/engine_ref.py`):
//! * **Normalisation** maps a value `v` to `(clamp(v, lo, hi) - offset) * scale` in f32, with
//!   per-channel `lo, hi, offset, scale` computed in f64 over the finite voxels of the whole
//!   source channel (per slice for `minmax-slice`): min-max: `offset = min, scale = 1/(max-min)`;
//!   z-score: `offset = mean, scale = 1/std` (population std); percentile: `lo, hi` = numpy's
//!   default (linear) percentiles, `offset = lo, scale = 1/(hi-lo)`; window: `lo, hi = c ∓ w/2`,
//!   `offset = lo, scale = 1/w`; percentile-fg: the percentiles of the finite voxels above the
//!   channel's minimum `m`, and a voxel equal to `m` maps to 0; percentile-tissue: percentile-fg,
//!   then `scale = median / (t - lo)` with `t` numpy's median of the finite voxels percentile-fg
//!   maps above 0.1 (f32 arithmetic), unchanged when there are none. A zero range gives `scale = 0`
//!   (z-score: `scale = 1`). Non-finite voxels become 0.
//! * **Resize** is bilinear with half-pixel centres (align_corners = false, no antialiasing):
//!   output pixel `o` samples input coordinate `s = (o + 0.5) * in / out - 0.5`, clamped to
//!   `[0, in - 1]`; `i0 = floor(s)`, `i1 = min(i0 + 1, in - 1)`, `w = s - i0` (f64 coordinates,
//!   f32 weights); rows and columns the same way, `out = (1-wy)((1-wx)a00 + wx a01) + wy((1-wx)a10 + wx a11)`.
//! * **Keep aspect**: scale `s = min(H/rows, W/cols)`, resized size `round(rows s) × round(cols s)`
//!   (at least 1), placed at `((H-h)/2, (W-w)/2)` (integer division) on a zero canvas; the inverse
//!   crops that box and resizes it back.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Normalization;

/// Per-channel normalisation parameters: `(clamp(v, lo, hi) - offset) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelNorm {
    /// Lower clip.
    pub lo: f32,
    /// Upper clip.
    pub hi: f32,
    /// Subtracted after clipping.
    pub offset: f32,
    /// Multiplied last.
    pub scale: f32,
}

impl ChannelNorm {
    /// The identity.
    pub const IDENTITY: ChannelNorm = ChannelNorm {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
        offset: 0.0,
        scale: 1.0,
    };

    /// Normalises one value.
    #[inline]
    pub fn apply(&self, v: f32) -> f32 {
        if v.is_finite() {
            (v.clamp(self.lo, self.hi) - self.offset) * self.scale
        } else {
            0.0
        }
    }
}

fn minmax_norm(min: f64, max: f64) -> ChannelNorm {
    if !(min.is_finite() && max.is_finite()) {
        return ChannelNorm {
            offset: 0.0,
            scale: 0.0,
            ..ChannelNorm::IDENTITY
        };
    }
    let range = max - min;
    ChannelNorm {
        offset: min as f32,
        scale: if range > 0.0 {
            (1.0 / range) as f32
        } else {
            0.0
        },
        ..ChannelNorm::IDENTITY
    }
}

/// Min and max of the finite values (±inf when there are none).
pub fn min_max<'a>(values: impl Iterator<Item = &'a f32>) -> (f64, f64) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo as f64, hi as f64)
}

/// Volume-level normalisation of one source channel (`None` for `minmax-slice`, which is
/// computed per slice with [`slice_norm`]). `values` must be the channel's voxels; they are
/// walked a few times (percentiles: twice, after the minimum for `percentile-fg`), never copied.
pub fn volume_norm<'a, I>(n: &Normalization, values: I) -> Option<ChannelNorm>
where
    I: Iterator<Item = &'a f32> + Clone,
{
    Some(match *n {
        Normalization::None => ChannelNorm::IDENTITY,
        Normalization::MinMaxSlice => return None,
        Normalization::MinMaxVolume => {
            let (lo, hi) = min_max(values);
            minmax_norm(lo, hi)
        }
        Normalization::ZScore => {
            let (mut n, mut sum) = (0u64, 0f64);
            for &v in values.clone() {
                if v.is_finite() {
                    n += 1;
                    sum += v as f64;
                }
            }
            if n == 0 {
                return Some(ChannelNorm {
                    scale: 0.0,
                    ..ChannelNorm::IDENTITY
                });
            }
            let mean = sum / n as f64;
            let mut ss = 0f64;
            for &v in values {
                if v.is_finite() {
                    let d = v as f64 - mean;
                    ss += d * d;
                }
            }
            let std = (ss / n as f64).sqrt();
            ChannelNorm {
                offset: mean as f32,
                scale: if std > 0.0 { (1.0 / std) as f32 } else { 1.0 },
                ..ChannelNorm::IDENTITY
            }
        }
        Normalization::Percentile { lower, upper } => {
            percentile_norm(values, |v| v.is_finite(), lower, upper)
        }
        Normalization::PercentileForeground { lower, upper } => {
            foreground_norm(values, lower, upper)
        }
        Normalization::PercentileTissue {
            lower,
            upper,
            median,
        } => tissue_norm(
            values.clone(),
            foreground_norm(values, lower, upper),
            median,
        ),
        Normalization::Window { center, width } => {
            let lo = center as f64 - width as f64 / 2.0;
            ChannelNorm {
                lo: lo as f32,
                hi: (center as f64 + width as f64 / 2.0) as f32,
                offset: lo as f32,
                scale: (1.0 / width as f64) as f32,
            }
        }
    })
}

/// Normalised level above which a voxel counts as tissue for `percentile-tissue` (the same value
/// as the bundled tumour model's `crop_foreground` and the trainer's head level for skull
/// stripping, each of which is set on its own).
pub const TISSUE_LEVEL: f32 = 0.1;

/// `percentile-fg`: the percentiles of the finite values above the minimum.
fn foreground_norm<'a, I>(values: I, lower: f32, upper: f32) -> ChannelNorm
where
    I: Iterator<Item = &'a f32> + Clone,
{
    let (min, _) = min_max(values.clone());
    let min = min as f32;
    // The minimum lies below the lower clip, so the background maps to exactly 0.
    percentile_norm(values, |v| v.is_finite() && v > min, lower, upper)
}

/// `percentile-tissue`: `fg` rescaled so that the median `t` of the values `fg` maps above
/// [`TISSUE_LEVEL`] maps to `median`: `scale = median / (t - lo)`. Without tissue (or with
/// its median at the lower clip) `fg` is returned unchanged.
fn tissue_norm<'a, I>(values: I, fg: ChannelNorm, median: f32) -> ChannelNorm
where
    I: Iterator<Item = &'a f32> + Clone,
{
    let keep = |v: f32| v.is_finite() && fg.apply(v) > TISSUE_LEVEL;
    match percentiles(values, keep, 50.0, 50.0) {
        Some((t, _)) if t > fg.offset as f64 => ChannelNorm {
            scale: (median as f64 / (t - fg.offset as f64)) as f32,
            ..fg
        },
        _ => fg,
    }
}

/// Clip to the `lower`/`upper` percentiles of the values that pass `keep` (finite ones) and
/// scale to [0, 1]. The percentiles are [`crate::stats::percentile`]'s, bit for bit, selected by
/// [`select_ranks`] without copying the values.
fn percentile_norm<'a, I>(
    values: I,
    keep: impl Fn(f32) -> bool,
    lower: f32,
    upper: f32,
) -> ChannelNorm
where
    I: Iterator<Item = &'a f32> + Clone,
{
    let Some((lo, hi)) = percentiles(values, keep, lower, upper) else {
        return ChannelNorm {
            scale: 0.0,
            ..ChannelNorm::IDENTITY
        };
    };
    let range = hi - lo;
    ChannelNorm {
        lo: lo as f32,
        hi: hi as f32,
        offset: lo as f32,
        scale: if range > 0.0 {
            (1.0 / range) as f32
        } else {
            0.0
        },
    }
}

/// numpy's `lower` and `upper` percentiles of the values that pass `keep` (None when none
/// does), selected by [`select_ranks`] without copying the values.
fn percentiles<'a, I>(
    values: I,
    keep: impl Fn(f32) -> bool,
    lower: f32,
    upper: f32,
) -> Option<(f64, f64)>
where
    I: Iterator<Item = &'a f32> + Clone,
{
    let hist = HighHistogram::of(values.clone(), &keep);
    if hist.n == 0 {
        return None;
    }
    let (plo, phi) = (
        Interpolation::new(hist.n, lower),
        Interpolation::new(hist.n, upper),
    );
    let ranks = [plo.k, plo.k + 1, phi.k, phi.k + 1].map(|r| r.min(hist.n - 1));
    let [a0, a1, b0, b1] = select_ranks(values, &keep, &hist, ranks);
    Some((plo.value(a0, a1), phi.value(b0, b1)))
}

/// numpy's linear percentile `q` of `n` sorted values as [`crate::stats::percentile`] computes
/// it: the `k`-th smallest value `a`, the `k+1`-th `b`, `a + (b − a) · frac`.
struct Interpolation {
    k: usize,
    frac: f64,
}

impl Interpolation {
    fn new(n: usize, q: f32) -> Interpolation {
        let pos = (q as f64 / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
        let k = pos.floor() as usize;
        Interpolation {
            k,
            frac: pos - k as f64,
        }
    }

    /// The percentile from the `k`-th and `k+1`-th smallest values (`b` unused when `frac` is 0,
    /// as it is whenever `k` is the last rank).
    fn value(&self, a: f32, b: f32) -> f64 {
        let a = a as f64;
        if self.frac != 0.0 {
            a + (b as f64 - a) * self.frac
        } else {
            a
        }
    }
}

/// An f32's position in IEEE 754 `totalOrder` ([`f32::total_cmp`]) as an unsigned key: keys
/// compare as the floats do.
fn order_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The float of an [`order_key`].
fn from_order_key(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// Counts of the kept values by the high 16 bits of their [`order_key`]: the first pass of a
/// two-pass radix selection (a 512 KiB table instead of a copy of the volume).
struct HighHistogram {
    counts: Vec<u64>,
    n: usize,
}

impl HighHistogram {
    fn of<'a>(values: impl Iterator<Item = &'a f32>, keep: &impl Fn(f32) -> bool) -> Self {
        let mut counts = vec![0u64; 1 << 16];
        for &v in values {
            if keep(v) {
                counts[(order_key(v) >> 16) as usize] += 1;
            }
        }
        let n = counts.iter().sum::<u64>() as usize;
        HighHistogram { counts, n }
    }

    /// The high-16-bit bucket holding the value of rank `r` (0-based, ascending), and `r`'s
    /// rank within that bucket.
    fn bucket_of(&self, r: usize) -> (u32, usize) {
        let mut below = 0usize;
        for (bucket, &c) in self.counts.iter().enumerate() {
            let c = c as usize;
            if r < below + c {
                return (bucket as u32, r - below);
            }
            below += c;
        }
        unreachable!("rank {r} of {} values", self.n)
    }
}

/// The kept values of ranks `ranks` (0-based, ascending order, each below `hist.n`): exactly the
/// values a sort by [`f32::total_cmp`] puts there. The second pass counts the low 16 bits of
/// the values in the (at most four) buckets the ranks fall in.
fn select_ranks<'a, const R: usize>(
    values: impl Iterator<Item = &'a f32>,
    keep: &impl Fn(f32) -> bool,
    hist: &HighHistogram,
    ranks: [usize; R],
) -> [f32; R] {
    let targets = ranks.map(|r| hist.bucket_of(r));
    let mut buckets: Vec<u32> = targets.iter().map(|t| t.0).collect();
    buckets.sort_unstable();
    buckets.dedup();
    let mut low = vec![vec![0u64; 1 << 16]; buckets.len()];
    for &v in values {
        if keep(v) {
            let key = order_key(v);
            if let Some(i) = buckets.iter().position(|&b| b == key >> 16) {
                low[i][(key & 0xffff) as usize] += 1;
            }
        }
    }
    targets.map(|(bucket, r)| {
        let counts = &low[buckets.iter().position(|&b| b == bucket).unwrap_or(0)];
        let mut below = 0usize;
        let mut low_bits = 0u32;
        for (bits, &c) in counts.iter().enumerate() {
            below += c as usize;
            if r < below {
                low_bits = bits as u32;
                break;
            }
        }
        from_order_key((bucket << 16) | low_bits)
    })
}

/// Per-slice min-max normalisation.
pub fn slice_norm(slice: ArrayView2<f32>) -> ChannelNorm {
    let (lo, hi) = min_max(slice.iter());
    minmax_norm(lo, hi)
}

/// Precomputed sampling positions along one axis.
#[derive(Debug, Clone)]
pub struct Axis1d {
    i0: Vec<usize>,
    i1: Vec<usize>,
    w: Vec<f32>,
}

impl Axis1d {
    /// Sampling of an `n_in` axis onto `n_out` outputs (both > 0).
    pub fn new(n_in: usize, n_out: usize) -> Axis1d {
        let ratio = n_in as f64 / n_out as f64;
        let mut a = Axis1d {
            i0: Vec::with_capacity(n_out),
            i1: Vec::with_capacity(n_out),
            w: Vec::with_capacity(n_out),
        };
        for o in 0..n_out {
            let s = ((o as f64 + 0.5) * ratio - 0.5).clamp(0.0, (n_in - 1) as f64);
            let i0 = s.floor() as usize;
            a.i0.push(i0);
            a.i1.push((i0 + 1).min(n_in - 1));
            a.w.push((s - i0 as f64) as f32);
        }
        a
    }
}

/// A resize plan from a `rows × cols` grid to an `out_rows × out_cols` grid.
#[derive(Debug, Clone)]
pub struct Resize {
    rows: Axis1d,
    cols: Axis1d,
}

impl Resize {
    /// Plans a resize.
    pub fn new(in_rows: usize, in_cols: usize, out_rows: usize, out_cols: usize) -> Resize {
        Resize {
            rows: Axis1d::new(in_rows, out_rows),
            cols: Axis1d::new(in_cols, out_cols),
        }
    }

    /// Resizes `src` into `dst`, mapping each source value through `f` first.
    pub fn run(&self, src: ArrayView2<f32>, mut dst: ArrayViewMut2<f32>, f: impl Fn(f32) -> f32) {
        let cols = &self.cols;
        for (r, mut out_row) in dst.outer_iter_mut().enumerate() {
            let (r0, r1, wy) = (self.rows.i0[r], self.rows.i1[r], self.rows.w[r]);
            let a = src.row(r0);
            let b = src.row(r1);
            for (c, o) in out_row.iter_mut().enumerate() {
                let (c0, c1, wx) = (cols.i0[c], cols.i1[c], cols.w[c]);
                let top = (1.0 - wx) * f(a[c0]) + wx * f(a[c1]);
                let bot = (1.0 - wx) * f(b[c0]) + wx * f(b[c1]);
                *o = (1.0 - wy) * top + wy * bot;
            }
        }
    }
}

/// Where a slice lands on the model canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Top row of the resized slice on the canvas.
    pub top: usize,
    /// Left column.
    pub left: usize,
    /// Resized height.
    pub height: usize,
    /// Resized width.
    pub width: usize,
}

impl Placement {
    /// The placement of a `rows × cols` slice on an `h × w` canvas.
    pub fn new(rows: usize, cols: usize, h: usize, w: usize, keep_aspect: bool) -> Placement {
        if !keep_aspect {
            return Placement {
                top: 0,
                left: 0,
                height: h,
                width: w,
            };
        }
        let s = (h as f64 / rows as f64).min(w as f64 / cols as f64);
        let height = ((rows as f64 * s).round() as usize).clamp(1, h);
        let width = ((cols as f64 * s).round() as usize).clamp(1, w);
        Placement {
            top: (h - height) / 2,
            left: (w - width) / 2,
            height,
            width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn resize_matches_half_pixel_definition() {
        // 2 -> 4 along columns: sample points -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        let src = array![[0.0f32, 4.0]];
        let mut dst = Array2::zeros((1, 4));
        Resize::new(1, 2, 1, 4).run(src.view(), dst.view_mut(), |v| v);
        assert_eq!(dst, array![[0.0, 1.0, 3.0, 4.0]]);
    }

    /// The clip range of copying the kept values and selecting in them (the definition), as
    /// bits; the identity's when none is kept.
    fn copied_clip(
        values: &[f32],
        keep: impl Fn(f32) -> bool,
        lower: f32,
        upper: f32,
    ) -> (u32, u32) {
        let mut v: Vec<f32> = values.iter().copied().filter(|&v| keep(v)).collect();
        match (
            crate::stats::percentile(&mut v, lower as f64),
            crate::stats::percentile(&mut v, upper as f64),
        ) {
            (Some(lo), Some(hi)) => ((lo as f32).to_bits(), (hi as f32).to_bits()),
            _ => (f32::NEG_INFINITY.to_bits(), f32::INFINITY.to_bits()),
        }
    }

    fn clip_bits(n: ChannelNorm) -> (u32, u32) {
        (n.lo.to_bits(), n.hi.to_bits())
    }

    /// Pseudo-random samples with many ties, both zeros, negatives, NaN and infinities.
    fn awkward_values(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (x >> 33) as u32;
                match u % 16 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f32::NAN,
                    3 => f32::INFINITY,
                    4 => f32::NEG_INFINITY,
                    5 => (u % 7) as f32,
                    6 => f32::MIN_POSITIVE / 2.0,
                    _ => (u as f32 / u32::MAX as f32 - 0.3) * 2000.0,
                }
            })
            .collect()
    }

    #[test]
    fn percentiles_without_a_copy_equal_the_copied_selection_bit_for_bit() {
        for (seed, n) in [(1, 1), (2, 2), (3, 7), (4, 100), (5, 1000), (6, 54321)] {
            let v = awkward_values(seed, n);
            let min = v
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f32::INFINITY, f32::min);
            for (lower, upper) in [(0.5, 99.5), (0.0, 100.0), (1.0, 99.0), (37.3, 62.9)] {
                let all = Normalization::Percentile { lower, upper };
                let got = volume_norm(&all, v.iter()).map(clip_bits);
                let want = copied_clip(&v, |x| x.is_finite(), lower, upper);
                assert_eq!(got, Some(want), "n {n}, {lower}..{upper}");
                let fg = Normalization::PercentileForeground { lower, upper };
                let got = volume_norm(&fg, v.iter()).map(clip_bits);
                let want = copied_clip(&v, |x| x.is_finite() && x > min, lower, upper);
                assert_eq!(got, Some(want), "foreground, n {n}, {lower}..{upper}");
            }
        }
    }

    #[test]
    fn percentiles_of_no_finite_values_scale_to_zero() {
        let v = [f32::NAN, f32::INFINITY];
        let n = volume_norm(
            &Normalization::Percentile {
                lower: 1.0,
                upper: 99.0,
            },
            v.iter(),
        );
        assert_eq!(n.map(|n| n.scale), Some(0.0));
    }

    #[test]
    fn order_keys_sort_as_total_cmp() {
        let mut v = awkward_values(9, 500);
        v.sort_by(f32::total_cmp);
        let keys: Vec<u32> = v.iter().map(|&x| order_key(x)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        assert!(v
            .iter()
            .all(|&x| from_order_key(order_key(x)).to_bits() == x.to_bits()));
    }

    #[test]
    fn keep_aspect_placement_is_centred() {
        let p = Placement::new(100, 200, 64, 64, true);
        assert_eq!(
            p,
            Placement {
                top: 16,
                left: 0,
                height: 32,
                width: 64
            }
        );
    }
}
