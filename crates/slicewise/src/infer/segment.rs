//! The slice pipeline: preprocess (worker thread) → `session.run` (caller's thread) → resize
//! back and label (worker thread) → 3-D cleanup.
//!
//! Memory: besides the input volume and the u8 mask, at most four batches of float tensors exist
//! at once (one being built, one queued, one in inference, one being written back), plus
//! the per-volume statistics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{s, Array2, Array3, Array4, ArrayView2, ArrayView4, ArrayViewMut2, Axis};
use ort::session::RunOptions;
use ort::value::TensorRef;

use super::contract::argmax_class;
use super::crop::{foreground_box, CropBox};
use super::postprocess::{clean, Cleanup};
use super::preprocess::{slice_norm, volume_norm, ChannelNorm, Placement, Resize};
use super::{
    CancelToken, Model, Normalization, OutputKind, Progress, SegmentOptions, Segmentation, Timings,
};
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::volume::Volume;

/// Runs the model on `[N, C, H, W]` without any pre- or postprocessing; `run` may carry a
/// terminate flag. Splits into the graph's fixed batch when it has one.
pub(crate) fn run_batches(
    model: &Model,
    input: ArrayView4<f32>,
    run: Option<&RunOptions>,
) -> Result<Array4<f32>> {
    let c = &model.contract;
    let sh = input.shape();
    if sh[1] != c.input_channels() || sh[2] != c.height || sh[3] != c.width {
        return Err(Error::InvalidArgument(format!(
            "input shape {sh:?} does not match the model's [N, {}, {}, {}]",
            c.input_channels(),
            c.height,
            c.width
        )));
    }
    let n = sh[0];
    let mut out = Array4::<f32>::zeros((n, model.classes, c.height, c.width));
    let step = model.fixed_batch.unwrap_or(n.max(1));
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let chunk = input.slice(s![start..end, .., .., ..]);
        let chunk = if model.fixed_batch.is_some_and(|b| b != end - start) {
            // Pad the last chunk to the fixed batch.
            let mut p = Array4::<f32>::zeros((step, sh[1], sh[2], sh[3]));
            p.slice_mut(s![..end - start, .., .., ..]).assign(&chunk);
            run_one(model, p.view(), run)?
                .slice(s![..end - start, .., .., ..])
                .to_owned()
        } else {
            run_one(model, chunk, run)?
        };
        out.slice_mut(s![start..end, .., .., ..]).assign(&chunk);
        start = end;
    }
    Ok(out)
}

fn run_one(model: &Model, input: ArrayView4<f32>, run: Option<&RunOptions>) -> Result<Array4<f32>> {
    let c = &model.contract;
    let input = input.as_standard_layout();
    let tensor = TensorRef::from_array_view(input.view())
        .map_err(|e| Error::inference(format!("input tensor: {e}")).with_source(e))?;
    let mut session = model.session.lock().unwrap_or_else(|p| p.into_inner());
    let inputs = ort::inputs![c.input_name.as_str() => tensor];
    let own;
    let run = match run {
        Some(r) => r,
        None => {
            own = quiet_run_options()?;
            &own
        }
    };
    let outputs = session
        .run_with_options(inputs, run)
        .map_err(|e| Error::inference(e.to_string()).with_source(e))?;
    let out = outputs
        .get(&c.output_name)
        .ok_or_else(|| Error::inference(format!("no output `{}`", c.output_name)))?
        .try_extract_array::<f32>()
        .map_err(|e| Error::inference(format!("output `{}`: {e}", c.output_name)).with_source(e))?;
    let want = [input.shape()[0], model.classes, c.height, c.width];
    if out.shape() != want {
        return Err(Error::inference(format!(
            "output `{}` has shape {:?}, expected {want:?}",
            c.output_name,
            out.shape()
        )));
    }
    out.into_dimensionality::<ndarray::Ix4>()
        .map(|a| a.to_owned())
        .map_err(|e| Error::inference(e.to_string()).with_source(e))
}

/// Run options at warning level: the session logs verbosely (to capture node placement), and a
/// run inherits the session's level unless told otherwise.
pub(crate) fn quiet_run_options() -> Result<RunOptions> {
    let mut r = RunOptions::new().map_err(|e| Error::runtime(e.to_string()).with_source(e))?;
    r.set_log_level(ort::logging::LogLevel::Warning)
        .map_err(|e| Error::runtime(e.to_string()).with_source(e))?;
    Ok(r)
}

