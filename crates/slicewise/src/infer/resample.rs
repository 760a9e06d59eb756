//! Resampling with nnU-Net's semantics, one plane at a time.
//!
//! nnU-Net (2.8.1, `preprocessing/resampling/default_resampling.py`) resamples images with
//! scikit-image's `resize(order, mode='edge', anti_aliasing=False)` and, when the spacing is
//! anisotropic, "separately": per plane, then along the coarse axis with
//! `scipy.ndimage.map_coordinates(order_z, mode='nearest')`. A model that was trained on data
//! resampled that way gives other results on data resampled any other way, so this module
//! reproduces it exactly (to ~1e-14 in f64) rather than approximately:
//! - the output index `o` samples the input at `(o + 0.5) · n_in / n_out − 0.5` (skimage's
//!   `grid_mode`);
//! - order 3 is a cubic B-spline: the input is padded with 12 edge copies per side, prefiltered
//!   (pole √3 − 2, scipy's mirror initialisation) and evaluated with the cubic B-spline weights;
//!   the result is clipped to the range of what skimage received (`clip=True`): the whole channel
//!   volume when resampling is not separate, each plane when it is;
//! - orders 0 and 1 are nearest and linear with edge clamping (no clipping needed).
//!
//! The slice axis (a0) of a 2-D configuration is never resampled (its new size is always its old
//! one), so every case reduces to per-plane work: [`PlaneResampler`] precomputes the taps and
//! the clip ranges once per volume and then resamples the planes one by one, so a caller can
//! stream a volume without float copies of it. The computation is in f64, as skimage's.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, Axis};

use crate::error::{Error, Result};

/// Edge copies skimage/scipy pad on each side before the spline prefilter.
const SPLINE_PAD: usize = 12;

/// Spline order of a resampling (nnU-Net's `order` / `order_z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Order 0: the nearest sample.
    Nearest,
    /// Order 1: linear interpolation.
    Linear,
    /// Order 3: cubic B-spline interpolation.
    Cubic,
}

impl Order {
    /// The order nnU-Net's plans name by its integer; 2, 4 and 5 are refused.
    pub fn from_int(order: i64) -> std::result::Result<Order, String> {
        match order {
            0 => Ok(Order::Nearest),
            1 => Ok(Order::Linear),
            3 => Ok(Order::Cubic),
            o => Err(format!("resampling order {o} is not supported (0, 1 or 3)")),
        }
    }

    /// The order as an integer.
    pub fn as_int(self) -> u8 {
        match self {
            Order::Nearest => 0,
            Order::Linear => 1,
            Order::Cubic => 3,
        }
    }
}

/// nnU-Net's `compute_new_shape`: `round(old_spacing / new_spacing · old_n)` per axis, in f64,
/// rounding half to even as Python's `round` does.
pub fn new_shape(
    old_spacing: [f64; 3],
    new_spacing: [f64; 3],
    old_shape: [usize; 3],
) -> [usize; 3] {
    let mut out = [0; 3];
    for k in 0..3 {
        let n = old_spacing[k] / new_spacing[k] * old_shape[k] as f64;
        out[k] = n.round_ties_even().max(0.0) as usize;
    }
    out
}

/// nnU-Net's `determine_do_sep_z_and_axis`: `Some(axis)` when resampling runs per plane
/// orthogonal to `axis` and then along `axis` with `order_z`. `force` overrides the anisotropy
/// test (`max/min > threshold` on the current spacing, then on the new one); two or three axes
/// tied at the largest spacing mean no separate axis.
pub fn separate_axis(
    current: [f64; 3],
    new: [f64; 3],
    threshold: f64,
    force: Option<bool>,
) -> Option<usize> {
    let anisotropic = |s: [f64; 3]| max3(s) / min3(s) > threshold;
    let candidates = match force {
        Some(false) => return None,
        Some(true) => lowres_axes(current),
        None if anisotropic(current) => lowres_axes(current),
        None if anisotropic(new) => lowres_axes(new),
        None => return None,
    };
    match candidates.as_slice() {
        [axis] => Some(*axis),
        _ => None,
    }
}

fn max3(s: [f64; 3]) -> f64 {
    s[0].max(s[1]).max(s[2])
}

fn min3(s: [f64; 3]) -> f64 {
    s[0].min(s[1]).min(s[2])
}

