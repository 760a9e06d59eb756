//! The one integration-test binary: a shared harness and one module per area.
//!
//! Tests compare slicewise against independent references (pydicom, nibabel, tifffile,
//! onnxruntime) run from the project's `.venv` (made by `scripts/setup --test`), on the real data
//! in `../shared/data`.

mod engine;
mod harness;
mod volume_dicom;
mod volume_nifti;
mod volume_tiff;
