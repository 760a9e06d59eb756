//! Loading ONNX Runtime.

use std::ffi::c_char;

use super::boundary::{self, call};
use super::status::slicewise_status;
use slicewise::infer::init_runtime;

/// Loads ONNX Runtime once per process.
///
/// `onnxruntime_path` (nullable) is the shared library to load (an absolute path is best: a
/// relative one resolves against the host's working directory). NULL searches
/// `$ORT_DYLIB_PATH`, then the folder of this library, then the project-local
/// `.cache/onnxruntime/`. Later calls return the first call's result; a different explicit path
/// is an error. Optional: `slicewise_model_open` initialises the runtime when needed.
///
/// Thread rule: may be called from any thread.
///
/// # Safety
/// `onnxruntime_path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn slicewise_runtime_init(
    onnxruntime_path: *const c_char,
) -> slicewise_status {
    call(|| {
        let path = if onnxruntime_path.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees `onnxruntime_path` is NULL or NUL-terminated.
            Some(unsafe { boundary::path(onnxruntime_path, "onnxruntime_path") }?)
        };
        init_runtime(path.as_deref())?;
        Ok(())
    })
}
