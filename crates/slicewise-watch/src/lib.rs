//! # slicewise-watch
//!
//! `slicewise watch`: follows a PACS and segments each new series that a loaded model selects,
//! storing the result back — on Orthanc through its changes feed (`StableSeries`), on any
//! DICOMweb server by polling QIDO-RS; fetching with WADO-RS into a private folder, segmenting
//! as a job of the job layer (`slicewise-batch`, the same job as `slicewise segment`), storing
//! with STOW-RS (DICOM SEG).
//!
//! **Exactly one result per (series, model)**, across restarts and crashes: each decision is
//! journalled and fsynced before it is acted on ([`journal`]); a series claimed but not
//! journalled as stored is redone at the next start; a result's UIDs follow from (series,
//! model name and version, format) ([`stamp`]), so a result stored just before a crash is found
//! in the PACS by QIDO-RS and not stored again.
//!
//! Modules: [`options`], [`journal`] (durable state), [`select`] (which series a model takes),
//! [`feed`] (Orthanc's changes or QIDO-RS polling), [`worker`] (one series: fetch, segment,
//! stamp, store), [`stamp`] (result UIDs), [`retry`] (waiting for the PACS), [`audit`] (one
//! JSON line per event), [`shared`], `watcher` (the loop: [`run`], [`watch`]).

#![warn(missing_docs)]

pub mod audit;
pub mod error;
pub mod feed;
pub mod journal;
pub mod options;
pub mod retry;
pub mod select;
pub mod shared;
pub mod stamp;
mod watcher;
pub mod worker;

pub use error::WatchError;
pub use options::WatchOptions;
pub use shared::Summary;
pub use watcher::{run, watch};
