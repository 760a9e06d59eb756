//! The streaming sliding window: a0-planes are prepared (resampled, padded) when their first
//! tile is batched, tiles of consecutive planes fill each `session.run` (a tile's mirrors next
//! to it), each tile's mirror-averaged logits are Gaussian-weighted into its plane's
//! accumulator, and a plane whose tiles are all in is divided by the weights, cropped, resampled
//! back, labelled and written into the mask. Only the live planes exist as floats.

use std::collections::VecDeque;
use std::time::Instant;

use ndarray::{s, Array2, Array3, Array4, ArrayView4, ArrayViewMut3, Axis};
use ort::session::RunOptions;

use super::case::Case;
use super::window::Windows;
use crate::error::{Error, Result};
use crate::infer::segment::{label_plane, run_batches};
use crate::infer::{CancelToken, Model, Progress, Timings};

/// A plane whose tiles are being predicted.
struct Live {
    /// Its index along a0 (cropped grid).
    k: usize,
    /// The padded input `[C, P1, P2]`.
    input: Array3<f32>,
    /// Σ Gaussian · logits `[K, P1, P2]`.
    acc: Array3<f32>,
    /// Tiles accumulated so far.
    done: usize,
}

/// One run's fixed parts.
pub(super) struct Stream<'a> {
    pub model: &'a Model,
    pub case: &'a Case,
    pub windows: &'a Windows,
    /// (flip a1, flip a2) per pass, the identity first.
    pub passes: Vec<(bool, bool)>,
    /// Tiles per `session.run`.
    pub batch: usize,
    pub cancel: Option<CancelToken>,
    pub run_options: &'a RunOptions,
    /// The sigmoid threshold (unused by other outputs).
    pub threshold: f32,
}

