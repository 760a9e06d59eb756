//! Training data: 2-D slices with masks, grouped by volume (patient), preprocessed once and kept
//! in memory.
//!
//! Sources, listed and read by [`super::sources`] through the engine's readers:
//! * `pairs`: a folder of volumes, each a sub-folder of `N.tif` + `N_mask.tif` slices (the LGG
//!   layout; `.tiff`/`.png` too, `_mask` in any case), ordered by the last number in the name,
//!   as the engine reads the folder. Images are RGB or grey, masks are {0, 255} (any non-zero
//!   value is foreground).
//! * `nifti`: MSD layout, `imagesTr/` + `labelsTr/` (or `images/` + `labels/`) with the same file
//!   names, sliced along an axis.
//! * `coco`: a COCO JSON with polygon annotations next to its images (see [`super::coco`]).
//!
//! Preprocessing is the engine's own (`slicewise::infer::preprocess`): pick the model's source
//! channels, normalise per channel over the whole volume (the contract's [`Normalization`]), and
//! resize each slice to `size × size` (bilinear, half-pixel centres; masks nearest), so a model
//! sees at inference exactly what it saw in training.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use burn::config::Config;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use ndarray::{ArrayView2, ArrayViewMut2};

use slicewise::error::{Error, Result};
use slicewise::infer::crop::{foreground_box, CropBox};
use slicewise::infer::preprocess::{slice_norm, volume_norm, ChannelNorm, Resize};
use slicewise::infer::Normalization;

use super::coco::coco_volumes;
pub use super::raw::{RawVolume, Source, SourceKind};
use super::sources;

/// Where the training data comes from.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// Folders of image + `_mask` pairs (LGG layout).
    Pairs,
    /// NIfTI image/label pairs (MSD layout).
    Nifti,
    /// COCO JSON polygons.
    Coco,
}

/// What to read and how to preprocess it (saved with the training config; the preprocessing part
/// goes into the exported model's contract).
#[derive(Config, Debug)]
pub struct DataConfig {
    /// The data folder.
    pub root: String,
    /// More data folders of the same layout, read in the same run. Each folder is a stratum of
    /// the split: its volumes are split on their own, so every split has volumes of each.
    #[config(default = "Vec::new()")]
    pub extra_roots: Vec<String>,
    /// Source layout.
    #[config(default = "DataKind::Pairs")]
    pub kind: DataKind,
    /// Source channels the model takes, in order (LGG: 0 pre-contrast, 1 FLAIR, 2 post-contrast).
    #[config(default = "vec![1]")]
    pub channels: Vec<usize>,
    /// Average all source channels into one grey channel (then `channels` must be `[0]`).
    #[config(default = false)]
    pub grayscale: bool,
    /// Model input size (square).
    #[config(default = 128)]
    pub size: usize,
    /// Crop each volume's slices to its foreground box (normalised values above this) before
    /// resizing: the contract's `crop_foreground` step, see `slicewise::infer::crop`.
    #[config(default = "None")]
    pub crop_foreground: Option<f32>,
    /// Also prepare a skull-stripped copy of every volume (see [`super::strip`]): its share of
    /// the training samples, 0 for none.
    #[config(default = 0.0)]
    pub strip_probability: f64,
    /// Per-volume normalisation.
    #[config(default = "Normalization::Percentile { lower: 1.0, upper: 99.0 }")]
    pub normalization: Normalization,
    /// NIfTI: the array axis to slice along (0 = x, 1 = y, 2 = z of the file's voxel grid).
    #[config(default = 2)]
    pub axis: usize,
    /// Number of classes including background: 2 gives a binary foreground (label > 0) mask.
    #[config(default = 2)]
    pub classes: usize,
    /// Use at most this many volumes (sorted by name; 0: all). For quick runs and tests.
    #[config(default = 0)]
    pub max_volumes: usize,
    /// Fraction of volumes held out for validation.
    #[config(default = 0.2)]
    pub val_fraction: f64,
    /// Fraction of volumes held out for testing (never seen while training or selecting).
    #[config(default = 0.0)]
    pub test_fraction: f64,
    /// Explicit validation volumes by name (overrides `val_fraction`).
    #[config(default = "None")]
    pub val_volumes: Option<Vec<String>>,
    /// Seed of the volume split.
    #[config(default = 42)]
    pub split_seed: u64,
    /// Cross-validation: split the volumes into this many folds (0: no cross-validation, the
    /// fractions above split them). Each data folder is dealt round-robin over the folds after
    /// a seeded shuffle, so every fold holds volumes of each; fold [`DataConfig::fold`] is the
    /// test part, the others train, and nothing is held out for validation (a cross-validated
    /// run takes its last epoch: the held-out fold chooses nothing). The options added after
    /// version 1 of `config.json` are `Option`s, so older runs' configs still read.
    #[config(default = "None")]
    pub folds: Option<usize>,
    /// The held-out fold (0-based) when `folds` > 0 (None: 0).
    #[config(default = "None")]
    pub fold: Option<usize>,
    /// Train on random `patch × patch` crops of the `size × size` slices (after augmentation),
    /// so a model can work at a high resolution for the cost of a small input; it runs on the
    /// whole slice at inference (the contract's size). None: whole slices.
    #[config(default = "None")]
    pub patch: Option<usize>,
    /// With `patch`: the share of crops centred on a lesion pixel of a slice that has one (the
    /// rest anywhere), nnU-Net's foreground oversampling (None: 0.33).
    #[config(default = "None")]
    pub patch_foreground: Option<f64>,
    /// 2.5D context: the model sees slices z−k…z+k of each source channel (edges replicated), as
    /// the contract's `context_slices` declares; None or 0 for plain 2-D slices.
    #[config(default = "None")]
    pub context: Option<usize>,
    /// Training slices with foreground are repeated this many times per epoch (1: none).
    #[config(default = 1)]
    pub foreground_oversample: usize,
    /// Threads decoding volumes (0: available parallelism).
    #[config(default = 0)]
    pub workers: usize,
}

