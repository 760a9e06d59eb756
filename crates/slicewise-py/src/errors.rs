//! Engine errors as Python exceptions: `slicewise.Error(message, status, code)`, the class
//! defined in `slicewise/_errors.py` (a plain Python class, so that it pickles across Ray
//! workers and subclasses like any exception).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use slicewise::error::{Error, ErrorKind};

/// A `slicewise.Error` for an engine error.
pub fn to_py(e: Error) -> PyErr {
    let kind = e.kind();
    raise(kind.name(), kind.code(), &e.to_string())
}

/// A `slicewise.Error` with status `INVALID_ARGUMENT`, for arguments the engine never sees.
pub fn invalid(message: impl Into<String>) -> PyErr {
    let kind = ErrorKind::InvalidArgument;
    raise(kind.name(), kind.code(), &message.into())
}

fn raise(status: &str, code: i32, message: &str) -> PyErr {
    Python::attach(|py| {
        let made = (|| -> PyResult<PyErr> {
            let class = py.import("slicewise._errors")?.getattr("Error")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("status", status)?;
            kwargs.set_item("code", code)?;
            let err = class.call((message,), Some(&kwargs))?;
            Ok(PyErr::from_value(err))
        })();
        // Without the Python half (the extension imported on its own) the error still says it all.
        made.unwrap_or_else(|_| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("{status}: {message}"))
        })
    })
}

/// `{name: code}` of every status, for `slicewise.Error`'s documentation and checks.
#[pyfunction]
pub fn status_names() -> Vec<(&'static str, i32)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.name(), k.code()))
        .collect()
}