impl Stream<'_> {
    /// Predicts every plane, writing labels into `labels` (the cropped box on the transposed
    /// grid, `[a0, a1, a2]`).
    pub fn run(
        &self,
        mut labels: ArrayViewMut3<u8>,
        timings: &mut Timings,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<()> {
        let per_plane = self.windows.tiles();
        let planes = self.case.planes();
        let total = planes * per_plane;
        let cancelled = || self.cancel.as_ref().is_some_and(|t| t.is_cancelled());
        let mut live: VecDeque<Live> = VecDeque::new();
        let mut next = 0;
        while next < total {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            let count = self.batch.min(total - next);
            let t = Instant::now();
            let tiles: Vec<(usize, usize)> = (next..next + count)
                .map(|i| (i / per_plane, i % per_plane))
                .collect();
            for &(k, _) in &tiles {
                if live.back().is_none_or(|l| l.k < k) {
                    live.push_back(self.open(k));
                }
            }
            let input = self.batch_input(&live, &tiles);
            timings.preprocess += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = run_batches(self.model, input.view(), Some(self.run_options))
                .map_err(|e| if cancelled() { Error::Cancelled } else { e })?;
            timings.inference += t.elapsed().as_secs_f64();
            let t = Instant::now();
            self.accumulate(&mut live, &tiles, out.view());
            let mut finished = 0;
            while live.front().is_some_and(|l| l.done == per_plane) {
                let l = live.pop_front().expect("front exists");
                self.finish(l, &mut labels);
                finished += 1;
            }
            timings.postprocess += t.elapsed().as_secs_f64();
            next += count;
            if finished > 0 {
                let done = live.front().map_or(planes, |l| l.k);
                if !progress(Progress {
                    done,
                    total: planes,
                }) || cancelled()
                {
                    return Err(Error::Cancelled);
                }
            }
        }
        Ok(())
    }

    /// Plane `k` resampled to the target spacing and padded, centred, with zeros.
    fn open(&self, k: usize) -> Live {
        let w = self.windows;
        let channels = self.model.contract.source_channels.len();
        let mut input = Array3::<f32>::zeros((channels, w.padded[0], w.padded[1]));
        for c in 0..channels {
            let dst = input.slice_mut(s![
                c,
                w.before[0]..w.before[0] + w.size[0],
                w.before[1]..w.before[1] + w.size[1]
            ]);
            self.case.plane_into(c, k, dst);
        }
        Live {
            k,
            input,
            acc: Array3::zeros((self.model.classes(), w.padded[0], w.padded[1])),
            done: 0,
        }
    }

    /// The batch `[tiles × passes, C, p1, p2]`: tile i's pass m in row i·passes + m.
    fn batch_input(&self, live: &VecDeque<Live>, tiles: &[(usize, usize)]) -> Array4<f32> {
        let w = self.windows;
        let [p1, p2] = w.patch;
        let np = self.passes.len();
        let channels = self.model.contract.source_channels.len();
        let mut data = Array4::<f32>::zeros((tiles.len() * np, channels, p1, p2));
        let first = live.front().map_or(0, |l| l.k);
        for (i, &(k, t)) in tiles.iter().enumerate() {
            let [o1, o2] = w.offset(t);
            let src = live[k - first]
                .input
                .slice(s![.., o1..o1 + p1, o2..o2 + p2]);
            for (m, &flip) in self.passes.iter().enumerate() {
                let mut v = src.view();
                flip_view(&mut v, flip);
                data.index_axis_mut(Axis(0), i * np + m).assign(&v);
            }
        }
        data
    }

    /// Adds each tile's mirror-averaged, Gaussian-weighted logits to its plane.
    fn accumulate(
        &self,
        live: &mut VecDeque<Live>,
        tiles: &[(usize, usize)],
        out: ArrayView4<f32>,
    ) {
        let w = self.windows;
        let [p1, p2] = w.patch;
        let np = self.passes.len();
        let g = &w.gaussian / np as f32;
        let first = live.front().map_or(0, |l| l.k);
        for (i, &(k, t)) in tiles.iter().enumerate() {
            let [o1, o2] = w.offset(t);
            let plane = &mut live[k - first];
            for cls in 0..self.model.classes() {
                let mut sum = Array2::<f32>::zeros((p1, p2));
                for (m, &flip) in self.passes.iter().enumerate() {
                    let mut v = out.slice(s![i * np + m, cls, .., ..]);
                    flip_view(&mut v, flip);
                    sum += &v;
                }
                let mut acc = plane.acc.slice_mut(s![cls, o1..o1 + p1, o2..o2 + p2]);
                ndarray::Zip::from(&mut acc)
                    .and(&sum)
                    .and(&g)
                    .for_each(|a, &l, &gw| *a += l * gw);
            }
            plane.done += 1;
        }
    }

    /// Normalises a finished plane by the weights, crops the padding, resamples each class back
    /// to the cropped grid and labels it.
    fn finish(&self, l: Live, labels: &mut ArrayViewMut3<u8>) {
        let w = self.windows;
        let c = &self.model.contract;
        let (b, n) = (w.before, w.size);
        let weight = w.weight.slice(s![b[0]..b[0] + n[0], b[1]..b[1] + n[1]]);
        let planes: Vec<Array2<f32>> = l
            .acc
            .outer_iter()
            .map(|a| {
                let logits = &a.slice(s![b[0]..b[0] + n[0], b[1]..b[1] + n[1]]) / &weight;
                self.case.back(l.k, logits)
            })
            .collect();
        let values: Vec<u8> = c.labels.iter().map(|l| l.value).collect();
        label_plane(
            c.output,
            self.threshold,
            &values,
            &planes,
            labels.index_axis_mut(Axis(0), l.k),
        );
    }
}

/// Mirrors a tile view's last two axes as `flip` says (a view, no copy).
fn flip_view<D: ndarray::Dimension>(v: &mut ndarray::ArrayView<f32, D>, flip: (bool, bool)) {
    let n = v.ndim();
    if flip.0 {
        v.invert_axis(Axis(n - 2));
    }
    if flip.1 {
        v.invert_axis(Axis(n - 1));
    }
}
