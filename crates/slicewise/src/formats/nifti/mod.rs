//! NIfTI vocabulary shared by the reader ([`volume::nifti`](crate::volume::nifti)) and the writer
//! ([`output::nifti`](crate::output::nifti)): the header layout and codec ([`header`]) and the
//! rotation helpers behind the qform ([`rotation`]).

pub mod header;
pub mod rotation;
