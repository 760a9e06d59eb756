//! The one integration-test binary: a shared harness and one module per area.
//!
//! Tests compare slicewise against independent references (pydicom, nibabel, tifffile,
//! onnxruntime) run from the project's `.venv` (made by `scripts/setup --test`), on the real data
//! in `../shared/data`.

use slicewise_tests as harness;

mod bundled_model;
mod capi;
mod channels;
mod cli;
mod cli_jobs;
mod conformance;
mod convert_dcm2niix;
mod cross_validation;
mod dicom_seg;
mod engine;
mod gpu_runtime;
mod int8_model;
mod nnunet;
mod python_pkg;
mod resample;
mod robustness;
mod rtstruct;
mod server;
mod server_pacs;
mod slicer;
mod tiled_model;
mod volume_dicom;
mod volume_nifti;
mod volume_tiff;
mod watch;
