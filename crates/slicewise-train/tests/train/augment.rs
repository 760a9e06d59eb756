//! Augmentations move image and mask together (synthetic shapes).

use rand::rngs::StdRng;
use rand::SeedableRng;
use slicewise_train::augment::{augment, AugmentConfig};
use slicewise_train::dark_core::depth;

const S: usize = 64;

/// One seeded draw of `cfg` on a copy of a one-channel `S`×`S` image and its mask.
fn augmented(cfg: &AugmentConfig, img: &[f32], mask: &[u8], seed: u64) -> (Vec<f32>, Vec<u8>) {
    let (mut img, mut mask) = (img.to_vec(), mask.to_vec());
    augment(
        cfg,
        &mut img,
        &mut mask,
        1,
        1,
        (S, S),
        &mut StdRng::seed_from_u64(seed),
    );
    (img, mask)
}

/// An asymmetric "L" (so flips and rotations are visible), as image (1.0 inside, 0 outside)
/// and mask.
fn l_shape() -> (Vec<f32>, Vec<u8>) {
    let mut m = vec![0u8; S * S];
    for y in 14..46 {
        for x in 18..28 {
            m[y * S + x] = 1;
        }
    }
    for y in 36..46 {
        for x in 28..44 {
            m[y * S + x] = 1;
        }
    }
    (m.iter().map(|&v| f32::from(v)).collect(), m)
}

fn centroid(m: impl Iterator<Item = bool>) -> (f64, f64, f64) {
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (i, on) in m.enumerate() {
        if on {
            n += 1.0;
            sx += (i % S) as f64;
            sy += (i / S) as f64;
        }
    }
    (n, sx / n.max(1.0), sy / n.max(1.0))
}

#[test]
fn geometric_augmentations_keep_image_and_mask_aligned() {
    let cfg = AugmentConfig::none()
        .with_p_flip_h(0.5)
        .with_p_flip_v(0.5)
        .with_p_rotate(1.0)
        .with_max_rotate_deg(40.0)
        .with_p_shift(1.0)
        .with_max_shift(0.15)
        .with_p_zoom(1.0)
        .with_max_zoom(0.2)
        .with_p_shear(1.0)
        .with_max_shear(0.2);
    let (img0, mask0) = l_shape();
    let (_, cx0, cy0) = centroid(mask0.iter().map(|&v| v != 0));
    let mut moved = 0;
    for seed in 0..40 {
        let (img, mask) = augmented(&cfg, &img0, &mask0, seed);
        let (nm, mx, my) = centroid(mask.iter().map(|&v| v != 0));
        let (ni, ix, iy) = centroid(img.iter().map(|&v| v > 0.5));
        assert!(nm > 100.0, "seed {seed}: mask lost ({nm} px)");
        let inter = mask
            .iter()
            .zip(&img)
            .filter(|(&m, &v)| m != 0 && v > 0.5)
            .count() as f64;
        let iou = inter / (nm + ni - inter);
        assert!(iou > 0.9, "seed {seed}: image/mask IoU {iou:.3}");
        assert!(
            (mx - ix).abs() < 0.5 && (my - iy).abs() < 0.5,
            "seed {seed}: centroids {mx:.2},{my:.2} vs {ix:.2},{iy:.2}"
        );
        if (mx - cx0).abs() + (my - cy0).abs() > 2.0 {
            moved += 1;
        }
    }
    assert!(
        moved >= 30,
        "the transforms hardly moved anything ({moved}/40)"
    );
}

#[test]
fn horizontal_flip_is_exact_mirror() {
    let cfg = AugmentConfig::none().with_p_flip_h(1.0);
    let (img0, mask0) = l_shape();
    let (img, mask) = augmented(&cfg, &img0, &mask0, 1);
    for y in 0..S {
        for x in 0..S {
            assert_eq!(mask[y * S + x], mask0[y * S + (S - 1 - x)]);
            assert!((img[y * S + x] - img0[y * S + (S - 1 - x)]).abs() < 1e-5);
        }
    }
}

