//! The sliding window over one padded plane: nnU-Net's tile steps (round half to even), its
//! Gaussian importance map (σ = p/8, centred at p//2, scaled to a maximum of 10, rounded to
//! fp16 as nnU-Net stores it), the centred padding to at least the patch, and the sum of the
//! weights every pixel receives (the same for every plane of a volume).

use ndarray::Array2;

/// nnU-Net's `compute_steps_for_sliding_window` along one axis: `n = ceil((size − p) / (p·step))
/// + 1` tiles, evenly spaced, the offsets rounded half to even, the last flush with the border.
pub fn steps(size: usize, patch: usize, step: f64) -> Vec<usize> {
    debug_assert!(size >= patch);
    let target = patch as f64 * step;
    let n = ((size - patch) as f64 / target).ceil() as usize + 1;
    if n == 1 {
        return vec![0];
    }
    let actual = (size - patch) as f64 / (n - 1) as f64;
    (0..n)
        .map(|i| (actual * i as f64).round_ties_even() as usize)
        .collect()
}

/// `x` rounded to the nearest IEEE half-precision value (ties to even, subnormals kept), as a
/// f32. nnU-Net's map is fp16; weighting with its exact values keeps the averages alike.
pub fn round_to_f16(x: f32) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let exp = ((x.abs().to_bits() >> 23) & 0xff) as i32 - 127;
    // fp16 has 10 fraction bits; below 2^-14 its spacing is fixed at 2^-24 (subnormals).
    let quantum = 2f64.powi(exp.max(-14) - 10);
    ((x as f64 / quantum).round_ties_even() * quantum) as f32
}

/// nnU-Net's `compute_gaussian(patch, sigma_scale = 1/8, value_scaling_factor = 10)`: the closed
/// form of its filtered delta, via f32 to fp16 as torch converts it, zeros raised to the
/// smallest non-zero value.
pub fn gaussian(patch: [usize; 2]) -> Array2<f32> {
    let axis = |p: usize| -> Vec<f64> {
        let (c, sigma) = ((p / 2) as f64, p as f64 / 8.0);
        (0..p)
            .map(|i| (-0.5 * ((i as f64 - c) / sigma).powi(2)).exp())
            .collect()
    };
    let (a, b) = (axis(patch[0]), axis(patch[1]));
    let mut g = Array2::from_shape_fn((patch[0], patch[1]), |(i, j)| {
        round_to_f16((10.0 * a[i] * b[j]) as f32)
    });
    let min_nonzero = g
        .iter()
        .copied()
        .filter(|&v| v > 0.0)
        .fold(f32::INFINITY, f32::min);
    g.mapv_inplace(|v| if v == 0.0 { min_nonzero } else { v });
    g
}

/// Where one plane of `size` (n1, n2) sits in its padded canvas, and the tiles over the canvas.
#[derive(Debug, Clone)]
pub struct Windows {
    /// The canvas: (max(n1, p1), max(n2, p2)).
    pub padded: [usize; 2],
    /// Padding before the plane along each axis (`diff / 2`, nnU-Net's centring).
    pub before: [usize; 2],
    /// The plane's size.
    pub size: [usize; 2],
    /// The tile size.
    pub patch: [usize; 2],
    /// Tile offsets along a1.
    pub steps1: Vec<usize>,
    /// Tile offsets along a2.
    pub steps2: Vec<usize>,
    /// The Gaussian map.
    pub gaussian: Array2<f32>,
    /// The sum of the Gaussian over the tiles covering each canvas pixel.
    pub weight: Array2<f32>,
}

impl Windows {
    /// The window over planes of `size` with tiles of `patch` and the step fraction `step`.
    pub fn new(size: [usize; 2], patch: [usize; 2], step: f64) -> Windows {
        let padded = [size[0].max(patch[0]), size[1].max(patch[1])];
        let before = [(padded[0] - size[0]) / 2, (padded[1] - size[1]) / 2];
        let steps1 = steps(padded[0], patch[0], step);
        let steps2 = steps(padded[1], patch[1], step);
        let gaussian = gaussian(patch);
        let mut weight = Array2::<f32>::zeros((padded[0], padded[1]));
        for &s1 in &steps1 {
            for &s2 in &steps2 {
                let mut w = weight.slice_mut(ndarray::s![s1..s1 + patch[0], s2..s2 + patch[1]]);
                w += &gaussian;
            }
        }
        Windows {
            padded,
            before,
            size,
            patch,
            steps1,
            steps2,
            gaussian,
            weight,
        }
    }

    /// Tiles per plane.
    pub fn tiles(&self) -> usize {
        self.steps1.len() * self.steps2.len()
    }

    /// The offsets (a1, a2) of tile `t` of a plane, in nnU-Net's order (a1 outer, a2 inner).
    pub fn offset(&self, t: usize) -> [usize; 2] {
        let n2 = self.steps2.len();
        [self.steps1[t / n2], self.steps2[t % n2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_nnunet_examples() {
        // docs/nnunet-2d-verify/steps.py: 22.5 rounds to 22 (half to even).
        assert_eq!(steps(110, 64, 0.5), vec![0, 23, 46]);
        assert_eq!(steps(109, 64, 0.5), vec![0, 22, 45]);
        assert_eq!(steps(512, 448, 0.5), vec![0, 64]);
        assert_eq!(steps(56, 56, 0.5), vec![0]);
        assert_eq!(steps(41, 20, 0.5), vec![0, 7, 14, 21]);
    }

    #[test]
    fn f16_rounding_is_ties_to_even_with_subnormals() {
        assert_eq!(round_to_f16(10.0), 10.0);
        assert_eq!(round_to_f16(1.0 + 1.0 / 2048.0), 1.0); // half an ulp: tie to even
        assert_eq!(round_to_f16(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0);
        assert_eq!(round_to_f16(3.0e-8), 2f32.powi(-24)); // 0.5 ulp-ish of subnormal → 1 ulp
        assert_eq!(round_to_f16(2.0e-8), 0.0);
        assert_eq!(round_to_f16(0.1), 0.099975586);
    }

    #[test]
    fn gaussian_is_centred_at_p_half_with_max_ten() {
        let g = gaussian([24, 20]);
        assert_eq!(g[[12, 10]], 10.0);
        assert!(g.iter().all(|&v| v > 0.0 && v <= 10.0));
        // Even patch: offsets −12 … 11, so the map is not symmetric.
        assert!(g[[0, 10]] < g[[23, 10]]);
        // Closed form at (0, 0): 10·exp(−0.5·4²)·exp(−0.5·4²) = 10·e^-16, fp16-rounded.
        let want = round_to_f16((10.0 * (-16.0f64).exp()) as f32);
        assert_eq!(g[[0, 0]], want);
    }

    #[test]
    fn windows_pad_centred_and_cover_the_canvas() {
        let w = Windows::new([35, 15], [24, 20], 0.5);
        assert_eq!(w.padded, [35, 20]);
        assert_eq!(w.before, [0, 2]);
        assert_eq!(w.steps1, vec![0, 11]);
        assert_eq!(w.steps2, vec![0]);
        assert_eq!(w.tiles(), 2);
        assert_eq!(w.offset(1), [11, 0]);
        assert!(w.weight.iter().all(|&v| v > 0.0));
    }
}
