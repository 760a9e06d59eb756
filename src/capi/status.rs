//! Status codes, their descriptions, the library version and the per-thread last error.

use std::ffi::c_char;

use super::boundary::{self, CError};

/// The result of every fallible call: `SLICEWISE_OK` (0) or one of the `SLICEWISE_*` error
/// codes below. Codes are part of the ABI: they are never renumbered, new ones are appended.
/// Hosts should treat an unknown non-zero code as a generic failure.
pub type slicewise_status = i32;

/// Success.
pub const SLICEWISE_OK: slicewise_status = 0;
/// An argument is out of range or inconsistent (wrong dtype, zero dimension, bad option value).
pub const SLICEWISE_INVALID_ARGUMENT: slicewise_status = 1;
/// An operating-system I/O error on a file (the message names the file).
pub const SLICEWISE_IO: slicewise_status = 2;
/// A file is not a valid file of its format.
pub const SLICEWISE_FORMAT: slicewise_status = 3;
/// A valid input uses a feature this library does not support (also: a versioned struct sets
/// fields this library version does not know).
pub const SLICEWISE_UNSUPPORTED: slicewise_status = 4;
/// An input would need more memory than the configured limit allows.
pub const SLICEWISE_TOO_LARGE: slicewise_status = 5;
/// A model file cannot be honoured (missing or unsupported metadata).
pub const SLICEWISE_MODEL: slicewise_status = 6;
/// ONNX Runtime could not be loaded or initialised.
pub const SLICEWISE_RUNTIME: slicewise_status = 7;
/// An explicitly requested execution provider cannot run.
pub const SLICEWISE_PROVIDER: slicewise_status = 8;
/// Inference failed inside ONNX Runtime.
pub const SLICEWISE_INFERENCE: slicewise_status = 9;
/// The operation was cancelled (cancel token or progress callback); nothing was output.
pub const SLICEWISE_CANCELLED: slicewise_status = 10;
/// An internal error (a Rust panic) was caught at the boundary; the message says where.
pub const SLICEWISE_PANIC: slicewise_status = 11;
/// A required pointer argument is NULL.
pub const SLICEWISE_NULL_POINTER: slicewise_status = 12;
/// A caller buffer is too small; the needed length was reported through `out_len`.
pub const SLICEWISE_BUFFER_TOO_SMALL: slicewise_status = 13;

/// A static, NUL-terminated English description of `status` (never NULL; "unknown status" for
/// codes this library does not know). The string is owned by the library.
#[no_mangle]
pub extern "C" fn slicewise_status_str(status: slicewise_status) -> *const c_char {
    let s: &'static [u8] = match status {
        SLICEWISE_OK => b"ok\0",
        SLICEWISE_INVALID_ARGUMENT => b"invalid argument\0",
        SLICEWISE_IO => b"I/O error\0",
        SLICEWISE_FORMAT => b"invalid file format\0",
        SLICEWISE_UNSUPPORTED => b"unsupported\0",
        SLICEWISE_TOO_LARGE => b"too large\0",
        SLICEWISE_MODEL => b"model cannot be used\0",
        SLICEWISE_RUNTIME => b"ONNX Runtime unavailable\0",
        SLICEWISE_PROVIDER => b"execution provider unavailable\0",
        SLICEWISE_INFERENCE => b"inference failed\0",
        SLICEWISE_CANCELLED => b"cancelled\0",
        SLICEWISE_PANIC => b"internal error (panic)\0",
        SLICEWISE_NULL_POINTER => b"null pointer argument\0",
        SLICEWISE_BUFFER_TOO_SMALL => b"buffer too small\0",
        _ => b"unknown status\0",
    };
    s.as_ptr().cast()
}

/// The version of the loaded library, e.g. "0.1.0": static, NUL-terminated, never NULL. Compare
/// with the header's `SLICEWISE_VERSION_MAJOR/MINOR/PATCH` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn slicewise_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

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
        boundary::write_str(&msg, buf, len, out_len, true)
    });
    match r {
        Ok(Ok(())) => SLICEWISE_OK,
        Ok(Err(CError { status, .. })) => status,
        Err(_) => SLICEWISE_PANIC,
    }
}

/// Every `Error` variant's code must have its own constant above.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn error_codes_match_constants() {
        let p = std::path::Path::new("x");
        let io = std::io::Error::other("x");
        let cases = [
            (
                Error::InvalidArgument(String::new()),
                SLICEWISE_INVALID_ARGUMENT,
            ),
            (Error::io(p, io), SLICEWISE_IO),
            (Error::format(p, ""), SLICEWISE_FORMAT),
            (Error::unsupported(p, ""), SLICEWISE_UNSUPPORTED),
            (Error::too_large(p, ""), SLICEWISE_TOO_LARGE),
            (Error::model(p, ""), SLICEWISE_MODEL),
            (Error::Runtime(String::new()), SLICEWISE_RUNTIME),
            (Error::Provider(String::new()), SLICEWISE_PROVIDER),
            (Error::Inference(String::new()), SLICEWISE_INFERENCE),
            (Error::Cancelled, SLICEWISE_CANCELLED),
            (Error::Panic(String::new()), SLICEWISE_PANIC),
        ];
        for (e, code) in cases {
            // A new variant makes this match non-exhaustive: give it a constant above first.
            match e {
                Error::InvalidArgument(_)
                | Error::Io { .. }
                | Error::Format { .. }
                | Error::Unsupported { .. }
                | Error::TooLarge { .. }
                | Error::Model { .. }
                | Error::Runtime(_)
                | Error::Provider(_)
                | Error::Inference(_)
                | Error::Cancelled
                | Error::Panic(_) => {}
            }
            assert_eq!(e.status_code(), code, "{e:?}");
        }
        for code in 0..=SLICEWISE_BUFFER_TOO_SMALL {
            let s = unsafe { std::ffi::CStr::from_ptr(slicewise_status_str(code)) };
            assert_ne!(s.to_str().unwrap(), "unknown status", "code {code}");
        }
    }
}
