//! One case prepared as nnU-Net's `DefaultPreprocessor` prepares it, up to the resampling,
//! which runs per a0-plane on demand: the model's channels transposed by `transpose`, cropped
//! to the non-zero box, normalised per channel (f32), and the resamplers to the target spacing
//! and back (built once per volume).

use ndarray::{s, Array2, Array3, ArrayView3, ArrayViewMut2, Axis};

use super::crop::{filled_mask, nonzero_box, transpose_box, Box3};
use super::normalize::normalize;
use crate::error::{Error, Result};
use crate::infer::contract::{ChannelScheme, ResampleSpec, TiledSpec};
use crate::infer::resample::{new_shape, separate_axis, Order, PlaneResampler};
use crate::volume::Volume;

/// The case on the transposed grid (a0, a1, a2).
pub(super) struct Case {
    /// The crop box on the transposed grid (the whole extent without `crop_nonzero`).
    pub bbox: Box3,
    /// The cropped shape.
    pub cropped: [usize; 3],
    /// The shape at the target spacing (a0 unchanged).
    pub new_shape: [usize; 3],
    /// Normalised channels, cropped, transposed, standard layout.
    channels: Vec<Array3<f32>>,
    /// Per channel, the resampler to `new_shape` (`None`: shapes equal, data untouched).
    to_target: Vec<Option<PlaneResampler>>,
    /// The logits' resampler back to `cropped` (`None`: shapes equal).
    pub back: Option<PlaneResampler>,
}

impl Case {
    /// Prepares `volume`'s channels `sources` for the model `spec` describes.
    pub fn new(spec: &TiledSpec, volume: &Volume, sources: &[usize]) -> Result<Case> {
        let t = spec.transpose;
        let raw: Vec<ArrayView3<f32>> = sources
            .iter()
            .map(|&c| volume.data.index_axis(Axis(0), c))
            .collect();
        let sh = raw[0].shape();
        let full: Box3 = [0..sh[0], 0..sh[1], 0..sh[2]];
        let bbox = transpose_box(
            &if spec.crop_nonzero {
                nonzero_box(&raw)
            } else {
                full
            },
            t,
        );
        let mut channels: Vec<Array3<f32>> = raw
            .iter()
            .map(|c| {
                c.view()
                    .permuted_axes(t)
                    .slice(s![bbox[0].clone(), bbox[1].clone(), bbox[2].clone()])
                    .as_standard_layout()
                    .into_owned()
            })
            .collect();
        let masked = spec
            .normalization
            .iter()
            .any(|n| matches!(n, ChannelScheme::Zscore { use_mask: true }));
        let mask = masked.then(|| filled_mask(&channels));
        for (k, (ch, &scheme)) in channels.iter_mut().zip(&spec.normalization).enumerate() {
            normalize(ch, scheme, mask.as_ref(), k)?;
        }
        let cropped = [bbox[0].len(), bbox[1].len(), bbox[2].len()];
        // Array axis k of [z, y, x] is index axis 2 − k of the geometry.
        let spacing = volume.geometry.spacing;
        let current: [f64; 3] = std::array::from_fn(|j| spacing[2 - t[j]].abs());
        let target = [current[0], spec.spacing[0], spec.spacing[1]];
        let new_shape = new_shape(current, target, cropped);
        if new_shape.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "the volume's cropped shape {cropped:?} at spacing {current:?} resamples to {new_shape:?} at the model's spacing"
            )));
        }
        let to_target = channels
            .iter()
            .map(|ch| {
                resampler(new_shape != cropped, &spec.resample_data, |o, oz| {
                    let sep = separate_axis(
                        current,
                        target,
                        spec.anisotropy_threshold,
                        spec.resample_data.force_separate_z,
                    );
                    PlaneResampler::for_volume(ch.view(), new_shape, o, oz, sep)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let back = resampler(new_shape != cropped, &spec.resample_logits, |o, oz| {
            let sep = separate_axis(
                target,
                current,
                spec.anisotropy_threshold,
                spec.resample_logits.force_separate_z,
            );
            PlaneResampler::for_shape(new_shape, cropped, o, oz, sep)
        })?;
        Ok(Case {
            bbox,
            cropped,
            new_shape,
            channels,
            to_target,
            back,
        })
    }

    /// Planes along a0.
    pub fn planes(&self) -> usize {
        self.cropped[0]
    }

    /// Writes channel `c` of plane `k`, at the target spacing, into `dst` (shape
    /// `new_shape[1..]`).
    pub fn plane_into(&self, c: usize, k: usize, mut dst: ArrayViewMut2<f32>) {
        let src = self.channels[c].index_axis(Axis(0), k);
        match &self.to_target[c] {
            Some(r) => dst.assign(&r.plane(k, src)),
            None => dst.assign(&src),
        }
    }

    /// Logit plane `k` (one class, at the target spacing) back on the cropped grid.
    pub fn back(&self, k: usize, plane: Array2<f32>) -> Array2<f32> {
        match &self.back {
            Some(r) => r.plane(k, plane.view()),
            None => plane,
        }
    }
}

/// The resampler `build` makes from the spec's orders, when `needed`.
fn resampler(
    needed: bool,
    spec: &ResampleSpec,
    build: impl FnOnce(Order, Order) -> Result<PlaneResampler>,
) -> Result<Option<PlaneResampler>> {
    if !needed {
        return Ok(None);
    }
    let order = |o: u8| Order::from_int(i64::from(o)).map_err(Error::InvalidArgument);
    build(order(spec.order)?, order(spec.order_z)?).map(Some)
}