/// The axes whose spacing equals the largest (`max / s == 1` in nnU-Net's words).
fn lowres_axes(s: [f64; 3]) -> Vec<usize> {
    let m = max3(s);
    (0..3).filter(|&k| m / s[k] == 1.0).collect()
}

/// For one axis resampled from `n_in` to `n_out` samples: each output's first input index and its
/// weights (1, 2 or 4 taps by order). For order 3 the indices address the padded, prefiltered
/// coefficients.
#[derive(Debug, Clone)]
struct Taps {
    order: Order,
    n_in: usize,
    first: Vec<usize>,
    weights: Vec<[f64; 4]>,
}

impl Taps {
    fn new(n_in: usize, n_out: usize, order: Order) -> Taps {
        let scale = n_in as f64 / n_out as f64;
        let mut first = Vec::with_capacity(n_out);
        let mut weights = Vec::with_capacity(n_out);
        let last = n_in as isize - 1;
        for o in 0..n_out {
            let x = (o as f64 + 0.5) * scale - 0.5;
            let (i, w) = match order {
                // scipy's order 0 rounds with floor(x + 0.5); `mode='nearest'` clamps.
                Order::Nearest => ((x + 0.5).floor() as isize, [1.0, 0.0, 0.0, 0.0]),
                Order::Linear => {
                    let f = x.floor();
                    (f as isize, [1.0 - (x - f), x - f, 0.0, 0.0])
                }
                Order::Cubic => {
                    let x = x + SPLINE_PAD as f64;
                    let f = x.floor();
                    (f as isize - 1, cubic_weights(x - f))
                }
            };
            match order {
                Order::Cubic => {
                    let hi = (n_in + 2 * SPLINE_PAD) as isize - 4;
                    first.push(i.clamp(0, hi.max(0)) as usize);
                }
                Order::Nearest => first.push(i.clamp(0, last) as usize),
                // Linear keeps the unclamped floor's two neighbours, each clamped on use.
                Order::Linear => first.push((i + 1).clamp(0, n_in as isize) as usize),
            }
            weights.push(w);
        }
        Taps {
            order,
            n_in,
            first,
            weights,
        }
    }

    fn n_out(&self) -> usize {
        self.first.len()
    }

    /// Output `o` from a line of samples (order 0/1) or padded coefficients (order 3).
    #[inline]
    fn eval(&self, o: usize, line: &impl Fn(usize) -> f64) -> f64 {
        let w = &self.weights[o];
        let i = self.first[o];
        match self.order {
            Order::Nearest => line(i),
            Order::Linear => {
                // `first` is floor(x) + 1 clamped to 0..=n; the taps are floor(x) and floor(x)+1.
                let hi = i.min(self.n_in - 1);
                let lo = i.saturating_sub(1).min(self.n_in - 1);
                w[0] * line(lo) + w[1] * line(hi)
            }
            Order::Cubic => {
                w[0] * line(i) + w[1] * line(i + 1) + w[2] * line(i + 2) + w[3] * line(i + 3)
            }
        }
    }
}

