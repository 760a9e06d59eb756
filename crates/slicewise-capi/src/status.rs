//! Status codes, their descriptions and the library version. The message behind a status is
//! `last_error.rs`'s.

use std::ffi::c_char;

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
/// Training failed (a non-finite loss); returned by the trainer only, never by this library.
pub const SLICEWISE_TRAINING: slicewise_status = 14;

// The codes above are literals so that cbindgen can write them into the header; the numbers
// themselves are assigned in one place, slicewise's `ErrorKind`. The test below checks every kind
// against the constant of its name.

/// Every code this library knows, with its constant's name after `SLICEWISE_`.
#[cfg(test)]
const CODES: [(&str, slicewise_status); 15] = [
    ("OK", SLICEWISE_OK),
    ("INVALID_ARGUMENT", SLICEWISE_INVALID_ARGUMENT),
    ("IO", SLICEWISE_IO),
    ("FORMAT", SLICEWISE_FORMAT),
    ("UNSUPPORTED", SLICEWISE_UNSUPPORTED),
    ("TOO_LARGE", SLICEWISE_TOO_LARGE),
    ("MODEL", SLICEWISE_MODEL),
    ("RUNTIME", SLICEWISE_RUNTIME),
    ("PROVIDER", SLICEWISE_PROVIDER),
    ("INFERENCE", SLICEWISE_INFERENCE),
    ("CANCELLED", SLICEWISE_CANCELLED),
    ("PANIC", SLICEWISE_PANIC),
    ("NULL_POINTER", SLICEWISE_NULL_POINTER),
    ("BUFFER_TOO_SMALL", SLICEWISE_BUFFER_TOO_SMALL),
    ("TRAINING", SLICEWISE_TRAINING),
];

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
        SLICEWISE_TRAINING => b"training failed\0",
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

#[cfg(test)]
mod tests {
    use super::*;
    use slicewise::error::ErrorKind;

    /// Every kind of error slicewise has is a C constant of the same name and value, and every
    /// code has a description.
    #[test]
    fn every_error_kind_has_its_constant() {
        for kind in ErrorKind::ALL {
            let named = CODES.iter().find(|(name, _)| *name == kind.name());
            assert_eq!(named.map(|(_, c)| *c), Some(kind.code()), "{kind:?}");
        }
        for (name, code) in CODES {
            // SAFETY: slicewise_status_str returns a static NUL-terminated string.
            let s = unsafe { std::ffi::CStr::from_ptr(slicewise_status_str(code)) };
            assert_ne!(s.to_str().unwrap(), "unknown status", "{name}");
        }
        let codes: std::collections::BTreeSet<_> = CODES.iter().map(|(_, c)| *c).collect();
        assert_eq!(codes.len(), CODES.len(), "two constants share a code");
    }
}
