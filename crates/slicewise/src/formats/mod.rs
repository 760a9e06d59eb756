//! File-format vocabulary shared by the readers ([`volume`](crate::volume),
//! [`mask`](crate::mask)) and the writers ([`output`](crate::output)), so that neither side
//! imports the other.
//!
//! * [`nifti`]: the NIfTI-1/-2 header codec and the quaternion/rotation helpers of its qform.
//! * [`dicom_seg`]: DICOM Segmentation SOP classes, [`SegKind`](dicom_seg::SegKind), coded
//!   concepts, CIELab colours and 1-bit frame packing.
//!
//! Nothing here touches files or depends on the modules above it.

pub(crate) mod dicom_lengths;
pub mod dicom_seg;
pub mod nifti;