/// The cubic B-spline weights of the four nodes around `x = floor(x) + t` (scipy's
/// `get_spline_interpolation_weights`, order 3).
fn cubic_weights(t: f64) -> [f64; 4] {
    let z = 1.0 - t;
    let w1 = (t * t * (t - 2.0) * 3.0 + 4.0) / 6.0;
    let w2 = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
    let w0 = z * z * z / 6.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// scipy's order-3 spline prefilter of one line in place (gain 6, pole √3 − 2, the mirror
/// initialisation `mode='nearest'` uses).
fn prefilter_line(mut c: ArrayViewMut1<f64>) {
    let n = c.len();
    if n < 2 {
        return;
    }
    let z = 3f64.sqrt() - 2.0;
    c.mapv_inplace(|v| v * (1.0 - z) * (1.0 - 1.0 / z));
    let z_n = z.powi(n as i32);
    let c0 = c[0];
    let mut sum = c[0] + z_n * c[n - 1];
    let mut z_i = z;
    for i in 1..n {
        sum += z_i * (c[i] + z_n * c[n - 1 - i]);
        z_i *= z;
    }
    c[0] = sum * z / (1.0 - z_n * z_n) + c0;
    for i in 1..n {
        let prev = c[i - 1];
        c[i] += z * prev;
    }
    c[n - 1] *= z / (z - 1.0);
    for i in (0..n - 1).rev() {
        let next = c[i + 1];
        c[i] = z * (next - c[i]);
    }
}

/// The plane padded with `SPLINE_PAD` edge copies per side and prefiltered along both axes.
fn spline_coefficients(src: ArrayView2<f64>) -> Array2<f64> {
    let (rows, cols) = src.dim();
    let p = SPLINE_PAD;
    let mut c = Array2::<f64>::zeros((rows + 2 * p, cols + 2 * p));
    for ((r, k), v) in c.indexed_iter_mut() {
        *v = src[[
            r.saturating_sub(p).min(rows - 1),
            k.saturating_sub(p).min(cols - 1),
        ]];
    }
    for line in c.lanes_mut(Axis(1)) {
        prefilter_line(line);
    }
    for line in c.lanes_mut(Axis(0)) {
        prefilter_line(line);
    }
    c
}

/// Separable evaluation: `cols` along axis 1, then `rows` along axis 0.
fn eval_plane(src: ArrayView2<f64>, rows: &Taps, cols: &Taps) -> Array2<f64> {
    let mut tmp = Array2::<f64>::zeros((src.nrows(), cols.n_out()));
    for (line, mut out) in src.outer_iter().zip(tmp.outer_iter_mut()) {
        let at = |i: usize| line[i];
        for (o, v) in out.iter_mut().enumerate() {
            *v = cols.eval(o, &at);
        }
    }
    let mut out = Array2::<f64>::zeros((rows.n_out(), cols.n_out()));
    for (k, column) in tmp.axis_iter(Axis(1)).enumerate() {
        let at = |i: usize| column[i];
        for o in 0..rows.n_out() {
            out[[o, k]] = rows.eval(o, &at);
        }
    }
    out
}

/// `skimage.transform.resize(src, out, order, mode='edge', anti_aliasing=False)` of one plane, in
/// f64, then clipped to `clip` when given (skimage clips to its input's range; a caller resampling
/// a plane of a larger array passes that array's range, as skimage saw it).
pub fn resize_plane(
    src: ArrayView2<f64>,
    out: (usize, usize),
    order: Order,
    clip: Option<(f64, f64)>,
) -> Array2<f64> {
    let (rows, cols) = src.dim();
    if rows == 0 || cols == 0 || out.0 == 0 || out.1 == 0 {
        return Array2::zeros(out);
    }
    let rt = Taps::new(rows, out.0, order);
    let ct = Taps::new(cols, out.1, order);
    resize_on(src, &rt, &ct, clip)
}

/// [`resize_plane`] on taps computed once (their order says whether to prefilter): evaluated
/// separably, then clipped to `clip` when given.
fn resize_on(
    src: ArrayView2<f64>,
    rows: &Taps,
    cols: &Taps,
    clip: Option<(f64, f64)>,
) -> Array2<f64> {
    let mut res = match rows.order {
        Order::Cubic => eval_plane(spline_coefficients(src).view(), rows, cols),
        _ => eval_plane(src, rows, cols),
    };
    if let Some((lo, hi)) = clip {
        res.mapv_inplace(|v| v.clamp(lo, hi));
    }
    res
}

/// The finite minimum and maximum of some values (`None` when there are none).
fn finite_range<'a>(values: impl Iterator<Item = &'a f32>) -> Option<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for &v in values.filter(|v| v.is_finite()) {
        let v = v as f64;
        range = Some(match range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
    range
}

/// Where skimage's clip range comes from.
#[derive(Debug, Clone)]
enum Clip {
    /// No clipping (orders 0 and 1 never leave their input's range).
    None,
    /// One range for every plane (the whole channel volume went to skimage at once).
    Whole(Option<(f64, f64)>),
    /// Each plane's own range (separate along a0: skimage saw one plane at a time).
    PerPlane,
}

/// How planes are resampled.
#[derive(Debug, Clone)]
enum Plan {
    /// The shapes are equal: nnU-Net returns the data untouched.
    Identity,
    /// Both in-plane axes resampled together, by skimage on a plane or on the whole volume.
    InPlane { rows: Taps, cols: Taps, clip: Clip },
    /// Separate along in-plane axis `axis` (1 or 2): skimage on the planes orthogonal to it (a
    /// 1-D resize of each line along the other in-plane axis, clipped to that orthogonal plane's
    /// range), then `map_coordinates(order_z, mode='nearest')` along `axis`.
    Lowres {
        axis: usize,
        line: Taps,
        z: Taps,
        clip: Vec<Option<(f64, f64)>>,
        cubic: bool,
    },
}

/// Resamples the a0-planes of a volume `[a0, a1, a2]` to `[a0, out1, out2]` the way nnU-Net's
/// `resample_data_or_seg` does for one channel, one plane at a time (see the module docs).
#[derive(Debug, Clone)]
pub struct PlaneResampler {
    in_shape: [usize; 3],
    out: [usize; 3],
    plan: Plan,
}

impl PlaneResampler {
    /// For image data: the clip ranges skimage would use are taken from `volume` (the whole
    /// channel when not separate; each a0-plane when separate along a0; each plane orthogonal to
    /// the coarse in-plane axis otherwise). `separate` is [`separate_axis`]'s answer.
    pub fn for_volume(
        volume: ArrayView3<f32>,
        out: [usize; 3],
        order: Order,
        order_z: Order,
        separate: Option<usize>,
    ) -> Result<PlaneResampler> {
        let in_shape: [usize; 3] = volume.dim().into();
        let mut r = PlaneResampler::for_shape_any(in_shape, out, order, order_z, separate)?;
        if order == Order::Cubic {
            match &mut r.plan {
                Plan::InPlane { clip, .. } => {
                    *clip = match separate {
                        Some(0) => Clip::PerPlane,
                        _ => Clip::Whole(finite_range(volume.iter())),
                    }
                }
                Plan::Lowres {
                    axis, clip, cubic, ..
                } => {
                    *cubic = true;
                    *clip = volume
                        .axis_iter(Axis(*axis))
                        .map(|p| finite_range(p.iter()))
                        .collect();
                }
                Plan::Identity => {}
            }
        }
        Ok(r)
    }

    /// For values streamed plane by plane without the whole volume (logits): the shapes alone.
    /// `order` must be nearest or linear, which never leave their input's range, so that no
    /// clip range is needed.
    pub fn for_shape(
        in_shape: [usize; 3],
        out: [usize; 3],
        order: Order,
        order_z: Order,
        separate: Option<usize>,
    ) -> Result<PlaneResampler> {
        if order == Order::Cubic {
            return Err(Error::InvalidArgument(
                "resampling planes without their volume needs order 0 or 1 (order 3 clips to the \
                 volume's range)"
                    .into(),
            ));
        }
        PlaneResampler::for_shape_any(in_shape, out, order, order_z, separate)
    }

    fn for_shape_any(
        in_shape: [usize; 3],
        out: [usize; 3],
        order: Order,
        order_z: Order,
        separate: Option<usize>,
    ) -> Result<PlaneResampler> {
        if in_shape[0] != out[0] {
            return Err(Error::InvalidArgument(format!(
                "plane resampling keeps axis 0 ({} planes), asked for {}",
                in_shape[0], out[0]
            )));
        }
        if in_shape.contains(&0) || out.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "cannot resample shape {in_shape:?} to {out:?}: an axis is empty"
            )));
        }
        let plan = if in_shape == out {
            Plan::Identity
        } else {
            match separate {
                Some(axis @ (1 | 2)) => lowres_plan(in_shape, out, axis, order, order_z)?,
                _ => Plan::InPlane {
                    rows: Taps::new(in_shape[1], out[1], order),
                    cols: Taps::new(in_shape[2], out[2], order),
                    clip: Clip::None,
                },
            }
        };
        Ok(PlaneResampler {
            in_shape,
            out,
            plan,
        })
    }

    /// The output shape.
    pub fn out_shape(&self) -> [usize; 3] {
        self.out
    }

    /// Plane `k` (`src`: plane `k` of the volume, shape `[a1, a2]`) resampled to `[out1, out2]`.
    /// The plane's own values give its clip range where skimage saw planes one at a time.
    pub fn plane(&self, k: usize, src: ArrayView2<f32>) -> Array2<f32> {
        debug_assert!(k < self.in_shape[0]);
        debug_assert_eq!(src.dim(), (self.in_shape[1], self.in_shape[2]));
        let (o1, o2) = (self.out[1], self.out[2]);
        let res = match &self.plan {
            Plan::Identity => return src.to_owned(),
            Plan::InPlane { rows, cols, clip } => {
                let clip = match clip {
                    Clip::None => None,
                    Clip::Whole(r) => *r,
                    Clip::PerPlane => finite_range(src.iter()),
                };
                resize_on(src.mapv(f64::from).view(), rows, cols, clip)
            }
            Plan::Lowres {
                axis,
                line,
                z,
                clip,
                cubic,
            } => {
                let src = src.mapv(f64::from);
                lowres_plane(src.view(), *axis, line, z, clip, *cubic, (o1, o2))
            }
        };
        res.mapv(|v| v as f32)
    }
}

