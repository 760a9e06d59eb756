//! slicewise's job layer: what every front end that runs segmentation jobs shares, on the
//! engine alone.
//!
//! - [`jobs`]: inputs (files, folders, DICOM studies) into jobs with output names that never
//!   collide; [`manifest`]: manifests and shards.
//! - [`batch`]: one job run exactly as `slicewise segment` runs it — read, segment, write the
//!   mask, previews and, last, the sidecar that marks it complete (so reruns skip it);
//!   [`pipeline`]: the same stages overlapped across the jobs of a batch.
//! - [`report`]: per-job records and the batch report (JSON + CSV); [`merge`]: the report of a
//!   sharded batch from its shard reports; [`preview`]: PNG overlays.
//!
//! Its users: the `slicewise` binary (`crates/slicewise-cli`: argument parsing, console and
//! progress bars only), the Python package and its Ray runner (`crates/slicewise-py`), and the
//! server (`crates/slicewise-server`), which reads and segments through [`batch::segment_input`].
//! It depends on no argument parser, progress bar, logger front end, HTTP stack or training
//! crate (`scripts/check-layering` checks).

#![warn(missing_docs)]

pub mod batch;
pub mod jobs;
pub mod manifest;
pub mod merge;
pub mod pipeline;
pub mod preview;
pub mod report;
