//! `slicewise_model`: a loaded ONNX model.

use std::ffi::c_char;

use super::boundary::{self, arg, call, call_void, out, CError};
use super::status::slicewise_status;
use slicewise::infer::{Device, Model, ModelOptions};

/// A loaded model (an ONNX Runtime session plus the model's contract).
///
/// Owner: created by `slicewise_model_open`, released by the caller with `slicewise_model_free`.
/// Thread rule: shareable: any number of threads may segment with one model at the same time.
/// Free it only when no other call is using it.
pub struct slicewise_model {
    pub(crate) inner: Model,
}

/// Execution provider choice (`slicewise_model_options.device`).
pub type slicewise_device = u32;
/// CUDA, then TensorRT, then CPU: the first that can run (the default).
pub const SLICEWISE_DEVICE_AUTO: slicewise_device = 0;
/// CPU only.
pub const SLICEWISE_DEVICE_CPU: slicewise_device = 1;
/// CUDA; `SLICEWISE_PROVIDER` when it cannot run.
pub const SLICEWISE_DEVICE_CUDA: slicewise_device = 2;
/// TensorRT; `SLICEWISE_PROVIDER` when it cannot run.
pub const SLICEWISE_DEVICE_TENSORRT: slicewise_device = 3;

/// Options for `slicewise_model_open`. Versioned: fill it with `slicewise_model_options_init`
/// (which sets `struct_size` and the defaults), then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct slicewise_model_options {
    /// `sizeof(slicewise_model_options)`, set by `slicewise_model_options_init`.
    pub struct_size: usize,
    /// One of `SLICEWISE_DEVICE_*`; default `SLICEWISE_DEVICE_AUTO`.
    pub device: slicewise_device,
    /// Intra-op threads; 0 (default) lets ONNX Runtime choose.
    pub threads: u32,
    /// ONNX Runtime library to load if not yet loaded (see `slicewise_runtime_init`); NULL
    /// (default) searches. Only read during `slicewise_model_open`.
    pub runtime_path: *const c_char,
}

impl Default for slicewise_model_options {
    fn default() -> Self {
        slicewise_model_options {
            struct_size: std::mem::size_of::<Self>(),
            device: SLICEWISE_DEVICE_AUTO,
            threads: 0,
            runtime_path: std::ptr::null(),
        }
    }
}

/// Fills `options` with the defaults and sets its `struct_size`.
///
/// # Safety
/// `options` is NULL or points to a `slicewise_model_options`.
#[no_mangle]
pub unsafe extern "C" fn slicewise_model_options_init(
    options: *mut slicewise_model_options,
) -> slicewise_status {
    call(|| {
        let options = out(options, "options")?;
        // SAFETY: non-null checked just now; the caller guarantees it points to a
        // `slicewise_model_options` (at any alignment: written unaligned).
        unsafe { options.write_unaligned(slicewise_model_options::default()) };
        Ok(())
    })
}

/// The engine's options from a caller's (NULL: the defaults).
///
/// # Safety
/// `o` is NULL or valid for `o->struct_size` bytes, its `runtime_path` NULL or NUL-terminated.
unsafe fn model_options(o: *const slicewise_model_options) -> Result<ModelOptions, CError> {
    if o.is_null() {
        return Ok(ModelOptions::default());
    }
    // SAFETY: the caller guarantees `o` valid for `o->struct_size` bytes; the struct is plain
    // old data (integers and a pointer that is only read below, under its own contract).
    let o = unsafe { boundary::read_sized(o, "options") }?;
    let device = match o.device {
        SLICEWISE_DEVICE_AUTO => Device::Auto,
        SLICEWISE_DEVICE_CPU => Device::Cpu,
        SLICEWISE_DEVICE_CUDA => Device::Cuda,
        SLICEWISE_DEVICE_TENSORRT => Device::TensorRt,
        d => {
            return Err(CError::invalid(format!(
                "options->device {d} is not a SLICEWISE_DEVICE_* value"
            )))
        }
    };
    let mut m = ModelOptions::default().device(device);
    if o.threads > 0 {
        m = m.threads(o.threads as usize);
    }
    if !o.runtime_path.is_null() {
        // SAFETY: non-null checked just now; the caller guarantees it is NUL-terminated.
        let path = unsafe { boundary::path(o.runtime_path, "options->runtime_path") }?;
        m = m.runtime_path(path);
    }
    Ok(m)
}

/// Loads an ONNX model and checks that its `slicewise.*` contract can be honoured, initialising
/// ONNX Runtime if needed.
///
/// * `path`: the `.onnx` file (a sidecar `<model>.json` card is read when present).
/// * `options` (nullable): NULL for the defaults.
/// * `out`: receives the new model on success (untouched on failure); free it with
///   `slicewise_model_free`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `options` is NULL or initialised by
/// `slicewise_model_options_init`; `out` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_model_open(
    path: *const c_char,
    options: *const slicewise_model_options,
    out: *mut *mut slicewise_model,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { boundary::path(path, "path") }?;
        let out = boundary::out(out, "out")?;
        // SAFETY: the caller guarantees `options` is NULL or initialised by
        // slicewise_model_options_init (so valid for its struct_size bytes, runtime_path NULL
        // or a string it set).
        let options = unsafe { model_options(options) }?;
        let inner = Model::open(&path, &options)?;
        let handle = Box::into_raw(Box::new(slicewise_model { inner }));
        // SAFETY: `out` is non-null (checked above) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Describes a model as one JSON object (UTF-8):
/// `{"path": "...", "contract": {name, version, input_name, output_name, height, width,
/// source_channels, normalization, keep_aspect, crop_foreground, output, threshold,
/// labels: [{value, name, color}], training_data}, "provider": {requested, used, notes}}`.
///
/// `buf`/`len`/`out_len` work as in `slicewise_last_error` (`out_len` receives the full length
/// without the NUL; NULL `buf` with `len == 0` queries it), except that when the JSON does not
/// fit nothing is written to `buf` and `SLICEWISE_BUFFER_TOO_SMALL` is returned.
///
/// # Safety
/// `model` is NULL or a live model; `buf` is NULL or valid for `len` bytes; `out_len` is NULL or
/// valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_model_info(
    model: *const slicewise_model,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `model` is NULL or a live model.
        let m = &unsafe { arg(model, "model") }?.inner;
        let json = serde_json::json!({
            "path": m.path().to_string_lossy(),
            "contract": m.contract(),
            "provider": m.provider(),
        })
        .to_string();
        // SAFETY: the caller guarantees `buf` NULL or valid for `len` bytes, `out_len` NULL or
        // valid for writing: write_str's contract.
        unsafe { boundary::write_str(&json, buf, len, out_len, false) }
    })
}

/// Releases a model. NULL is a no-op. The model must not be in use by another call.
///
/// # Safety
/// `model` is NULL or a model from `slicewise_model_open` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn slicewise_model_free(model: *mut slicewise_model) {
    call_void(|| {
        if !model.is_null() {
            // SAFETY: non-null checked just now; the caller guarantees it is a model from
            // slicewise_model_open (a Box::into_raw) not yet freed nor in use.
            drop(unsafe { Box::from_raw(model) });
        }
    })
}
