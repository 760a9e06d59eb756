//! # slicewise
//!
//! Slice-by-slice segmentation of medical image volumes (DICOM series, NIfTI, TIFF stacks) with
//! ONNX U-Nets, embeddable through a stable C ABI.
//!
//! * [`volume`]: [`Volume`] (voxels as f32 `[c, z, y, x]` plus LPS [`Geometry`]) and its readers.
//! * [`mask`]: [`Mask`], u8 labels on a volume's grid, and the DICOM SEG reader.
//! * [`output`]: atomic writers for masks and volumes (NIfTI, TIFF, DICOM SEG).
//! * [`formats`]: file-format vocabulary the readers and writers share (NIfTI header, DICOM SEG
//!   codes and frames), so that readers never import writers nor writers readers.
//! * [`error`]: the one [`Error`] type, with stable status codes.

#![warn(missing_docs)]

pub mod error;
pub mod formats;
pub mod infer;
pub mod mask;
pub mod metrics;
pub mod output;
pub mod stats;
pub mod volume;

pub use error::{Error, Result};
pub use mask::{LabelInfo, LabelStats, Mask};
pub use volume::{Geometry, ReadOptions, Volume};