impl DataConfig {
    /// Cross-validation folds (0: none).
    pub fn cv_folds(&self) -> usize {
        self.folds.unwrap_or(0)
    }

    /// The held-out cross-validation fold.
    pub fn held_out_fold(&self) -> usize {
        self.fold.unwrap_or(0)
    }

    /// The 2.5D context k (0: none).
    pub fn context_slices(&self) -> usize {
        self.context.unwrap_or(0)
    }
}

/// One preprocessed slice.
#[derive(Debug, Clone)]
pub struct Slice {
    /// `[channels, size, size]`, normalised.
    pub image: Vec<f32>,
    /// `[size, size]` class indices (0 = background).
    pub mask: Vec<u8>,
    /// The same slice of the volume's skull-stripped copy, image and mask, when prepared.
    pub stripped: Option<(Vec<f32>, Vec<u8>)>,
    /// Index into [`Dataset::volumes`].
    pub volume: usize,
    /// Slice number within its volume (0-based, in volume order).
    pub index: usize,
}

impl Slice {
    /// Whether the mask has any foreground.
    pub fn has_foreground(&self) -> bool {
        self.mask.iter().any(|&m| m != 0)
    }
}

/// All slices of all volumes, preprocessed.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Volume names (patient folder names, file stems, image groups).
    pub volumes: Vec<String>,
    /// Per volume, the index of the data folder it came from (0: `root`, then `extra_roots`).
    pub strata: Vec<usize>,
    /// Slices, grouped by volume in volume order.
    pub slices: Vec<Slice>,
    /// Model input channels.
    pub channels: usize,
    /// Share of augmented training samples taken from the skull-stripped copies.
    pub strip_probability: f64,
    /// Slice size (square).
    pub size: usize,
    /// 2.5D context k: batches stack slices z−k…z+k of each channel (see [`Dataset::input_channels`]).
    pub context: usize,
    /// Training crops: (side, share centred on a lesion), see [`DataConfig::patch`].
    pub patch: Option<(usize, f64)>,
}

/// Which volumes go where.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Split {
    /// Training volumes.
    pub train: Vec<String>,
    /// Validation volumes (model selection).
    pub val: Vec<String>,
    /// Test volumes (held back).
    pub test: Vec<String>,
}

