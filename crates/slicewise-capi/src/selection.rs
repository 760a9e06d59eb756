//! `slicewise_select_series`: which DICOM series of a folder a model takes, and why not the
//! others, as a JSON string the library allocates (freed with `slicewise_string_free`).

use std::ffi::{c_char, CString};

use super::boundary::{self, arg, call, call_void, CError};
use super::model::slicewise_model;
use super::status::slicewise_status;
use slicewise::infer::contract::select_series;

/// Lists the DICOM series of a file, folder or folder tree (headers only: no pixel data is read)
/// and says, for each, whether `model`'s series selection (`slicewise.series_selection` in its
/// card) takes it. `json_out` receives a NUL-terminated UTF-8 JSON array, one object per series
/// in the order found: `{"uid", "description", "modality", "number", "slices", "files", "dims",
/// "first_file", "image_type", "orientation", "sequence": {"scanning_sequence",
/// "sequence_variant", "repetition_time", "echo_time", "inversion_time"}, "selected": bool,
/// "reason": null | "the rule it failed, in words"}`. A model without rules takes every series.
/// The string is owned by the caller: release it with `slicewise_string_free`. Written only on
/// success.
///
/// # Safety
/// `model` is NULL or a live model; `path` is NULL or NUL-terminated; `json_out` is NULL or
/// valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_select_series(
    model: *const slicewise_model,
    path: *const c_char,
    json_out: *mut *mut c_char,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `model` is NULL or a live model.
        let m = &unsafe { arg(model, "model") }?.inner;
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { boundary::path(path, "path") }?;
        let out = boundary::out(json_out, "json_out")?;
        let verdicts = select_series(&path, m.contract().series_selection.as_ref())?;
        let json = serde_json::to_string(&verdicts)
            .map_err(|e| CError::from(slicewise::Error::InvalidArgument(e.to_string())))?;
        // JSON escapes every control character, so the text holds no NUL.
        let text = CString::new(json)
            .map_err(|e| CError::from(slicewise::Error::InvalidArgument(e.to_string())))?;
        // SAFETY: `out` is non-null (checked above) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = text.into_raw() };
        Ok(())
    })
}

/// Releases a string the library allocated for the caller (`slicewise_select_series`). NULL
/// is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn slicewise_string_free(s: *mut c_char) {
    call_void(|| {
        if !s.is_null() {
            // SAFETY: non-null checked just now; the caller guarantees it is a string from this
            // library (a CString::into_raw) not yet freed.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
