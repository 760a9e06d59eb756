//! nnU-Net's per-channel intensity schemes (`default_normalization_schemes.py`), applied in
//! place to one channel's cropped box in f32 as nnU-Net does: ZScore (statistics over the box,
//! or inside the hole-filled non-zero mask), CT (clip to the training foreground's percentiles,
//! then its mean and std), none, rescale to [0, 1], RGB to [0, 1].

use ndarray::{Array3, Zip};

use crate::error::{Error, Result};
use crate::infer::contract::ChannelScheme;

/// nnU-Net's guard against a zero spread.
const EPS: f32 = 1e-8;

/// Normalises `image` (one channel's cropped box) in place by `scheme`; `mask` is the
/// hole-filled non-zero mask (needed when a ZScore scheme uses it). `channel` names the model
/// channel in errors.
pub fn normalize(
    image: &mut Array3<f32>,
    scheme: ChannelScheme,
    mask: Option<&Array3<bool>>,
    channel: usize,
) -> Result<()> {
    match scheme {
        ChannelScheme::Zscore { use_mask: false } => {
            let (mean, std) = mean_std(|| image.iter().copied());
            let d = std.max(EPS);
            image.mapv_inplace(|v| (v - mean) / d);
        }
        ChannelScheme::Zscore { use_mask: true } => {
            let mask = mask.ok_or_else(|| Error::inference("zscore use_mask without a mask"))?;
            let (mean, std) = mean_std(|| {
                image
                    .iter()
                    .zip(mask.iter())
                    .filter(|(_, &m)| m)
                    .map(|(&v, _)| v)
            });
            let d = std.max(EPS);
            Zip::from(image).and(mask).for_each(|v, &m| {
                if m {
                    *v = (*v - mean) / d;
                }
            });
        }
        ChannelScheme::Ct {
            lower,
            upper,
            mean,
            std,
        } => {
            let (lo, hi, m) = (lower as f32, upper as f32, mean as f32);
            let d = (std as f32).max(EPS);
            image.mapv_inplace(|v| (v.clamp(lo, hi) - m) / d);
        }
        ChannelScheme::None => {}
        ChannelScheme::Rescale01 => {
            let min = image.iter().copied().fold(f32::INFINITY, f32::min);
            image.mapv_inplace(|v| v - min);
            let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let d = max.max(EPS);
            image.mapv_inplace(|v| v / d);
        }
        ChannelScheme::Rgb01 => {
            if let Some(v) = image.iter().find(|v| !(0.0..=255.0).contains(*v)) {
                return Err(Error::InvalidArgument(format!(
                    "model channel {channel} uses the rgb01 scheme, which needs values in [0, 255]; the volume has {v}"
                )));
            }
            image.mapv_inplace(|v| v / 255.0);
        }
    }
    Ok(())
}

/// Mean and population standard deviation, accumulated in f64 and given as f32 (numpy's f32
/// statistics differ from these by rounding only).
fn mean_std<I: Iterator<Item = f32>>(values: impl Fn() -> I) -> (f32, f32) {
    let (mut n, mut sum) = (0usize, 0f64);
    for v in values() {
        n += 1;
        sum += v as f64;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let var = values().map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    (mean as f32, var.sqrt() as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn vol(v: &[f32]) -> Array3<f32> {
        Array3::from_shape_vec((1, 1, v.len()), v.to_vec()).unwrap()
    }

    #[test]
    fn zscore_over_the_box_and_inside_the_mask() {
        let mut a = vol(&[0.0, 2.0, 4.0, 6.0]);
        normalize(&mut a, ChannelScheme::Zscore { use_mask: false }, None, 0).unwrap();
        let s = 5f32.sqrt();
        let want = [-3.0 / s, -1.0 / s, 1.0 / s, 3.0 / s];
        for (g, w) in a.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{a}");
        }
        let mut b = vol(&[0.0, 2.0, 4.0, 6.0]);
        let m = Array3::from_shape_vec((1, 1, 4), vec![false, true, true, true]).unwrap();
        normalize(
            &mut b,
            ChannelScheme::Zscore { use_mask: true },
            Some(&m),
            0,
        )
        .unwrap();
        let s = (8f32 / 3.0).sqrt();
        // Outside the mask the voxel is left as it was.
        assert_eq!(b[[0, 0, 0]], 0.0);
        assert!((b[[0, 0, 1]] + 2.0 / s).abs() < 1e-6 && (b[[0, 0, 3]] - 2.0 / s).abs() < 1e-6);
        let mut flat = vol(&[3.0, 3.0]);
        normalize(
            &mut flat,
            ChannelScheme::Zscore { use_mask: false },
            None,
            0,
        )
        .unwrap();
        assert_eq!(flat.as_slice().unwrap(), &[0.0, 0.0]);
    }

    #[test]
    fn ct_clips_then_standardises() {
        let mut a = vol(&[-2000.0, 40.0, 3000.0]);
        let ct = ChannelScheme::Ct {
            lower: -1000.0,
            upper: 1000.0,
            mean: 40.0,
            std: 10.0,
        };
        normalize(&mut a, ct, None, 0).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[-104.0, 0.0, 96.0]);
    }

    #[test]
    fn rescale_and_rgb() {
        let mut a = vol(&[-1.0, 1.0, 3.0]);
        normalize(&mut a, ChannelScheme::Rescale01, None, 0).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[0.0, 0.5, 1.0]);
        let mut b = vol(&[0.0, 255.0]);
        normalize(&mut b, ChannelScheme::Rgb01, None, 0).unwrap();
        assert_eq!(b.as_slice().unwrap(), &[0.0, 1.0]);
        let mut c = vol(&[0.0, 256.0]);
        let e = normalize(&mut c, ChannelScheme::Rgb01, None, 1).unwrap_err();
        assert!(
            e.to_string().contains("channel 1") && e.to_string().contains("256"),
            "{e}"
        );
    }
}
