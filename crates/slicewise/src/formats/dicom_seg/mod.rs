//! DICOM Segmentation vocabulary shared by the SEG reader
//! ([`mask::dicom_seg`](crate::mask::dicom_seg)) and the SEG writer
//! ([`output::dicom_seg`](crate::output::dicom_seg)): the SOP classes, the encodings
//! ([`SegKind`]), CIELab colours ([`codes`]) and 1-bit frame packing ([`frames`]). The coded
//! concepts are [`mask::coding`](crate::mask::coding)'s.

pub mod codes;
pub mod frames;

pub use codes::{dicom_lab_to_srgb, srgb_to_dicom_lab};

/// Segmentation Storage SOP class (BINARY and FRACTIONAL).
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";
/// Label Map Segmentation Storage SOP class (Supplement 243).
pub const LABEL_MAP_SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.7";

/// How the segments are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegKind {
    /// SegmentationType BINARY: 1-bit frames, one per (segment, slice). Widest viewer support.
    Binary,
    /// SegmentationType LABELMAP (Label Map Segmentation Storage): one 8-bit frame per slice.
    Labelmap,
}
