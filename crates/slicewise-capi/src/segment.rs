//! `slicewise_segment`, its options, and `slicewise_cancel` tokens.

use std::ffi::{c_int, c_void};

use super::boundary::{self, arg, call, call_void, out, CError};
use super::mask::slicewise_mask;
use super::model::slicewise_model;
use super::status::slicewise_status;
use super::volume::slicewise_volume;
use slicewise::infer::{segment, CancelToken, Progress, SegmentOptions};

/// A cancellation token.
///
/// Owner: created by `slicewise_cancel_new`, released by the caller with
/// `slicewise_cancel_free`. Thread rule: `slicewise_cancel_cancel` and
/// `slicewise_cancel_is_cancelled` may be called from any thread at any time, also while a
/// segmentation that uses the token runs. Once cancelled a token stays cancelled: use a new one
/// for the next run. Free it only when no call is using it (a running `slicewise_segment` holds
/// its own reference, but a thread still calling `slicewise_cancel_cancel` must be done).
pub struct slicewise_cancel {
    token: CancelToken,
}

/// Options for `slicewise_segment`. Versioned: fill it with `slicewise_segment_options_init`
/// (which sets `struct_size` and the defaults), then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct slicewise_segment_options {
    /// `sizeof(slicewise_segment_options)`, set by `slicewise_segment_options_init`.
    pub struct_size: usize,
    /// Slices per inference batch; 0 means the default (8).
    pub batch_size: u32,
    /// Threshold for sigmoid models in [0, 1]; negative (default -1) uses the model's.
    pub threshold: f32,
    /// Minimum 3-D component size in voxels; smaller components are removed (default 0: keep).
    pub min_component_voxels: u64,
    /// Non-zero: keep only the largest 3-D connected component of each label (default 0).
    pub largest_component: u8,
    /// Non-zero: fill holes in each label (default 0).
    pub fill_holes: u8,
    /// Non-zero: average over test-time flips, the ones the model's contract names (`tta_flips`:
    /// the left-right mirror by default, or both mirrors); default 0.
    pub tta: u8,
    /// Cancellation token checked between batches (nullable; default NULL).
    pub cancel: *const slicewise_cancel,
}

impl Default for slicewise_segment_options {
    fn default() -> Self {
        slicewise_segment_options {
            struct_size: std::mem::size_of::<Self>(),
            batch_size: 0,
            threshold: -1.0,
            min_component_voxels: 0,
            largest_component: 0,
            fill_holes: 0,
            tta: 0,
            cancel: std::ptr::null(),
        }
    }
}

/// Progress callback: called on the thread that called `slicewise_segment`, between batches,
/// with the slices done and the total. Return 0 to go on, non-zero to cancel (the call then
/// returns `SLICEWISE_CANCELLED` and outputs nothing). It must not unwind (C++ exceptions,
/// longjmp) through the library.
pub type slicewise_progress_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, done: usize, total: usize) -> c_int>;

/// Fills `options` with the defaults and sets its `struct_size`.
///
/// # Safety
/// `options` is NULL or points to a `slicewise_segment_options`.
#[no_mangle]
pub unsafe extern "C" fn slicewise_segment_options_init(
    options: *mut slicewise_segment_options,
) -> slicewise_status {
    call(|| {
        let options = out(options, "options")?;
        // SAFETY: non-null checked just now; the caller guarantees it points to a
        // `slicewise_segment_options` (at any alignment: written unaligned).
        unsafe { options.write_unaligned(slicewise_segment_options::default()) };
        Ok(())
    })
}

/// The engine's options from a caller's (NULL: the defaults).
///
/// # Safety
/// `o` is NULL or valid for `o->struct_size` bytes, its `cancel` NULL or a live token.
unsafe fn segment_options(o: *const slicewise_segment_options) -> Result<SegmentOptions, CError> {
    if o.is_null() {
        return Ok(SegmentOptions::default());
    }
    // SAFETY: the caller guarantees `o` valid for `o->struct_size` bytes; the struct is plain
    // old data (numbers and a pointer that is only read below, under its own contract).
    let o = unsafe { boundary::read_sized(o, "options") }?;
    let mut s = engine_options(&o)?;
    if !o.cancel.is_null() {
        // SAFETY: non-null checked just now; the caller guarantees a live token. The clone is
        // our own reference: the token may be freed once this call returns.
        let cancel = unsafe { &*o.cancel };
        s.cancel = Some(cancel.token.clone());
    }
    Ok(s)
}

