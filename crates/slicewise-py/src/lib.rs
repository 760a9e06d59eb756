//! `slicewise._slicewise`: the native half of the `slicewise` Python package.
//!
//! It is deliberately thin and low-level (arrays already in the engine's `[c, z, y, x]` float32
//! order, options and records as JSON text); `python/slicewise/__init__.py`
//! builds the documented API on it (array conventions, dtypes, `Segmentation`, `Error`). Every
//! call that reads, segments or writes releases the GIL, and every engine error becomes a
//! `slicewise.Error` carrying the C ABI's status name and code.

mod batch;
mod errors;
mod model;
mod volumes;

use pyo3::prelude::*;

/// The native extension module.
#[pymodule]
fn _slicewise(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Panics are caught (a job's record, the engine's decoders) and reported with their place;
    // Python's stderr gets no Rust report.
    slicewise::error::quiet_panics();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<model::PyCancelToken>()?;
    m.add_function(wrap_pyfunction!(model::default_segment_options, m)?)?;
    m.add_function(wrap_pyfunction!(volumes::read_volume, m)?)?;
    m.add_function(wrap_pyfunction!(volumes::read_channels, m)?)?;
    m.add_function(wrap_pyfunction!(volumes::write_mask, m)?)?;
    m.add_function(wrap_pyfunction!(batch::read_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(batch::plan, m)?)?;
    m.add_function(wrap_pyfunction!(batch::plan_cases, m)?)?;
    m.add_function(wrap_pyfunction!(batch::check_out, m)?)?;
    m.add_class::<batch::Runner>()?;
    m.add_function(wrap_pyfunction!(batch::model_record, m)?)?;
    m.add_function(wrap_pyfunction!(batch::options_json, m)?)?;
    m.add_function(wrap_pyfunction!(batch::write_report, m)?)?;
    m.add_function(wrap_pyfunction!(errors::status_names, m)?)?;
    Ok(())
}
