//! The batch machinery of `slicewise segment` as a library: turning inputs and manifests into
//! jobs, running one job (read, segment, write mask, previews and sidecar), and the report.
//!
//! The `slicewise` binary is its first user; the Python package (`crates/slicewise-py`) is the
//! second, so that a job run from Python or on a Ray cluster writes exactly the files the CLI
//! writes. Argument parsing, progress bars and the other subcommands stay in the binary.

#![warn(missing_docs)]

pub mod batch;
pub mod console;
pub mod jobs;
pub mod manifest;
pub mod merge;
pub mod pipeline;
pub mod preview;
pub mod report;
