//! Data augmentation on `[c, h, w]` images and `[h, w]` label masks.
//!
//! The geometric transforms (flips, rotation, shift, zoom, shear) are composed into one affine map
//! and applied once: the image is sampled bilinearly (outside: the slice's per-channel minimum, i.e.
//! background), the mask with nearest neighbour (outside: 0), through the same inverse map, so image
//! and mask stay aligned. Intensity transforms (a dark lesion core, noise, blur, gamma,
//! brightness/contrast) touch the image only. Every transform has its own probability.

use burn::config::Config;
use rand::Rng;

use crate::dark_core::darken_core;

/// Probabilities and ranges of each augmentation.
#[derive(Config, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Horizontal flip probability.
    #[config(default = 0.5)]
    pub p_flip_h: f64,
    /// Vertical flip probability.
    #[config(default = 0.0)]
    pub p_flip_v: f64,
    /// Rotation probability.
    #[config(default = 0.5)]
    pub p_rotate: f64,
    /// Largest rotation, degrees (uniform in ±).
    #[config(default = 15.0)]
    pub max_rotate_deg: f64,
    /// Shift probability.
    #[config(default = 0.3)]
    pub p_shift: f64,
    /// Largest shift as a fraction of the size (crop with padding).
    #[config(default = 0.1)]
    pub max_shift: f64,
    /// Zoom probability.
    #[config(default = 0.3)]
    pub p_zoom: f64,
    /// Largest relative zoom (scale in [1 - z, 1 + z]; > 1 is a crop).
    #[config(default = 0.1)]
    pub max_zoom: f64,
    /// Shear probability.
    #[config(default = 0.2)]
    pub p_shear: f64,
    /// Largest shear factor.
    #[config(default = 0.1)]
    pub max_shear: f64,
    /// Gaussian noise probability.
    #[config(default = 0.2)]
    pub p_noise: f64,
    /// Noise standard deviation as a fraction of the channel's standard deviation.
    #[config(default = 0.05)]
    pub noise_std: f64,
    /// Gaussian blur probability.
    #[config(default = 0.1)]
    pub p_blur: f64,
    /// Largest blur sigma in pixels.
    #[config(default = 1.0)]
    pub max_blur_sigma: f64,
    /// Brightness/contrast probability.
    #[config(default = 0.3)]
    pub p_intensity: f64,
    /// Largest brightness offset as a fraction of the channel's standard deviation.
    #[config(default = 0.1)]
    pub max_brightness: f64,
    /// Largest relative contrast change.
    #[config(default = 0.1)]
    pub max_contrast: f64,
    /// Gamma probability: `v ← max(v, 0)^γ`, a non-linear contrast change between scanners.
    #[config(default = 0.0)]
    pub p_gamma: f64,
    /// Largest gamma change: `γ` log-uniform in `[1/(1+g), 1+g]`.
    #[config(default = 0.5)]
    pub max_gamma: f64,
    /// Dark-core probability (see [`crate::dark_core`]): a hypo-intense core drawn inside the
    /// lesion, its label kept. Optional so that configurations saved before it read as off.
    pub p_dark_core: Option<f64>,
}

impl AugmentConfig {
    /// Everything off.
    pub fn none() -> Self {
        Self::new()
            .with_p_flip_h(0.0)
            .with_p_rotate(0.0)
            .with_p_shift(0.0)
            .with_p_zoom(0.0)
            .with_p_shear(0.0)
            .with_p_noise(0.0)
            .with_p_blur(0.0)
            .with_p_intensity(0.0)
    }

    /// For models that must work on other scanners and pre-processing: wider zoom (brains that
    /// fill less of the field of view), stronger linear and gamma intensity changes.
    pub fn robust() -> Self {
        Self::new()
            .with_p_zoom(0.5)
            .with_max_zoom(0.3)
            .with_p_intensity(0.5)
            .with_max_contrast(0.3)
            .with_max_brightness(0.3)
            .with_p_gamma(0.3)
            .with_max_gamma(0.5)
    }

    /// Whether any transform can fire.
    pub fn enabled(&self) -> bool {
        [
            self.p_flip_h,
            self.p_flip_v,
            self.p_rotate,
            self.p_shift,
            self.p_zoom,
            self.p_shear,
            self.p_noise,
            self.p_blur,
            self.p_intensity,
            self.p_gamma,
            self.p_dark_core.unwrap_or(0.0),
        ]
        .iter()
        .any(|&p| p > 0.0)
    }
}

