//! The C ABI: only `extern "C"` items and the boundary helpers they share.
//!
//! `include/slicewise.h` is generated from these files by cbindgen (settings in
//! `cbindgen.toml`) and committed; this crate's test `header_is_current` (`tests/header.rs`)
//! fails when it drifts and rewrites it with `SLICEWISE_BLESS=1 cargo test -p slicewise-capi
//! --test header`. Conventions, stated once here and in the header:
//!
//! * Every fallible call returns `slicewise_status` (`SLICEWISE_OK` = 0). The codes have one
//!   home: `slicewise::error::ErrorKind`, whose discriminants are the status codes (an error's
//!   `slicewise::Error::status_code`). The C ABI adds two codes of its own, `NULL_POINTER` (12)
//!   and `BUFFER_TOO_SMALL` (13). `status.rs` repeats the codes as literals only so that cbindgen
//!   can write them into the header; a unit test checks every kind against the constant of its
//!   name and value. Codes are appended, never renumbered. The message is read per thread with `slicewise_last_error`.
//! * Outputs are written only on success; `_free(NULL)` is a no-op; a NULL or out-of-range
//!   argument is an error, never undefined behaviour; no panic crosses the boundary (every export
//!   runs behind `boundary::call` or `boundary::call_void`).
//! * Options structs start with `size_t struct_size` and are filled by their `_init` call, so
//!   fields can be appended without breaking the ABI.
//! * Handles are typed and opaque; the caller owns every handle it receives and releases it with
//!   its `_free` call once no other call is using it. Per handle (each type's doc says the same):
//!   * `slicewise_model` (`model.rs`): from `slicewise_model_open`, freed with
//!     `slicewise_model_free`. Shareable: any number of threads may segment with it at once.
//!   * `slicewise_volume` (`volume.rs`): from `slicewise_volume_open`,
//!     `slicewise_volume_open_channels` (one file per channel) or
//!     `slicewise_volume_from_memory` (which copies the host's data), freed with
//!     `slicewise_volume_free`. Immutable, so shareable: any number of threads may read or
//!     segment it at once.
//!   * `slicewise_mask` (`mask.rs`): from `slicewise_segment`, freed with `slicewise_mask_free`.
//!     Immutable, so its accessors may be called from several threads at once; the pointers it
//!     hands out (`slicewise_mask_data`, `slicewise_label_stats.name`) are owned by it and valid
//!     until it is freed.
//!   * `slicewise_cancel` (`segment.rs`): from `slicewise_cancel_new`, freed with
//!     `slicewise_cancel_free`. `slicewise_cancel_cancel` and `slicewise_cancel_is_cancelled`
//!     may be called from any thread at any time, also while a segmentation using it runs (which
//!     holds its own reference to the token).
//!
//!   The strings of `slicewise_version` and `slicewise_status_str` are static and owned by the
//!   library; the JSON of `slicewise_select_series` (`selection.rs`) is the caller's, released
//!   with `slicewise_string_free`; `slicewise_runtime_init` and `slicewise_segment` may be called from any thread.
//!
//! Unsafe code: `unsafe_op_in_unsafe_fn` is denied, so an `unsafe fn`'s body is not one big
//! unsafe block: each unsafe operation sits in its own `unsafe { }` block with a `// SAFETY:`
//! comment naming the caller contract (the function's `# Safety` section) or the check it relies
//! on.

#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod boundary;
pub mod mask;
pub mod model;
pub mod runtime;
pub mod segment;
pub mod status;

// Declared after `status`, out of alphabetical order, so that cbindgen writes
// `slicewise_last_error` where the header has always had it: after the status calls.
pub mod last_error;

pub mod volume;

// Last, so that cbindgen appends its calls to the header (additions only).
pub mod selection;