fn lowres_plan(
    in_shape: [usize; 3],
    out: [usize; 3],
    axis: usize,
    order: Order,
    order_z: Order,
) -> Result<Plan> {
    if order_z == Order::Cubic {
        return Err(Error::InvalidArgument(
            "order_z 3 is not supported (0 or 1)".into(),
        ));
    }
    let other = 3 - axis; // the in-plane axis that is not the coarse one
    Ok(Plan::Lowres {
        axis,
        line: Taps::new(in_shape[other], out[other], order),
        z: Taps::new(in_shape[axis], out[axis], order_z),
        clip: Vec::new(),
        cubic: false,
    })
}

/// One a0-plane of the separate-along-a1/a2 case: lines along the fine in-plane axis resized
/// (1-D; the a0 factor of skimage's 2-D call is exactly 1, so its spline is evaluated on nodes),
/// clipped to their orthogonal plane's range, then sampled along the coarse axis.
fn lowres_plane(
    src: ArrayView2<f64>,
    axis: usize,
    line: &Taps,
    z: &Taps,
    clip: &[Option<(f64, f64)>],
    cubic: bool,
    out: (usize, usize),
) -> Array2<f64> {
    // Work with the coarse axis first: `lines[j]` is the line at coarse index j.
    let lines_view = if axis == 1 { src } else { src.reversed_axes() };
    let mut resized = Array2::<f64>::zeros((lines_view.nrows(), line.n_out()));
    for (j, (l, mut dst)) in lines_view
        .outer_iter()
        .zip(resized.outer_iter_mut())
        .enumerate()
    {
        let coeffs = if cubic {
            padded_coefficients(l)
        } else {
            l.to_owned()
        };
        let at = |i: usize| coeffs[i];
        for (o, v) in dst.iter_mut().enumerate() {
            *v = line.eval(o, &at);
            if let Some(Some((lo, hi))) = clip.get(j).filter(|_| cubic) {
                *v = v.clamp(*lo, *hi);
            }
        }
    }
    let mut res = Array2::<f64>::zeros((z.n_out(), line.n_out()));
    for (k, column) in resized.axis_iter(Axis(1)).enumerate() {
        let at = |i: usize| column[i];
        for o in 0..z.n_out() {
            res[[o, k]] = z.eval(o, &at);
        }
    }
    let res = if axis == 1 { res } else { res.reversed_axes() };
    debug_assert_eq!(res.dim(), out);
    res.as_standard_layout().into_owned()
}