/// A 2×3 affine map on pixel-centre coordinates `(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// `[a, b, c, d, e, f]`: x' = a x + b y + c, y' = d x + e y + f.
    pub m: [f64; 6],
}

impl Affine {
    /// Identity.
    pub const IDENTITY: Affine = Affine {
        m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    };

    /// `self ∘ other` (apply `other` first).
    pub fn then_after(&self, other: &Affine) -> Affine {
        let [a, b, c, d, e, f] = self.m;
        let [p, q, r, s, t, u] = other.m;
        Affine {
            m: [
                a * p + b * s,
                a * q + b * t,
                a * r + b * u + c,
                d * p + e * s,
                d * q + e * t,
                d * r + e * u + f,
            ],
        }
    }

    /// The inverse (None when singular).
    pub fn inverse(&self) -> Option<Affine> {
        let [a, b, c, d, e, f] = self.m;
        let det = a * e - b * d;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Affine {
            m: [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)],
        })
    }

    /// Applies the map to a point.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.m;
        (a * x + b * y + c, d * x + e * y + f)
    }
}

/// Draws the forward geometric transform (source → output pixel coordinates) for a `h × w` slice.
pub fn random_affine(cfg: &AugmentConfig, h: usize, w: usize, rng: &mut impl Rng) -> Affine {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let mut lin = Affine::IDENTITY;
    let hit = |p: f64, rng: &mut dyn rand::RngCore| p > 0.0 && rng.random::<f64>() < p;
    let sym = |r: f64, rng: &mut dyn rand::RngCore| (rng.random::<f64>() * 2.0 - 1.0) * r;
    if hit(cfg.p_flip_h, rng) {
        lin.m[0] = -lin.m[0];
    }
    if hit(cfg.p_flip_v, rng) {
        lin.m[4] = -lin.m[4];
    }
    if hit(cfg.p_zoom, rng) {
        let s = 1.0 + sym(cfg.max_zoom, rng);
        lin = Affine {
            m: [s, 0.0, 0.0, 0.0, s, 0.0],
        }
        .then_after(&lin);
    }
    if hit(cfg.p_shear, rng) {
        let k = sym(cfg.max_shear, rng);
        lin = Affine {
            m: [1.0, k, 0.0, 0.0, 1.0, 0.0],
        }
        .then_after(&lin);
    }
    if hit(cfg.p_rotate, rng) {
        let t = sym(cfg.max_rotate_deg, rng).to_radians();
        let (s, c) = t.sin_cos();
        lin = Affine {
            m: [c, -s, 0.0, s, c, 0.0],
        }
        .then_after(&lin);
    }
    let (mut tx, mut ty) = (0.0, 0.0);
    if hit(cfg.p_shift, rng) {
        tx = sym(cfg.max_shift, rng) * w as f64;
        ty = sym(cfg.max_shift, rng) * h as f64;
    }
    let to_origin = Affine {
        m: [1.0, 0.0, -cx, 0.0, 1.0, -cy],
    };
    let back = Affine {
        m: [1.0, 0.0, cx + tx, 0.0, 1.0, cy + ty],
    };
    back.then_after(&lin.then_after(&to_origin))
}

/// Resamples `image` (`[c, h, w]`) and `mask` (`[h, w]`) through the forward map `fwd`.
pub fn warp(image: &mut [f32], mask: &mut [u8], c: usize, h: usize, w: usize, fwd: &Affine) {
    if *fwd == Affine::IDENTITY {
        return;
    }
    let Some(inv) = fwd.inverse() else { return };
    let plane = h * w;
    let src_img = image.to_vec();
    let src_mask = mask.to_vec();
    let fill: Vec<f32> = (0..c)
        .map(|ch| {
            src_img[ch * plane..(ch + 1) * plane]
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min)
        })
        .collect();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = inv.apply(x as f64, y as f64);
            let o = y * w + x;
            // Mask: nearest (round half up), 0 outside.
            let (nx, ny) = ((sx + 0.5).floor(), (sy + 0.5).floor());
            mask[o] = if nx >= 0.0 && ny >= 0.0 && (nx as usize) < w && (ny as usize) < h {
                src_mask[ny as usize * w + nx as usize]
            } else {
                0
            };
            // Image: bilinear, the background value outside.
            let (x0, y0) = (sx.floor(), sy.floor());
            let (tx, ty) = ((sx - x0) as f32, (sy - y0) as f32);
            for ch in 0..c {
                let src = &src_img[ch * plane..(ch + 1) * plane];
                let at = |xx: f64, yy: f64| -> f32 {
                    if xx >= 0.0 && yy >= 0.0 && (xx as usize) < w && (yy as usize) < h {
                        src[yy as usize * w + xx as usize]
                    } else {
                        fill[ch]
                    }
                };
                let a = at(x0, y0) + (at(x0 + 1.0, y0) - at(x0, y0)) * tx;
                let b = at(x0, y0 + 1.0) + (at(x0 + 1.0, y0 + 1.0) - at(x0, y0 + 1.0)) * tx;
                image[ch * plane + o] = a + (b - a) * ty;
            }
        }
    }
}