struct Batch {
    start: usize,
    count: usize,
    data: Array4<f32>,
}

/// Array axis of the `[c, z, y, x]` volume for index axis `axis` (0 = i/x, 1 = j/y, 2 = k/z).
fn array_axis(axis: usize) -> usize {
    3 - axis
}

/// Everything needed to turn slices of one volume into model input.
pub(crate) struct Prep<'a> {
    volume: &'a Volume,
    model: &'a Model,
    sources: Vec<usize>,
    norms: Vec<Option<ChannelNorm>>,
    vaxis: usize,
    /// The in-plane box every slice is cropped to (the whole slice unless the contract crops).
    crop: CropBox,
    place: Placement,
    fwd: Resize,
    /// Slices along the acquisition axis.
    pub n_slices: usize,
    /// Non-fatal notes.
    pub warnings: Vec<String>,
}

impl<'a> Prep<'a> {
    /// Checks the volume against the model and computes the volume-level statistics.
    pub(crate) fn new(model: &'a Model, volume: &'a Volume) -> Result<Prep<'a>> {
        let c = &model.contract;
        let mut warnings = Vec::new();
        let axis = volume.meta.acquisition_axis;
        if axis > 2 {
            return Err(Error::InvalidArgument(format!(
                "acquisition axis {axis} is not 0, 1 or 2"
            )));
        }
        let vch = volume.channels();
        let sh = volume.data.shape();
        if vch == 0 || sh[1] == 0 || sh[2] == 0 || sh[3] == 0 {
            return Err(Error::InvalidArgument(format!("empty volume {sh:?}")));
        }
        let mut sources = Vec::new();
        for (k, &src) in c.source_channels.iter().enumerate() {
            if src < vch {
                sources.push(src);
            } else if vch == 1 {
                warnings.push(format!(
                    "model channel {k} expects source channel {src}; the volume has one channel, used instead"
                ));
                sources.push(0);
            } else {
                return Err(Error::InvalidArgument(format!(
                    "model channel {k} expects source channel {src} but the volume has {vch} channels"
                )));
            }
        }
        let mut norms = Vec::new();
        for &src in &sources {
            let ch = volume.data.index_axis(Axis(0), src);
            let norm = match ch.as_slice() {
                Some(sl) => volume_norm(&c.normalization, sl.iter()),
                None => volume_norm(&c.normalization, ch.iter()),
            };
            norms.push(norm);
        }
        let vaxis = array_axis(axis);
        let n_slices = sh[vaxis];
        let first = volume.data.index_axis(Axis(vaxis), 0);
        let (rows, cols) = (first.shape()[1], first.shape()[2]);
        let crop = match c.crop_foreground {
            Some(t) => {
                let channel = volume.data.index_axis(Axis(0), sources[0]);
                let planes = channel.axis_iter(Axis(vaxis - 1));
                foreground_box(planes, norms[0], t, rows, cols)
            }
            None => CropBox::full(rows, cols),
        };
        let place = Placement::new(crop.rows(), crop.cols(), c.height, c.width, c.keep_aspect);
        Ok(Prep {
            volume,
            model,
            sources,
            norms,
            vaxis,
            crop,
            place,
            fwd: Resize::new(crop.rows(), crop.cols(), place.height, place.width),
            n_slices,
            warnings,
        })
    }

    /// Model input for slices `start..start + count`; pass `j` of `passes` (flip rows, flip
    /// columns) fills rows `j count..(j + 1) count`, the unflipped pass first. With 2.5D context
    /// k, model channel `i (2k+1) + j` is source channel i at slice z − k + j, clamped to the
    /// volume (edges replicated).
    pub(crate) fn batch(&self, start: usize, count: usize, passes: &[Flip]) -> Array4<f32> {
        let c = &self.model.contract;
        let per = passes.len();
        let ctx = c.context_slices;
        let group = 2 * ctx + 1;
        let mut data = Array4::<f32>::zeros((count * per, c.input_channels(), c.height, c.width));
        let k = self.crop;
        for b in 0..count {
            let z = start + b;
            for (i, &src) in self.sources.iter().enumerate() {
                let channel = self.volume.data.index_axis(Axis(0), src);
                for j in 0..group {
                    let zz = (z + j).saturating_sub(ctx).min(self.n_slices - 1);
                    let whole = channel.index_axis(Axis(self.vaxis - 1), zz);
                    let plane = whole.slice(s![k.top..k.bottom, k.left..k.right]);
                    self.fill_plane(plane, i, &mut data, b, i * group + j);
                }
            }
            for (j, &flip) in passes.iter().enumerate().skip(1) {
                let mut flipped = data.slice(s![b, .., .., ..]).to_owned();
                flip_plane(&mut flipped, flip, 1);
                data.slice_mut(s![j * count + b, .., .., ..])
                    .assign(&flipped);
            }
        }
        data
    }

    /// Writes `plane` of source `i` (cropped), normalised and resized, into model channel
    /// `channel` of batch row `b`.
    fn fill_plane(
        &self,
        plane: ArrayView2<f32>,
        i: usize,
        data: &mut Array4<f32>,
        b: usize,
        channel: usize,
    ) {
        let norm = match self.norms[i] {
            Some(nm) => nm,
            None => {
                debug_assert_eq!(
                    self.model.contract.normalization,
                    Normalization::MinMaxSlice
                );
                slice_norm(plane)
            }
        };
        let place = self.place;
        let dst = data.slice_mut(s![
            b,
            channel,
            place.top..place.top + place.height,
            place.left..place.left + place.width
        ]);
        self.fwd.run(plane, dst, |v| norm.apply(v));
    }
}

