//! `slicewise_last_error`: the calling thread's message behind the last failed call's status,
//! which the boundary keeps (`boundary.rs`). Apart from the status codes, so that the codes
//! (`status.rs`) sit below the boundary that returns them and this export above it.

use std::ffi::c_char;

use super::boundary::{self, CError};
use super::status::{slicewise_status, SLICEWISE_OK, SLICEWISE_PANIC};

/// Copies the calling thread's last error message (UTF-8) into `buf`.
///
/// Every fallible call clears the message on entry and sets it when it fails, so it describes
/// the most recent failed call on this thread (empty after a successful one). This call itself
/// never changes it.
///
/// * `buf`: `len` bytes, or NULL with `len == 0` to query the size.
/// * `out_len` (nullable): receives the message's full length in bytes, without the NUL.
///
/// Returns `SLICEWISE_OK` when the message and its NUL fit. Otherwise returns
/// `SLICEWISE_BUFFER_TOO_SMALL` and, when `len > 0`, still writes the longest prefix that fits
/// (cut at a UTF-8 character boundary) followed by a NUL, so `buf` always holds a string.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes; `out_len` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> slicewise_status {
    // Not through boundary::call: that would clear the very message being read.
    let r = std::panic::catch_unwind(|| {
        let msg = boundary::last_error();
        // SAFETY: write_str's contract is this function's: `buf` NULL or valid for `len` bytes,
        // `out_len` NULL or valid for writing.
        unsafe { boundary::write_str(&msg, buf, len, out_len, true) }
    });
    match r {
        Ok(Ok(())) => SLICEWISE_OK,
        Ok(Err(CError { status, .. })) => status,
        Err(_) => SLICEWISE_PANIC,
    }
}
