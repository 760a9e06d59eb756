//! TEMPORARY STAND-IN for the lead's `resample.rs` (branch `resample`): the documented API with
//! the shape rules implemented and in-plane resampling refused. Replaced wholesale by the merge.

use ndarray::{Array2, ArrayView2, ArrayView3};

use crate::error::{Error, Result};

/// Spline order of a resampling (nnU-Net's `order` / `order_z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// 0.
    Nearest,
    /// 1.
    Linear,
    /// 3.
    Cubic,
}

impl Order {
    /// 0, 1 or 3.
    pub fn from_int(o: u8) -> std::result::Result<Order, String> {
        match o {
            0 => Ok(Order::Nearest),
            1 => Ok(Order::Linear),
            3 => Ok(Order::Cubic),
            _ => Err(format!("spline order {o} is not supported (0, 1 or 3)")),
        }
    }
}

/// nnU-Net's compute_new_shape (round half to even).
pub fn new_shape(
    old_spacing: [f64; 3],
    new_spacing: [f64; 3],
    old_shape: [usize; 3],
) -> [usize; 3] {
    std::array::from_fn(|k| {
        (old_spacing[k] / new_spacing[k] * old_shape[k] as f64).round_ties_even() as usize
    })
}

/// nnU-Net's separate-z decision.
pub fn separate_axis(
    current: [f64; 3],
    new: [f64; 3],
    threshold: f64,
    force: Option<bool>,
) -> Option<usize> {
    let lowres = |s: [f64; 3]| -> Vec<usize> {
        let m = s.iter().cloned().fold(f64::MIN, f64::max);
        (0..3).filter(|&k| m / s[k] == 1.0).collect()
    };
    let aniso = |s: [f64; 3]| {
        let mx = s.iter().cloned().fold(f64::MIN, f64::max);
        let mn = s.iter().cloned().fold(f64::MAX, f64::min);
        mx / mn > threshold
    };
    let axes = match force {
        Some(true) => lowres(current),
        Some(false) => return None,
        None if aniso(current) => lowres(current),
        None if aniso(new) => lowres(new),
        None => return None,
    };
    (axes.len() == 1).then(|| axes[0])
}

/// Stand-in: only shapes whose planes stay the same size.
pub struct PlaneResampler {
    out: [usize; 3],
}

impl PlaneResampler {
    /// For data.
    pub fn for_volume(
        volume: ArrayView3<f32>,
        out: [usize; 3],
        _order: Order,
        _order_z: Order,
        _separate: Option<usize>,
    ) -> Result<PlaneResampler> {
        let sh = volume.shape();
        Self::for_shape(
            [sh[0], sh[1], sh[2]],
            out,
            Order::Linear,
            Order::Nearest,
            None,
        )
    }
    /// For logits.
    pub fn for_shape(
        in_shape: [usize; 3],
        out: [usize; 3],
        _order: Order,
        _order_z: Order,
        _separate: Option<usize>,
    ) -> Result<PlaneResampler> {
        if in_shape != out {
            return Err(Error::InvalidArgument(
                "resampling stand-in: not implemented until the resample branch lands".into(),
            ));
        }
        Ok(PlaneResampler { out })
    }
    /// Plane k resampled.
    pub fn plane(&self, _k: usize, src: ArrayView2<f32>) -> Array2<f32> {
        debug_assert_eq!(src.shape(), &self.out[1..]);
        src.to_owned()
    }
}