fn gaussian(rng: &mut impl Rng) -> f32 {
    // Box–Muller; rand without rand_distr.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn std_of(v: &[f32]) -> f32 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() as f32
}

/// Separable Gaussian blur of one plane (edges replicated).
pub fn blur(plane: &mut [f32], h: usize, w: usize, sigma: f64) {
    if sigma <= 0.0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.into_iter().map(|v| v / sum).collect();
    let mut tmp = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(i, kv)| {
                    let xx = (x as isize + i as isize - r).clamp(0, w as isize - 1) as usize;
                    kv * plane[y * w + xx]
                })
                .sum();
        }
    }
    for y in 0..h {
        for x in 0..w {
            plane[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(i, kv)| {
                    let yy = (y as isize + i as isize - r).clamp(0, h as isize - 1) as usize;
                    kv * tmp[yy * w + x]
                })
                .sum();
        }
    }
}

/// Applies a random draw of every enabled augmentation in place. `image` is `[c × group, h, w]`:
/// `c` source channels, each a `group` of planes (the 2.5D context slices, 1 without). The
/// geometry is drawn once for all planes; each channel's intensity changes are drawn once and
/// applied to all of its group, so neighbouring slices stay alike as they are at inference.
pub fn augment(
    cfg: &AugmentConfig,
    image: &mut [f32],
    mask: &mut [u8],
    c: usize,
    group: usize,
    (h, w): (usize, usize),
    rng: &mut impl Rng,
) {
    let planes = c * group;
    let fwd = random_affine(cfg, h, w, rng);
    warp(image, mask, planes, h, w, &fwd);
    // Drawn only when set, so configurations without it keep their random sequence.
    if let Some(p) = cfg.p_dark_core.filter(|&p| p > 0.0) {
        if rng.random::<f64>() < p {
            darken_core(image, mask, planes, (h, w), rng);
        }
    }
    let plane = h * w;
    for ch in 0..c {
        let stack = &mut image[ch * group * plane..(ch + 1) * group * plane];
        let centre = (group / 2) * plane;
        if cfg.p_blur > 0.0 && rng.random::<f64>() < cfg.p_blur {
            let sigma = 0.3 + rng.random::<f64>() * (cfg.max_blur_sigma - 0.3).max(0.0);
            for p in stack.chunks_exact_mut(plane) {
                blur(p, h, w, sigma);
            }
        }
        // Drawn only when enabled, so configurations without gamma keep their random sequence.
        if cfg.p_gamma > 0.0 && rng.random::<f64>() < cfg.p_gamma {
            let g = (1.0 + cfg.max_gamma.max(0.0)).ln();
            let gamma = ((rng.random::<f64>() * 2.0 - 1.0) * g).exp() as f32;
            for v in stack.iter_mut() {
                *v = v.max(0.0).powf(gamma);
            }
        }
        // Brightness and noise scale with the centre slice's spread.
        let sd = std_of(&stack[centre..centre + plane]);
        if cfg.p_intensity > 0.0 && rng.random::<f64>() < cfg.p_intensity {
            let contrast = 1.0 + ((rng.random::<f64>() * 2.0 - 1.0) * cfg.max_contrast) as f32;
            let bright = ((rng.random::<f64>() * 2.0 - 1.0) * cfg.max_brightness) as f32 * sd;
            for v in stack.iter_mut() {
                *v = *v * contrast + bright;
            }
        }
        if cfg.p_noise > 0.0 && rng.random::<f64>() < cfg.p_noise {
            let s = cfg.noise_std as f32 * sd;
            for v in stack.iter_mut() {
                *v += s * gaussian(rng);
            }
        }
    }
}