/// One test-time pass: (flip rows, flip columns).
type Flip = (bool, bool);

/// Mirrors `a` in place as `flip` says; its rows are axis `row_axis`, its columns the next.
fn flip_plane<S: ndarray::RawData, D: ndarray::Dimension>(
    a: &mut ndarray::ArrayBase<S, D>,
    flip: Flip,
    row_axis: usize,
) {
    if flip.0 {
        a.invert_axis(Axis(row_axis));
    }
    if flip.1 {
        a.invert_axis(Axis(row_axis + 1));
    }
}

/// The passes a run makes: the unflipped one, and with TTA the contract's flips.
fn passes(model: &Model, options: &SegmentOptions) -> &'static [Flip] {
    if options.tta {
        model.contract.tta_flips.passes()
    } else {
        &[(false, false)]
    }
}

pub(crate) fn segment(
    model: &Model,
    volume: &Volume,
    options: &SegmentOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Segmentation> {
    let t0 = Instant::now();
    let prep = Prep::new(model, volume)?;
    let stats_time = t0.elapsed().as_secs_f64();
    let mut warnings = prep.warnings.clone();
    warnings.extend(threshold_warning(model, options));
    let batch = slices_per_batch(model, options, &mut warnings);
    let sh = volume.data.shape();
    let mut labels = Array3::<u8>::zeros((sh[1], sh[2], sh[3]));
    let pipeline = Pipeline {
        model,
        prep: &prep,
        write_back: WriteBack::new(model, &prep, options),
        batch,
        passes: passes(model, options),
        cancel: options.cancel.clone(),
    };
    let mut timings = Timings::default();
    pipeline.run(&mut labels, &mut timings, progress)?;
    timings.preprocess += stats_time;
    Ok(finish(model, volume, options, labels, timings, warnings))
}

/// Slices per batch: the requested number, or what fills the graph's fixed batch (TTA's flipped
/// copies included), with a warning when that differs.
fn slices_per_batch(model: &Model, options: &SegmentOptions, warnings: &mut Vec<String>) -> usize {
    let mut batch = options.batch_size;
    if let Some(fb) = model.fixed_batch {
        let per = passes(model, options).len();
        if batch * per != fb {
            batch = (fb / per).max(1);
            warnings.push(format!(
                "the model has a fixed batch of {fb}; using {batch} slices per batch"
            ));
        }
    }
    batch
}

/// One run's three stages: preprocessing (worker thread), `session.run` (caller's thread), write-back
/// (worker thread), joined by one-batch queues.
struct Pipeline<'a> {
    model: &'a Model,
    prep: &'a Prep<'a>,
    write_back: WriteBack,
    batch: usize,
    passes: &'static [Flip],
    cancel: Option<CancelToken>,
}

