//! A dark core inside a training lesion, its label kept: so that a model learns that a
//! hypo-intense centre (necrosis, a cyst) inside a FLAIR-hyperintense lesion is still lesion.
//!
//! Why: most LGG lesions are bright throughout on FLAIR (in the 91 patients, a median 1% of the
//! lesion is darker than the patient's normal tissue), so the model learns "lesion = bright".
//! Three of the four validation patients whose lesions are 10% dark or more were under-segmented,
//! and in the BraTS case (a high-grade glioma) 32% of the whole tumour is darker than normal
//! tissue, mostly its necrotic core, which the model labelled background
//! (`scripts/study/dark_lesion_share.py`; figures in `models/README.md`).
//!
//! The core is the part of the lesion deeper than a random fraction of its deepest point (depth:
//! city-block distance to the nearest non-lesion pixel), so it has the lesion's own shape; its
//! intensities are pulled towards the plane's background by a random factor, with a two-pixel
//! ramp at its edge so that no artificial step marks it.

use rand::Rng;

use crate::distance::{to_outside, CITY_BLOCK};

/// Lesions whose deepest pixel lies fewer pixels than this from their edge get no core.
pub const MIN_DEPTH: u32 = 3;

/// Range of the core's depth threshold, as a fraction of the lesion's deepest point.
const DEPTH_FRACTION: (f64, f64) = (0.3, 0.7);

/// Range of the factor the core's distance above the background is multiplied by.
const FACTOR: (f64, f64) = (0.15, 0.5);

/// Width of the ramp at the core's edge, pixels.
const RAMP: f32 = 2.0;

/// Darkens a core of the lesion (`mask > 0`) in every channel of `image` (`[c, h, w]`), when
/// the lesion is deep enough; the mask is left as it is.
pub fn darken_core(
    image: &mut [f32],
    mask: &[u8],
    c: usize,
    (h, w): (usize, usize),
    rng: &mut impl Rng,
) {
    let depth = depth(mask, (h, w));
    let deepest = depth.iter().copied().max().unwrap_or(0);
    if deepest < MIN_DEPTH {
        return;
    }
    let cut = f64::from(deepest) * uniform(rng, DEPTH_FRACTION);
    let factor = uniform(rng, FACTOR) as f32;
    let plane = h * w;
    for ch in 0..c {
        let p = &mut image[ch * plane..(ch + 1) * plane];
        let floor = p.iter().copied().fold(f32::INFINITY, f32::min);
        for (v, &d) in p.iter_mut().zip(&depth) {
            let weight = ((f64::from(d) - cut) as f32 / RAMP).clamp(0.0, 1.0);
            let dark = floor + (*v - floor) * factor;
            *v += (dark - *v) * weight;
        }
    }
}

fn uniform(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + rng.random::<f64>() * (hi - lo)
}

/// City-block distance of each lesion pixel to the nearest pixel outside the lesion (the plane's
/// border counts as outside); 0 outside.
pub fn depth(mask: &[u8], (h, w): (usize, usize)) -> Vec<u32> {
    let lesion: Vec<bool> = mask.iter().map(|&m| m > 0).collect();
    to_outside(&lesion, (h, w), &CITY_BLOCK)
}