/// Loads and preprocesses every volume the config names.
pub fn load(cfg: &DataConfig) -> Result<Dataset> {
    if cfg.size == 0 || cfg.channels.is_empty() {
        return Err(Error::InvalidArgument(
            "size and channels must be non-empty".into(),
        ));
    }
    let (srcs, strata) = list_sources(cfg)?;
    let workers = match cfg.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(srcs.len())
    .max(1);
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<usize, Result<Vec<Slice>>>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(src) = srcs.get(i) else { break };
                let r = sources::read(src, cfg.axis).and_then(|raw| preprocess(&raw, i, cfg));
                if let Ok(mut d) = done.lock() {
                    d.insert(i, r);
                }
            });
        }
    });
    let done = done
        .into_inner()
        .map_err(|_| Error::Panic("a loader thread panicked".into()))?;
    let mut slices = Vec::new();
    for (_, r) in done {
        slices.extend(r?);
    }
    Ok(Dataset {
        volumes: srcs.iter().map(|s| s.name.clone()).collect(),
        strata,
        slices,
        channels: cfg.channels.len(),
        strip_probability: cfg.strip_probability,
        size: cfg.size,
        context: cfg.context_slices(),
        patch: cfg
            .patch
            .filter(|&p| p < cfg.size)
            .map(|p| (p, cfg.patch_foreground.unwrap_or(0.33))),
    })
}

/// The volumes of every data folder (each cut to `max_volumes` when set) and each one's folder
/// index. Volume names must be unique across the folders.
fn list_sources(cfg: &DataConfig) -> Result<(Vec<Source>, Vec<usize>)> {
    let (mut srcs, mut strata) = (Vec::new(), Vec::new());
    let roots = std::iter::once(&cfg.root).chain(&cfg.extra_roots);
    for (k, root) in roots.enumerate() {
        let root = PathBuf::from(root);
        let mut found: Vec<Source> = match cfg.kind {
            DataKind::Pairs => sources::pair_volumes(&root)?,
            DataKind::Nifti => sources::nifti_volumes(&root)?,
            DataKind::Coco => coco_volumes(&root)?,
        };
        if found.is_empty() {
            return Err(Error::format(&root, "no training volumes found"));
        }
        if cfg.max_volumes > 0 {
            found.truncate(cfg.max_volumes);
        }
        for s in found {
            if srcs.iter().any(|o: &Source| o.name == s.name) {
                return Err(Error::format(
                    &root,
                    format!("volume {} is also in an earlier data folder", s.name),
                ));
            }
            strata.push(k);
            srcs.push(s);
        }
    }
    Ok((srcs, strata))
}

/// Nearest resize of a label plane (half-pixel centres).
pub fn resize_nearest(src: &[u8], h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    if (h, w) == (oh, ow) {
        return src.to_vec();
    }
    let idx = |o: usize, n: usize, on: usize| {
        (((o as f64 + 0.5) * n as f64 / on as f64) as usize).min(n - 1)
    };
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        let sy = idx(y, h, oh);
        for x in 0..ow {
            out.push(src[sy * w + idx(x, w, ow)]);
        }
    }
    out
}

/// Channel pick, per-volume normalisation, crop and resize of a raw volume, and of its
/// skull-stripped copy when the config asks for one.
pub fn preprocess(raw: &RawVolume, volume: usize, cfg: &DataConfig) -> Result<Vec<Slice>> {
    let picked = pick_channels(raw, cfg)?;
    let grid = (raw.height, raw.width);
    let mut out = prepare(&raw.name, &picked, &raw.masks, grid, volume, cfg)?;
    if cfg.strip_probability > 0.0 {
        let (planes, masks) = super::strip::strip(&picked, &raw.masks, grid, &cfg.normalization);
        let copy = prepare(&raw.name, &planes, &masks, grid, volume, cfg)?;
        for (o, c) in out.iter_mut().zip(copy) {
            o.stripped = Some((c.image, c.mask));
        }
    }
    Ok(out)
}

