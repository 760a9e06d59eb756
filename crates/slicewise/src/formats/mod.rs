//! File-format vocabulary shared by the readers ([`volume`](crate::volume),
//! [`mask`](crate::mask)) and the writers ([`output`](crate::output)), so that neither side
//! imports the other.
//!
//! * [`nifti`]: the NIfTI-1/-2 header codec and the quaternion/rotation helpers of its qform.
//! * [`dicom_seg`]: DICOM Segmentation SOP classes, [`SegKind`](dicom_seg::SegKind), coded
//!   concepts, CIELab colours and 1-bit frame packing.
//! * `dicom_lengths`: the pre-flight walk over a DICOM file's element headers that both DICOM
//!   readers (series and SEG) run before the parser, so no declared length can outgrow the file.
//!
//! Nothing here depends on the modules above it; only `dicom_lengths` reads a file (headers only).

pub(crate) mod dicom_lengths;
pub mod dicom_seg;
pub mod nifti;
