//! The C ABI: only `extern "C"` items and the boundary helpers they share.
//!
//! `include/slicewise.h` is generated from these files by cbindgen (settings in
//! `cbindgen.toml`) and committed; the integration test `capi::header_is_current` fails when it
//! drifts and rewrites it with `SLICEWISE_BLESS=1`. Conventions, stated once here and in the
//! header:
//!
//! * Every fallible call returns `slicewise_status` (`SLICEWISE_OK` = 0); codes are the
//!   [`slicewise::Error::status_code`] values plus C-only codes appended after them, never
//!   renumbered. The message is read per thread with `slicewise_last_error`.
//! * Outputs are written only on success; `_free(NULL)` is a no-op; a NULL or out-of-range
//!   argument is an error, never undefined behaviour; no panic crosses the boundary.
//! * Handles are typed and opaque; each documents its owner and thread rule.
//! * Options structs start with `size_t struct_size` and are filled by their `_init` call, so
//!   fields can be appended without breaking the ABI.

#![allow(non_camel_case_types)]

pub mod boundary;
pub mod mask;
pub mod model;
pub mod runtime;
pub mod segment;
pub mod status;
pub mod volume;
