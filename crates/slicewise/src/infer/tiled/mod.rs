//! The tiled model family (`slicewise.preprocess = tiled`): nnU-Net 2d inference for any model
//! whose contract declares it (docs/nnunet-2d-inference.md is the specification).
//!
//! transpose → crop to non-zero → normalise per channel → resample in-plane to the target
//! spacing → pad each plane to the patch → Gaussian-weighted sliding window (mirror passes
//! averaging logits under TTA) → divide by the weights → crop the padding → resample the logits
//! back → argmax or regions → paste into the uncropped grid → inverse transpose. Files by
//! concern: `case.rs` (up to the resampling), `crop.rs`, `normalize.rs`, `window.rs` (steps,
//! Gaussian, padding), `segment.rs` (the streaming window and labelling).

mod case;
mod crop;
mod normalize;
mod segment;
mod window;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{s, Array3};

use super::contract::TiledSpec;
use super::segment::{finish, quiet_run_options, threshold_warning, watch};
use super::{Model, Progress, SegmentOptions, Segmentation, Timings};
use crate::error::{Error, Result};
use crate::volume::Volume;
use case::Case;
use segment::Stream;
use window::Windows;

/// Segments `volume` with a tiled model (`spec` is its `slicewise.tiled`).
pub(crate) fn segment(
    model: &Model,
    spec: &TiledSpec,
    volume: &Volume,
    options: &SegmentOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Segmentation> {
    let sources = sources(model, volume)?;
    let mut warnings: Vec<String> = threshold_warning(model, options).into_iter().collect();
    if options.tta && spec.mirror_axes.is_empty() {
        warnings.push("the model allows no mirroring: test-time augmentation does nothing".into());
    }
    let t0 = Instant::now();
    let case = Case::new(spec, volume, &sources)?;
    let windows = Windows::new(
        [case.new_shape[1], case.new_shape[2]],
        spec.patch,
        spec.step,
    );
    let mut timings = Timings {
        preprocess: t0.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    let sh = volume.data.shape();
    let mut labels = Array3::<u8>::zeros((sh[1], sh[2], sh[3]));
    {
        // The transposed grid is a view of the mask; outside the crop box it stays 0.
        let b = &case.bbox;
        let mut view = labels.view_mut().permuted_axes(spec.transpose);
        let boxed = view.slice_mut(s![b[0].clone(), b[1].clone(), b[2].clone()]);
        run_stream(
            model,
            spec,
            &case,
            &windows,
            options,
            boxed,
            &mut timings,
            progress,
        )?;
    }
    Ok(finish(model, volume, options, labels, timings, warnings))
}

/// Runs the window over every plane, with the cancel watcher terminating a batch in flight.
#[allow(clippy::too_many_arguments)]
fn run_stream(
    model: &Model,
    spec: &TiledSpec,
    case: &Case,
    windows: &Windows,
    options: &SegmentOptions,
    labels: ndarray::ArrayViewMut3<u8>,
    timings: &mut Timings,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<()> {
    let run_options = Arc::new(quiet_run_options()?);
    let stream = Stream {
        model,
        case,
        windows,
        passes: spec.passes(options.tta),
        batch: options.batch_size,
        cancel: options.cancel.clone(),
        run_options: &run_options,
        threshold: options.threshold.unwrap_or(model.contract.threshold),
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = options.cancel.clone().map(|token| {
            let (run, stop) = (run_options.clone(), &stop);
            scope.spawn(move || watch(token, run, stop))
        });
        let outcome = stream.run(labels, timings, progress);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(w) = watcher {
            let _ = w.join();
        }
        outcome
    })
}

/// The volume channel each model channel takes. A missing channel is refused: a tiled model's
/// channels are distinct images (nnU-Net's `_0000`, `_0001`, …), never a substitute.
fn sources(model: &Model, volume: &Volume) -> Result<Vec<usize>> {
    let c = &model.contract;
    let vch = volume.channels();
    let sh = volume.data.shape();
    if vch == 0 || sh[1] == 0 || sh[2] == 0 || sh[3] == 0 {
        return Err(Error::InvalidArgument(format!("empty volume {sh:?}")));
    }
    c.source_channels
        .iter()
        .enumerate()
        .map(|(k, &src)| {
            if src < vch {
                Ok(src)
            } else {
                let name = c
                    .channel_names
                    .get(k)
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                Err(Error::InvalidArgument(format!(
                    "model channel {k}{name} takes volume channel {src}, but the volume has {vch} channel(s)"
                )))
            }
        })
        .collect()
}