impl Pipeline<'_> {
    /// Runs every slice through the stages, writing `labels`; adds each stage's time to
    /// `timings`. The first error, or cancellation, ends the run.
    fn run(
        &self,
        labels: &mut Array3<u8>,
        timings: &mut Timings,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<()> {
        let stop = AtomicBool::new(false);
        let run_opts = Arc::new(quiet_run_options()?);
        std::thread::scope(|scope| {
            let (pre_tx, pre_rx) = sync_channel::<Batch>(1);
            let (post_tx, post_rx) = sync_channel::<Batch>(1);
            let stop = &stop;
            let pre = scope.spawn(move || self.preprocess(pre_tx, stop));
            let post = scope.spawn(move || self.write_back.run(post_rx, labels));
            let watcher = self.cancel.clone().map(|token| {
                let run = run_opts.clone();
                scope.spawn(move || watch(token, run, stop))
            });
            let outcome = self.infer(&pre_rx, &post_tx, &run_opts, timings, progress);
            stop.store(true, Ordering::Relaxed);
            drop(pre_rx);
            drop(post_tx);
            let join = |h: std::thread::ScopedJoinHandle<'_, f64>| {
                h.join()
                    .map_err(|p| Error::Panic(crate::error::panic_message(p.as_ref())))
            };
            timings.preprocess += join(pre)?;
            timings.postprocess = join(post)?;
            if let Some(w) = watcher {
                let _ = w.join();
            }
            outcome
        })
    }

    /// The preprocessing worker: builds the batches in order until all are sent or `stop` is
    /// set; returns the time it spent.
    fn preprocess(&self, tx: SyncSender<Batch>, stop: &AtomicBool) -> f64 {
        let n_slices = self.prep.n_slices;
        let mut spent = 0.0;
        let mut start = 0;
        while start < n_slices && !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let count = self.batch.min(n_slices - start);
            let data = self.prep.batch(start, count, self.passes);
            spent += t.elapsed().as_secs_f64();
            if tx.send(Batch { start, count, data }).is_err() {
                break;
            }
            start += count;
        }
        spent
    }

    /// The caller's thread: runs each preprocessed batch, hands the output to the write-back
    /// worker and reports progress; adds the time in `session.run` to `timings.inference`.
    fn infer(
        &self,
        pre_rx: &Receiver<Batch>,
        post_tx: &SyncSender<Batch>,
        run_opts: &RunOptions,
        timings: &mut Timings,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<()> {
        let cancelled = || self.cancel.as_ref().is_some_and(|t| t.is_cancelled());
        let mut done = 0;
        for b in pre_rx.iter() {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            let t = Instant::now();
            let r = run_batches(self.model, b.data.view(), Some(run_opts));
            timings.inference += t.elapsed().as_secs_f64();
            let data = r.map_err(|e| if cancelled() { Error::Cancelled } else { e })?;
            done += b.count;
            let out = Batch {
                start: b.start,
                count: b.count,
                data,
            };
            if post_tx.send(out).is_err() {
                return Err(Error::inference("write-back worker stopped"));
            }
            let report = Progress {
                done,
                total: self.prep.n_slices,
            };
            if !progress(report) || cancelled() {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }
}

/// Terminates the batch in flight once `token` is cancelled; ends when `stop` is set.
pub(crate) fn watch(token: CancelToken, run: Arc<RunOptions>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if token.is_cancelled() {
            let _ = run.terminate();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Turns model output back into labels on the volume's grid: the placed box cropped (and TTA's
/// flipped copies flipped back and averaged in), resized back, then thresholded or argmaxed.
struct WriteBack {
    back: Resize,
    /// The box on the slice grid the labels are written into (outside it: background).
    crop: CropBox,
    place: Placement,
    vaxis: usize,
    passes: &'static [Flip],
    classes: usize,
    output: OutputKind,
    threshold: f32,
    label_values: Vec<u8>,
}

impl WriteBack {
    fn new(model: &Model, prep: &Prep, options: &SegmentOptions) -> WriteBack {
        let c = &model.contract;
        let (place, crop) = (prep.place, prep.crop);
        WriteBack {
            back: Resize::new(place.height, place.width, crop.rows(), crop.cols()),
            crop,
            place,
            vaxis: prep.vaxis,
            passes: passes(model, options),
            classes: model.classes,
            output: c.output,
            threshold: options.threshold.unwrap_or(c.threshold),
            label_values: c.labels.iter().map(|l| l.value).collect(),
        }
    }

    /// The write-back worker: owns the mask while the pipeline runs, writes each batch's slices
    /// into it; returns the time it spent.
    fn run(&self, rx: Receiver<Batch>, labels: &mut Array3<u8>) -> f64 {
        let mut spent = 0.0;
        let k = self.crop;
        let mut probs = vec![Array2::<f32>::zeros((k.rows(), k.cols())); self.classes];
        for b in rx {
            let t = Instant::now();
            for i in 0..b.count {
                self.probabilities(&b, i, &mut probs);
                let mut out = labels.index_axis_mut(Axis(self.vaxis - 1), b.start + i);
                self.label(&probs, out.slice_mut(s![k.top..k.bottom, k.left..k.right]));
            }
            spent += t.elapsed().as_secs_f64();
        }
        spent
    }

    /// The class probabilities of row `k` of `b`, on the slice grid.
    fn probabilities(&self, b: &Batch, k: usize, probs: &mut [Array2<f32>]) {
        let place = self.place;
        let (rows, cols) = (
            place.top..place.top + place.height,
            place.left..place.left + place.width,
        );
        for (cls, plane) in probs.iter_mut().enumerate() {
            if self.passes.len() == 1 {
                let p = b.data.slice(s![k, cls, rows.clone(), cols.clone()]);
                self.back.run(p, plane.view_mut(), |v| v);
                continue;
            }
            // Each pass's canvas mirrored back, summed in pass order, then averaged.
            let mut sum = Array2::<f32>::zeros((place.height, place.width));
            for (j, &flip) in self.passes.iter().enumerate() {
                let mut q = b.data.slice(s![j * b.count + k, cls, .., ..]);
                flip_plane(&mut q, flip, 0);
                sum += &q.slice(s![rows.clone(), cols.clone()]);
            }
            let avg = sum * (1.0 / self.passes.len() as f32);
            self.back.run(avg.view(), plane.view_mut(), |v| v);
        }
    }

    /// Labels one slice.
    fn label(&self, probs: &[Array2<f32>], out: ArrayViewMut2<u8>) {
        label_plane(self.output, self.threshold, &self.label_values, probs, out);
    }
}

/// Labels one plane from the model's per-class planes: sigmoid foreground above the threshold;
/// softmax or logits argmax (class 0 is background, ties to the lowest class); regions in order,
/// each where its logit is above 0, a later one overwriting an earlier one.
pub(crate) fn label_plane(
    output: OutputKind,
    threshold: f32,
    label_values: &[u8],
    probs: &[Array2<f32>],
    mut out: ArrayViewMut2<u8>,
) {
    match output {
        OutputKind::Sigmoid => {
            let v = label_values[0];
            ndarray::Zip::from(&mut out)
                .and(&probs[0])
                .for_each(|o, &p| {
                    *o = if p > threshold { v } else { 0 };
                });
        }
        OutputKind::Softmax | OutputKind::Logits => {
            ndarray::Zip::indexed(&mut out).for_each(|(r, cc), o| {
                let best = argmax_class(probs.iter().map(|pl| pl[[r, cc]]));
                *o = if best == 0 { 0 } else { label_values[best - 1] };
            });
        }
        OutputKind::Regions => {
            out.fill(0);
            for (plane, &v) in probs.iter().zip(label_values) {
                ndarray::Zip::from(&mut out).and(plane).for_each(|o, &l| {
                    if l > 0.0 {
                        *o = v;
                    }
                });
            }
        }
    }
}

/// The warning for a threshold asked of a model whose output no threshold applies to.
pub(crate) fn threshold_warning(model: &Model, options: &SegmentOptions) -> Option<String> {
    let output = model.contract.output;
    (options.threshold.is_some() && !output.thresholded()).then(|| {
        format!(
            "the threshold option does not apply to a {} model (argmax or region logits > 0); ignored",
            output.as_str()
        )
    })
}

/// The 3-D cleanup, then the result.
pub(crate) fn finish(
    model: &Model,
    volume: &Volume,
    options: &SegmentOptions,
    mut labels: Array3<u8>,
    mut timings: Timings,
    warnings: Vec<String>,
) -> Segmentation {
    let t = Instant::now();
    clean(
        &mut labels,
        Cleanup {
            min_voxels: options.min_size,
            largest: options.largest_component,
            fill_holes: options.fill_holes,
        },
    );
    timings.postprocess += t.elapsed().as_secs_f64();
    Segmentation {
        mask: Mask {
            labels,
            geometry: volume.geometry,
            label_info: model.contract.labels.clone(),
            source: Some(volume.meta.clone()),
        },
        provider: model.provider.used.clone(),
        timings,
        warnings,
    }
}