#[test]
fn intensity_augmentations_leave_the_mask_alone() {
    let cfg = AugmentConfig::none()
        .with_p_noise(1.0)
        .with_p_blur(1.0)
        .with_p_intensity(1.0);
    let (img0, mask0) = l_shape();
    let (img, mask) = augmented(&cfg, &img0, &mask0, 3);
    assert_eq!(mask, mask0);
    let diff: f32 = img.iter().zip(&img0).map(|(a, b)| (a - b).abs()).sum();
    assert!(diff > 1.0, "image unchanged");
}

#[test]
fn gamma_is_monotone_and_keeps_the_unit_range() {
    // A gamma change re-maps intensities between scanners but must keep their order, keep 0 and
    // 1 where they are (background stays background) and leave the mask alone.
    let cfg = AugmentConfig::none().with_p_gamma(1.0).with_max_gamma(0.5);
    let img0: Vec<f32> = (0..S * S).map(|i| i as f32 / (S * S - 1) as f32).collect();
    let mask0 = vec![1u8; S * S];
    let mut changed = 0;
    for seed in 0..8 {
        let (img, mask) = augmented(&cfg, &img0, &mask0, seed);
        assert_eq!(mask, mask0);
        assert_eq!((img[0], img[S * S - 1]), (0.0, 1.0));
        assert!(img.windows(2).all(|w| w[0] <= w[1]), "not monotone");
        let mid = img[S * S / 2];
        assert!((0.0..=1.0).contains(&mid));
        if (mid - img0[S * S / 2]).abs() > 0.02 {
            changed += 1;
        }
    }
    assert!(changed >= 4, "gamma hardly changed anything ({changed}/8)");
    assert!(AugmentConfig::robust().enabled() && AugmentConfig::robust().p_gamma > 0.0);
}

/// A disc of radius `r` at the centre, as mask.
fn disc(r: f64) -> Vec<u8> {
    let c = (S as f64 - 1.0) / 2.0;
    (0..S * S)
        .map(|i| {
            let (y, x) = ((i / S) as f64 - c, (i % S) as f64 - c);
            u8::from(x * x + y * y <= r * r)
        })
        .collect()
}

#[test]
fn dark_core_darkens_the_lesion_centre_only_and_keeps_its_label() {
    let mask0 = disc(12.0);
    // Bright lesion (0.8) on tissue (0.4), background 0 in one corner.
    let mut img0: Vec<f32> = mask0
        .iter()
        .map(|&m| if m > 0 { 0.8 } else { 0.4 })
        .collect();
    img0[0] = 0.0;
    let cfg = AugmentConfig::none().with_p_dark_core(Some(1.0));
    let depth = depth(&mask0, (S, S));
    for seed in 0..8 {
        let (img, mask) = augmented(&cfg, &img0, &mask0, seed);
        assert_eq!(mask, mask0, "seed {seed}: the label changed");
        for i in 0..S * S {
            if depth[i] <= 2 {
                assert_eq!(
                    img[i], img0[i],
                    "seed {seed}: pixel {i} off the core changed"
                );
            }
        }
        let centre = img[(S / 2) * S + S / 2];
        assert!(
            centre <= 0.8 * 0.5 + 1e-6,
            "seed {seed}: centre {centre} not darkened"
        );
        assert!(
            centre >= 0.8 * 0.15 - 1e-6,
            "seed {seed}: centre {centre} darker than the range"
        );
    }
}

#[test]
fn dark_core_leaves_thin_lesions_and_configs_without_it_alone() {
    let mask0 = disc(2.0);
    let img0: Vec<f32> = mask0
        .iter()
        .map(|&m| if m > 0 { 0.8 } else { 0.4 })
        .collect();
    let on = AugmentConfig::none().with_p_dark_core(Some(1.0));
    assert_eq!(augmented(&on, &img0, &mask0, 1).0, img0);
    // Saved before the option existed: it reads as off.
    let mut json = serde_json::to_value(AugmentConfig::none()).unwrap();
    json.as_object_mut().unwrap().remove("p_dark_core");
    let old: AugmentConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.p_dark_core, None);
    assert!(!old.enabled());
}