/// The one conversion of the C struct's values into the engine's options (the cancellation
/// token, a pointer with its own contract, is taken by the caller). Zero `batch_size` and a
/// negative `threshold` mean the defaults, as `slicewise_segment_options_init` documents.
fn engine_options(o: &slicewise_segment_options) -> Result<SegmentOptions, CError> {
    if o.threshold.is_nan() || o.threshold > 1.0 {
        return Err(CError::invalid(format!(
            "options->threshold {} is not in [0, 1] (negative: the model's)",
            o.threshold
        )));
    }
    let defaults = SegmentOptions::default();
    let min_size = usize::try_from(o.min_component_voxels)
        .map_err(|_| CError::invalid("options->min_component_voxels is too large"))?;
    Ok(defaults
        .clone()
        .batch_size(match o.batch_size {
            0 => defaults.batch_size,
            n => n as usize,
        })
        .threshold((o.threshold >= 0.0).then_some(o.threshold))
        .min_size(min_size)
        .largest_component(o.largest_component != 0)
        .fill_holes(o.fill_holes != 0)
        .tta(o.tta != 0))
}

/// Segments `volume` with `model`, slice by slice along the volume's acquisition axis.
///
/// * `options` (nullable): NULL for the defaults.
/// * `progress` (nullable) and `userdata`: see `slicewise_progress_fn`; `userdata` is passed
///   through untouched.
/// * `out`: receives the new mask on success (untouched on failure, including cancellation);
///   free it with `slicewise_mask_free`.
///
/// Thread rule: any number of threads may call this at the same time, with the same or
/// different models and volumes.
///
/// # Safety
/// `model`, `volume` are NULL or live handles; `options` is NULL or initialised by
/// `slicewise_segment_options_init` (its `cancel` NULL or a live token); `progress` is NULL or a
/// function of the declared type; `out` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_segment(
    model: *const slicewise_model,
    volume: *const slicewise_volume,
    options: *const slicewise_segment_options,
    progress: slicewise_progress_fn,
    userdata: *mut c_void,
    out: *mut *mut slicewise_mask,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `model` is NULL or a live model.
        let model = &unsafe { arg(model, "model") }?.inner;
        // SAFETY: the caller guarantees `volume` is NULL or a live volume.
        let volume = &unsafe { arg(volume, "volume") }?.inner;
        let out = boundary::out(out, "out")?;
        // SAFETY: the caller guarantees `options` is NULL or initialised by
        // slicewise_segment_options_init, its `cancel` NULL or a live token.
        let options = unsafe { segment_options(options) }?;
        let mut report = |p: Progress| match progress {
            Some(f) => {
                // SAFETY: the caller guarantees `progress` is a function of the declared type
                // that does not unwind; it gets `userdata` untouched, as documented.
                let cancel = unsafe { f(userdata, p.done, p.total) };
                cancel == 0
            }
            None => true,
        };
        let seg = segment(model, volume, &options, &mut report)?;
        let handle = Box::into_raw(Box::new(slicewise_mask::new(seg)));
        // SAFETY: `out` is non-null (checked above) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Creates a cancellation token (not cancelled). `out` receives it on success.
///
/// # Safety
/// `out` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_cancel_new(out: *mut *mut slicewise_cancel) -> slicewise_status {
    call(|| {
        let out = boundary::out(out, "out")?;
        let token = Box::new(slicewise_cancel {
            token: CancelToken::new(),
        });
        // SAFETY: non-null checked just now; the caller guarantees it valid for writing.
        unsafe { *out = Box::into_raw(token) };
        Ok(())
    })
}

/// Requests cancellation: a segmentation using the token stops at the next batch boundary (the
/// batch in flight is terminated) and returns `SLICEWISE_CANCELLED`. From any thread.
///
/// # Safety
/// `cancel` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn slicewise_cancel_cancel(
    cancel: *const slicewise_cancel,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `cancel` is NULL or a live token.
        unsafe { arg(cancel, "cancel") }?.token.cancel();
        Ok(())
    })
}

/// Stores 1 in `out` when cancellation was requested, else 0. From any thread.
///
/// # Safety
/// `cancel` is NULL or a live token; `out` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_cancel_is_cancelled(
    cancel: *const slicewise_cancel,
    out: *mut c_int,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `cancel` is NULL or a live token.
        let c = unsafe { arg(cancel, "cancel") }?;
        let out = boundary::out(out, "out")?;
        // SAFETY: non-null checked just now; the caller guarantees it valid for writing.
        unsafe { *out = c_int::from(c.token.is_cancelled()) };
        Ok(())
    })
}

/// Releases a token. NULL is a no-op.
///
/// # Safety
/// `cancel` is NULL or a token from `slicewise_cancel_new` not yet freed, no longer used by
/// another thread.
#[no_mangle]
pub unsafe extern "C" fn slicewise_cancel_free(cancel: *mut slicewise_cancel) {
    call_void(|| {
        if !cancel.is_null() {
            // SAFETY: non-null checked just now; the caller guarantees it is a token from
            // slicewise_cancel_new (a Box::into_raw) not yet freed nor used by another thread.
            drop(unsafe { Box::from_raw(cancel) });
        }
    })
}
