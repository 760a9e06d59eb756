//! Batches assembled (and augmented) by worker threads ahead of the training step.
//!
//! Each batch's randomness comes from `(seed, epoch, batch index)`, and batches are handed out in
//! index order, so a run is reproducible whatever the thread timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::augment::{augment, AugmentConfig};
use super::data::Dataset;

/// One batch, host side.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[n, c, s, s]` images.
    pub images: Vec<f32>,
    /// `[n, s, s]` class indices.
    pub masks: Vec<u8>,
    /// Slice indices into the dataset.
    pub indices: Vec<usize>,
    /// Side of the (square) images and masks: the dataset's size, or the training crop's.
    pub size: usize,
}

impl Batch {
    /// Number of slices.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// A seed for one purpose of one epoch/batch.
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    // SplitMix64 finaliser over a simple combination: decorrelates neighbouring indices.
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds one batch from `indices` (augmented with `rng` when `aug` is given). With 2.5D
/// context each image stacks, per channel, its volume's slices z−k…z+k (edges replicated), all
/// from the same copy (original or skull-stripped); the mask is the centre slice's. Augmented
/// batches of a dataset with training crops are cut to them after the augmentation.
pub fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    aug: Option<&AugmentConfig>,
    rng: &mut StdRng,
) -> Batch {
    let (c, s) = (ds.channels, ds.size);
    let plane = s * s;
    let k = ds.context as isize;
    let mut images = Vec::with_capacity(indices.len() * ds.input_channels() * plane);
    let mut masks = Vec::with_capacity(indices.len() * plane);
    for &i in indices {
        let sl = &ds.slices[i];
        // Only augmented (training) batches draw from the skull-stripped copies; no draw at all
        // when there are none, so runs without them keep their random stream.
        let stripped = matches!((&sl.stripped, aug), (Some(_), Some(_)))
            && rng.random::<f64>() < ds.strip_probability;
        let copy = |j: usize| {
            let o = &ds.slices[j];
            match (&o.stripped, stripped) {
                (Some(alt), true) => (&alt.0, &alt.1),
                _ => (&o.image, &o.mask),
            }
        };
        let mut img = Vec::with_capacity(ds.input_channels() * plane);
        for ch in 0..c {
            for d in -k..=k {
                let (image, _) = copy(ds.neighbour(i, d));
                img.extend_from_slice(&image[ch * plane..(ch + 1) * plane]);
            }
        }
        let mut m = copy(i).1.clone();
        if let Some(a) = aug {
            augment(a, &mut img, &mut m, c, 2 * ds.context + 1, (s, s), rng);
            if let Some((p, share)) = ds.patch {
                (img, m) = crop(&img, &m, s, p, share, rng);
            }
        }
        images.extend(img);
        masks.extend(m);
    }
    let size = match (aug, ds.patch) {
        (Some(_), Some((p, _))) => p,
        _ => s,
    };
    Batch {
        images,
        masks,
        indices: indices.to_vec(),
        size,
    }
}

/// A random `p × p` crop of every plane of `img` and of `mask` (`s × s`): with probability
/// `share`, when the mask has a lesion, centred on one of its pixels (drawn uniformly), else
/// anywhere; always inside the slice.
fn crop(
    img: &[f32],
    mask: &[u8],
    s: usize,
    p: usize,
    share: f64,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<u8>) {
    let lesion: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m != 0)
        .map(|(i, _)| i)
        .collect();
    let span = s - p;
    let (top, left) = if !lesion.is_empty() && rng.random::<f64>() < share {
        let at = lesion[rng.random_range(0..lesion.len())];
        let centre = |v: usize| v.saturating_sub(p / 2).min(span);
        (centre(at / s), centre(at % s))
    } else {
        (rng.random_range(0..=span), rng.random_range(0..=span))
    };
    let cut = |plane: &[f32]| -> Vec<f32> {
        (top..top + p)
            .flat_map(|r| plane[r * s + left..r * s + left + p].iter().copied())
            .collect()
    };
    let image = img.chunks_exact(s * s).flat_map(cut).collect();
    let m = (top..top + p)
        .flat_map(|r| mask[r * s + left..r * s + left + p].iter().copied())
        .collect();
    (image, m)
}

/// The batches of one epoch, produced by `workers` threads (0: on the caller's thread).
pub struct EpochLoader {
    rx: Option<Receiver<(usize, Batch)>>,
    pending: BTreeMap<usize, Batch>,
    next: usize,
    total: usize,
    inline: Option<InlineState>,
}

struct InlineState {
    ds: Arc<Dataset>,
    chunks: Vec<Vec<usize>>,
    aug: Option<AugmentConfig>,
    seed: u64,
    epoch: u64,
}

impl EpochLoader {
    /// Starts loading. `shuffle` shuffles `indices` with `(seed, epoch)`; the last batch may be
    /// smaller.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        ds: Arc<Dataset>,
        mut indices: Vec<usize>,
        batch_size: usize,
        shuffle: bool,
        aug: Option<AugmentConfig>,
        seed: u64,
        epoch: u64,
        workers: usize,
    ) -> Self {
        if shuffle {
            indices.shuffle(&mut StdRng::seed_from_u64(mix_seed(seed, epoch, u64::MAX)));
        }
        let chunks: Vec<Vec<usize>> = indices
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect();
        let total = chunks.len();
        if workers == 0 {
            return EpochLoader {
                rx: None,
                pending: BTreeMap::new(),
                next: 0,
                total,
                inline: Some(InlineState {
                    ds,
                    chunks,
                    aug,
                    seed,
                    epoch,
                }),
            };
        }
        // Bounded: workers run at most a few batches ahead of the trainer.
        let (tx, rx) = sync_channel(2 * workers);
        let chunks = Arc::new(chunks);
        let counter = Arc::new(AtomicUsize::new(0));
        for _ in 0..workers {
            let (tx, ds, chunks, counter, aug) = (
                tx.clone(),
                ds.clone(),
                chunks.clone(),
                counter.clone(),
                aug.clone(),
            );
            std::thread::spawn(move || loop {
                let b = counter.fetch_add(1, Ordering::Relaxed);
                let Some(idx) = chunks.get(b) else { break };
                let mut rng = StdRng::seed_from_u64(mix_seed(seed, epoch, b as u64));
                let batch = make_batch(&ds, idx, aug.as_ref(), &mut rng);
                if tx.send((b, batch)).is_err() {
                    break;
                }
            });
        }
        EpochLoader {
            rx: Some(rx),
            pending: BTreeMap::new(),
            next: 0,
            total,
            inline: None,
        }
    }

    /// Number of batches in the epoch.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Iterator for EpochLoader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if let Some(st) = &self.inline {
            let mut rng = StdRng::seed_from_u64(mix_seed(st.seed, st.epoch, b as u64));
            return Some(make_batch(&st.ds, &st.chunks[b], st.aug.as_ref(), &mut rng));
        }
        loop {
            if let Some(batch) = self.pending.remove(&b) {
                return Some(batch);
            }
            let (i, batch) = self.rx.as_ref()?.recv().ok()?;
            self.pending.insert(i, batch);
        }
    }
}