/// A one-slice dataset: `S`×`S`, the image equal to its pixel index, a 2×2 lesion near a corner.
fn corner_lesion_dataset(patch: Option<(usize, f64)>) -> slicewise_train::data::Dataset {
    let mut mask = vec![0u8; S * S];
    for (y, x) in [(3, 58), (3, 59), (4, 58), (4, 59)] {
        mask[y * S + x] = 1;
    }
    slicewise_train::data::Dataset {
        volumes: vec!["v".into()],
        strata: vec![0],
        slices: vec![slicewise_train::data::Slice {
            image: (0..S * S).map(|i| i as f32).collect(),
            mask,
            stripped: None,
            volume: 0,
            index: 0,
        }],
        channels: 1,
        strip_probability: 0.0,
        size: S,
        context: 0,
        patch,
    }
}

/// Training crops: augmented batches are cut to the crop, image and mask from the same place
/// (the image holds each pixel's index, so the mask's lesion must sit where the image says);
/// with share 1 every crop holds the small corner lesion; unaugmented batches stay whole.
#[test]
fn training_crops_cut_image_and_mask_together_and_find_the_lesion() {
    use slicewise_train::loader::make_batch;
    let none = AugmentConfig::none();
    let ds = corner_lesion_dataset(Some((16, 1.0)));
    for seed in 0..20 {
        let b = make_batch(&ds, &[0], Some(&none), &mut StdRng::seed_from_u64(seed));
        assert_eq!((b.size, b.images.len(), b.masks.len()), (16, 256, 256));
        assert_eq!(
            b.masks.iter().filter(|&&m| m != 0).count(),
            4,
            "seed {seed}"
        );
        for (v, &m) in b.images.iter().zip(&b.masks) {
            let (y, x) = (*v as usize / S, *v as usize % S);
            assert_eq!(m, ds.slices[0].mask[y * S + x], "seed {seed}");
        }
        // Rows of the crop are consecutive rows of the slice.
        assert_eq!(b.images[16] - b.images[0], S as f32);
    }
    // Share 0: crops anywhere, so most miss the 2x2 corner lesion.
    let ds0 = corner_lesion_dataset(Some((16, 0.0)));
    let hits = (0..40)
        .filter(|&seed| {
            let b = make_batch(&ds0, &[0], Some(&none), &mut StdRng::seed_from_u64(seed));
            b.masks.iter().any(|&m| m != 0)
        })
        .count();
    assert!(hits < 20, "{hits} of 40 random crops hold the lesion");
    let whole = make_batch(&ds, &[0], None, &mut StdRng::seed_from_u64(0));
    assert_eq!((whole.size, whole.images.len()), (S, S * S));
}

/// 2.5D context: a channel's context slices get the same geometry and the same intensity
/// change (gamma, contrast, brightness, blur drawn once per channel), so three equal slices stay
/// equal; a second channel draws its own change.
#[test]
fn context_slices_share_their_channels_augmentation() {
    // Noise is drawn per voxel (independent across slices too), so it is left out here.
    let cfg = AugmentConfig::none()
        .with_p_intensity(1.0)
        .with_max_contrast(0.3)
        .with_max_brightness(0.3)
        .with_p_gamma(1.0)
        .with_max_gamma(0.5)
        .with_p_blur(1.0)
        .with_p_flip_h(0.5)
        .with_p_rotate(1.0);
    let (one, mask0) = l_shape();
    let plane = S * S;
    let mut differ = 0;
    for seed in 0..8 {
        // Two channels, each three equal context slices; channel 1 scaled so both stay in range.
        let mut img: Vec<f32> = one.repeat(3);
        img.extend(one.iter().map(|v| v * 0.5).collect::<Vec<_>>().repeat(3));
        let mut mask = mask0.clone();
        augment(
            &cfg,
            &mut img,
            &mut mask,
            2,
            3,
            (S, S),
            &mut StdRng::seed_from_u64(seed),
        );
        for ch in 0..2 {
            let stack = &img[ch * 3 * plane..(ch + 1) * 3 * plane];
            let same =
                stack[..plane] == stack[plane..2 * plane] && stack[..plane] == stack[2 * plane..];
            assert!(same, "seed {seed}: channel {ch}'s context slices differ");
        }
        let ratio = |p: usize| img[3 * plane + p] / img[p];
        let bright = (0..plane).find(|&p| img[p] > 0.1).unwrap_or(0);
        differ += usize::from((ratio(bright) - 0.5).abs() > 1e-3);
    }
    assert!(
        differ > 0,
        "the channels never drew different intensity changes"
    );
}