/// One line padded with `SPLINE_PAD` edge copies per side and prefiltered.
fn padded_coefficients(l: ArrayView1<f64>) -> ndarray::Array1<f64> {
    let n = l.len();
    let mut c = ndarray::Array1::from_shape_fn(n + 2 * SPLINE_PAD, |i| {
        l[i.saturating_sub(SPLINE_PAD).min(n - 1)]
    });
    prefilter_line(c.view_mut());
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn new_shape_rounds_half_to_even() {
        // 0.5 mm → 1 mm: 5 samples become 2.5 → 2, 7 → 3.5 → 4.
        assert_eq!(
            new_shape([1.0, 0.5, 0.5], [1.0, 1.0, 1.0], [3, 5, 7]),
            [3, 2, 4]
        );
        assert_eq!(
            new_shape([1.0, 0.7, 1.6], [1.0, 1.0, 1.0], [3, 40, 30]),
            [3, 28, 48]
        );
    }

    #[test]
    fn separate_axis_follows_nnunet() {
        // 5 mm slices, 0.69 mm in plane: anisotropic, coarse axis 0.
        assert_eq!(
            separate_axis([5.0, 0.69, 0.69], [5.0, 1.0, 1.0], 3.0, None),
            Some(0)
        );
        // Isotropic-ish: none.
        assert_eq!(
            separate_axis([1.0, 0.7, 1.6], [1.0, 1.0, 1.0], 3.0, None),
            None
        );
        // Two axes tied at the largest spacing: none.
        assert_eq!(
            separate_axis([0.24, 1.25, 1.25], [1.0, 1.0, 1.0], 3.0, None),
            None
        );
        // The coarse axis in plane.
        assert_eq!(
            separate_axis([1.0, 4.0, 1.0], [1.0, 1.0, 1.0], 3.0, None),
            Some(1)
        );
        // Forced off, forced on.
        assert_eq!(
            separate_axis([5.0, 0.5, 0.5], [5.0, 1.0, 1.0], 3.0, Some(false)),
            None
        );
        assert_eq!(
            separate_axis([2.0, 1.0, 1.0], [2.0, 1.0, 1.0], 3.0, Some(true)),
            Some(0)
        );
    }

    #[test]
    fn equal_shapes_are_left_untouched() {
        let v = Array3::from_shape_fn((2, 3, 4), |(a, b, c)| (a * 100 + b * 10 + c) as f32);
        let r = PlaneResampler::for_volume(v.view(), [2, 3, 4], Order::Cubic, Order::Nearest, None)
            .unwrap();
        assert_eq!(
            r.plane(1, v.index_axis(Axis(0), 1)),
            v.index_axis(Axis(0), 1)
        );
    }

    #[test]
    fn cubic_reproduces_a_constant_and_a_line_inside() {
        // B-spline interpolation reproduces constants everywhere and linear ramps away from the
        // edge-padded border.
        let c = Array2::from_elem((6, 7), 3.5);
        let r = resize_plane(c.view(), (11, 4), Order::Cubic, None);
        assert!(r.iter().all(|v| (v - 3.5).abs() < 1e-12));
        let ramp = Array2::from_shape_fn((40, 3), |(i, _)| i as f64);
        let r = resize_plane(ramp.view(), (80, 3), Order::Cubic, None);
        // Output 40 samples input 40·0.5 − 0.25 = 19.75.
        assert!((r[[40, 1]] - 19.75).abs() < 1e-9, "{}", r[[40, 1]]);
    }

    #[test]
    fn linear_and_nearest_sample_at_half_pixel_centres() {
        let a = Array2::from_shape_vec((1, 4), vec![0.0, 10.0, 20.0, 30.0]).unwrap();
        // 4 → 8: x = (o + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, …
        let l = resize_plane(a.view(), (1, 8), Order::Linear, None);
        let want = [0.0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30.0];
        for (g, w) in l.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{l:?}");
        }
        let n = resize_plane(a.view(), (1, 8), Order::Nearest, None);
        assert_eq!(
            n.iter().copied().collect::<Vec<_>>(),
            [0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0, 30.0]
        );
    }

    #[test]
    fn clip_range_depends_on_what_skimage_saw() {
        // An overshooting step: cubic rings past the plane's own range; clipped to it per plane
        // (separate along a0), to the volume's otherwise.
        let mut v = Array3::<f32>::zeros((2, 8, 8));
        v.slice_mut(ndarray::s![0, .., 4..]).fill(1.0);
        v.slice_mut(ndarray::s![1, .., 4..]).fill(5.0);
        let per = PlaneResampler::for_volume(
            v.view(),
            [2, 13, 13],
            Order::Cubic,
            Order::Nearest,
            Some(0),
        )
        .unwrap();
        let whole =
            PlaneResampler::for_volume(v.view(), [2, 13, 13], Order::Cubic, Order::Nearest, None)
                .unwrap();
        let p0 = per.plane(0, v.index_axis(Axis(0), 0));
        let w0 = whole.plane(0, v.index_axis(Axis(0), 0));
        assert!(p0.iter().all(|&x| (0.0..=1.0).contains(&x)));
        assert!(
            w0.iter().any(|&x| x > 1.0),
            "plane 0 rings above 1 under the volume's clip"
        );
    }

    #[test]
    fn refusals() {
        assert!(Order::from_int(2).is_err());
        assert!(PlaneResampler::for_shape(
            [2, 3, 3],
            [3, 3, 3],
            Order::Linear,
            Order::Nearest,
            None
        )
        .is_err());
        assert!(PlaneResampler::for_shape(
            [2, 3, 3],
            [2, 4, 4],
            Order::Cubic,
            Order::Nearest,
            None
        )
        .is_err());
    }
}