/// The model's source channels of `raw` (`[c][z][h*w]`), or their grey average.
fn pick_channels(raw: &RawVolume, cfg: &DataConfig) -> Result<Vec<Vec<Vec<f32>>>> {
    let src_c = raw.channels.len();
    if cfg.grayscale {
        let z = raw.masks.len();
        let mut g = vec![vec![0f32; raw.height * raw.width]; z];
        for ch in &raw.channels {
            for (gp, p) in g.iter_mut().zip(ch) {
                for (a, b) in gp.iter_mut().zip(p) {
                    *a += b / src_c as f32;
                }
            }
        }
        return Ok(vec![g]);
    }
    let mut v = Vec::new();
    for &c in &cfg.channels {
        // The engine's rule: a one-channel source serves every model channel (a grey FLAIR
        // slice is the FLAIR channel of an RGB one).
        let c = if src_c == 1 { 0 } else { c };
        let ch = raw.channels.get(c).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: channel {c} asked for, the source has {src_c}",
                raw.name
            ))
        })?;
        v.push(ch.clone());
    }
    Ok(v)
}

/// The engine's own definitions: per-channel parameters over the whole volume (or per slice),
/// the foreground crop box when the contract crops, each source value mapped through the
/// parameters, then the bilinear half-pixel resize (masks: crop, then nearest).
fn prepare(
    name: &str,
    picked: &[Vec<Vec<f32>>],
    masks: &[Vec<u8>],
    (h, w): (usize, usize),
    volume: usize,
    cfg: &DataConfig,
) -> Result<Vec<Slice>> {
    let s = cfg.size;
    let norms: Vec<Option<ChannelNorm>> = picked
        .iter()
        .map(|ch| volume_norm(&cfg.normalization, ch.iter().flat_map(|p| p.iter())))
        .collect();
    let crop = match cfg.crop_foreground {
        Some(t) => {
            let planes = picked[0]
                .iter()
                .map(|p| plane_view(name, p, (h, w)))
                .collect::<Result<Vec<_>>>()?;
            foreground_box(planes.into_iter(), norms[0], t, h, w)
        }
        None => CropBox::full(h, w),
    };
    let resize = Resize::new(crop.rows(), crop.cols(), s, s);
    let max_class = (cfg.classes.max(2) - 1) as u8;
    let mut out = Vec::with_capacity(masks.len());
    for (z, mask) in masks.iter().enumerate() {
        let mut image = vec![0f32; picked.len() * s * s];
        for ((ch, norm), dst) in picked.iter().zip(&norms).zip(image.chunks_exact_mut(s * s)) {
            let whole = plane_view(name, &ch[z], (h, w))?;
            let src = whole.slice(ndarray::s![crop.top..crop.bottom, crop.left..crop.right]);
            let n = norm.unwrap_or_else(|| slice_norm(whole));
            let dst = ArrayViewMut2::from_shape((s, s), dst)
                .map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))?;
            resize.run(src, dst, |v| n.apply(v));
        }
        let cropped = crop_mask(mask, w, crop);
        let mask: Vec<u8> = resize_nearest(&cropped, crop.rows(), crop.cols(), s, s)
            .into_iter()
            .map(|m| {
                if cfg.classes <= 2 {
                    u8::from(m != 0)
                } else {
                    m.min(max_class)
                }
            })
            .collect();
        out.push(Slice {
            image,
            mask,
            stripped: None,
            volume,
            index: z,
        });
    }
    Ok(out)
}

/// A row-major `h × w` plane of volume `name` as a 2-D view.
fn plane_view<'a>(name: &str, p: &'a [f32], (h, w): (usize, usize)) -> Result<ArrayView2<'a, f32>> {
    ArrayView2::from_shape((h, w), p).map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))
}

/// The `crop` box of a row-major label plane `w` pixels wide.
fn crop_mask(mask: &[u8], w: usize, crop: CropBox) -> Vec<u8> {
    (crop.top..crop.bottom)
        .flat_map(|r| &mask[r * w + crop.left..r * w + crop.right])
        .copied()
        .collect()
}

