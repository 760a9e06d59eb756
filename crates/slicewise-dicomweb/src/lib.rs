//! # slicewise-dicomweb
//!
//! The PACS client that `slicewise serve` (its PACS datastore and viewer proxy) and
//! `slicewise watch` share: QIDO-RS, WADO-RS and STOW-RS against any DICOMweb service
//! ([`DicomWeb`], in `client`), Orthanc's changes feed ([`orthanc`]), and the failures of
//! both ([`PacsError`], [`SetupError`]). It knows HTTP and DICOM JSON only: no engine, no HTTP
//! server.

#![warn(missing_docs)]

mod client;
pub mod error;
pub mod orthanc;
pub mod series;

pub use client::{redact, DicomWeb, LocalSeries, Stored, NOT_IMAGES};
pub use error::{PacsError, SetupError};
pub use series::{is_uid, SeriesInfo};