/// Splits volume names by a seeded shuffle, each stratum (data folder, `strata[i]` for
/// `volumes[i]`) on its own: `val_fraction` and `test_fraction` of its volumes (at least one
/// each when the fraction is positive and there are enough volumes), the rest for training.
/// With one stratum this is a plain seeded split.
pub fn split(volumes: &[String], strata: &[usize], cfg: &DataConfig) -> Result<Split> {
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, name) in volumes.iter().enumerate() {
        groups
            .entry(strata.get(i).copied().unwrap_or(0))
            .or_default()
            .push(name.clone());
    }
    let (folds, fold) = (cfg.cv_folds(), cfg.held_out_fold());
    if folds > 0 && cfg.val_volumes.is_some() {
        return Err(Error::InvalidArgument(
            "cross-validation folds and explicit validation volumes exclude each other".into(),
        ));
    }
    if folds > 0 && fold >= folds {
        return Err(Error::InvalidArgument(format!(
            "fold {fold} does not exist: the folds are 0…{}",
            folds - 1
        )));
    }
    let mut s = Split::default();
    for names in groups.into_values() {
        let g = if folds > 0 {
            fold_group(names, cfg)
        } else {
            split_group(names, cfg)
        };
        s.train.extend(g.train);
        s.val.extend(g.val);
        s.test.extend(g.test);
    }
    if let Some(v) = &cfg.val_volumes {
        if let Some(name) = v.iter().find(|n| !s.val.contains(n)) {
            return Err(Error::InvalidArgument(format!(
                "validation volume {name} is not among the training volumes"
            )));
        }
    }
    if s.train.is_empty() {
        return Err(Error::InvalidArgument(
            "no volumes left for training".into(),
        ));
    }
    s.train.sort();
    s.val.sort();
    s.test.sort();
    Ok(s)
}

/// One stratum's split: shuffled by the split seed, test volumes first, then validation (the
/// explicit ones, or a fraction), the rest for training.
fn split_group(mut names: Vec<String>, cfg: &DataConfig) -> Split {
    names.sort();
    let mut rng = StdRng::seed_from_u64(cfg.split_seed);
    names.shuffle(&mut rng);
    let n = names.len();
    let count = |f: f64| {
        if f > 0.0 {
            ((f * n as f64).round() as usize).max(1)
        } else {
            0
        }
    };
    let n_test = count(cfg.test_fraction);
    let test: Vec<String> = names.drain(..n_test.min(names.len())).collect();
    let val: Vec<String> = match &cfg.val_volumes {
        Some(v) => {
            let val = names.iter().filter(|x| v.contains(x)).cloned().collect();
            names.retain(|x| !v.contains(x));
            val
        }
        None => {
            let n_val = count(cfg.val_fraction).min(names.len().saturating_sub(1));
            names.drain(..n_val).collect()
        }
    };
    Split {
        train: names,
        val,
        test,
    }
}

/// One stratum's cross-validation split: shuffled by the split seed, then dealt round-robin
/// over the folds (volume j of the shuffle into fold j mod k, so the folds' sizes differ by at
/// most one per stratum); the held-out fold is the test part, the rest trains.
fn fold_group(mut names: Vec<String>, cfg: &DataConfig) -> Split {
    names.sort();
    names.shuffle(&mut StdRng::seed_from_u64(cfg.split_seed));
    let mut s = Split::default();
    for (j, n) in names.into_iter().enumerate() {
        if j % cfg.cv_folds() == cfg.held_out_fold() {
            s.test.push(n);
        } else {
            s.train.push(n);
        }
    }
    s
}

impl Dataset {
    /// Channels of the model input: each source channel's 2k+1 context slices, channel-major
    /// (channel 0 at z−k…z+k, then channel 1, …), the order the engine stacks them in.
    pub fn input_channels(&self) -> usize {
        self.channels * (2 * self.context + 1)
    }

    /// The slice `offset` slices from slice `i` within its volume, clamped to the volume's first
    /// and last slice (edges replicated). Slices are stored grouped by volume in order.
    pub fn neighbour(&self, i: usize, offset: isize) -> usize {
        let sl = &self.slices[i];
        let first = i - sl.index;
        let mut last = i;
        while last + 1 < self.slices.len() && self.slices[last + 1].volume == sl.volume {
            last += 1;
        }
        (i as isize + offset).clamp(first as isize, last as isize) as usize
    }

    /// Indices of the slices whose volume is in `names`.
    pub fn indices_of(&self, names: &[String]) -> Vec<usize> {
        self.slices
            .iter()
            .enumerate()
            .filter(|(_, s)| names.contains(&self.volumes[s.volume]))
            .map(|(i, _)| i)
            .collect()
    }

    /// Training indices with foreground slices repeated `factor` times.
    pub fn oversampled(&self, indices: &[usize], factor: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let k = if self.slices[i].has_foreground() {
                factor.max(1)
            } else {
                1
            };
            out.extend(std::iter::repeat_n(i, k));
        }
        out
    }
}
