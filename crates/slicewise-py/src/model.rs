//! `_slicewise.Model` (a loaded model, shareable by threads) and `_slicewise.CancelToken`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::Array4;
use numpy::{IntoPyArray, PyArray3, PyReadonlyArray4};
use pyo3::prelude::*;

use crate::errors::{invalid, to_py};
use slicewise::infer::{self, CancelToken, Device, Model, ModelOptions, Progress, SegmentOptions};
use slicewise::volume::{DType, Geometry, SourceFormat, Volume, VolumeMeta};

/// A loaded model. Immutable, so any number of Python threads may segment with it at once (the
/// engine serialises the ONNX Runtime runs themselves).
#[pyclass(name = "Model", module = "slicewise._slicewise", frozen)]
pub struct PyModel {
    pub(crate) inner: Arc<Model>,
    pub(crate) load_seconds: f64,
    pub(crate) threads: Option<usize>,
}

/// The engine's device for a `device=` string.
pub fn device(name: &str) -> PyResult<Device> {
    match name.to_ascii_lowercase().as_str() {
        "auto" => Ok(Device::Auto),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda),
        "tensorrt" => Ok(Device::TensorRt),
        other => Err(invalid(format!(
            "device `{other}` is not one of auto, cpu, cuda, tensorrt"
        ))),
    }
}

/// A cancellation token: `cancel()` from any thread stops a segmentation between batches.
#[pyclass(name = "CancelToken", module = "slicewise._slicewise", frozen)]
#[derive(Default)]
pub struct PyCancelToken(pub(crate) CancelToken);

#[pymethods]
impl PyCancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation (idempotent, from any thread).
    fn cancel(&self) {
        self.0.cancel()
    }

    /// Whether cancellation was requested.
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// What `Model.segment` returns: the mask `[z, y, x]`, then label statistics, timings (JSON) and
/// the provider and warnings.
type SegmentResult<'py> = (
    Bound<'py, PyArray3<u8>>,
    String,
    String,
    String,
    Vec<String>,
);

#[pymethods]
impl PyModel {
    /// Loads `path` (ONNX Runtime from `runtime`, else the engine's search), without the GIL.
    #[new]
    #[pyo3(signature = (path, device="auto", threads=None, runtime=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        device: &str,
        threads: Option<usize>,
        runtime: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut opts = ModelOptions::default().device(self::device(device)?);
        if let Some(t) = threads {
            if t == 0 {
                return Err(invalid("threads must be at least 1"));
            }
            opts = opts.threads(t);
        }
        if let Some(r) = runtime {
            opts = opts.runtime_path(r);
        }
        let t = Instant::now();
        let model = py.detach(|| Model::open(&path, &opts)).map_err(to_py)?;
        Ok(PyModel {
            inner: Arc::new(model),
            load_seconds: t.elapsed().as_secs_f64(),
            threads,
        })
    }

    /// The model file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// The intra-op thread count asked for (None: ONNX Runtime's default).
    #[getter]
    fn threads(&self) -> Option<usize> {
        self.threads
    }

    /// Seconds the load took.
    #[getter]
    fn load_seconds(&self) -> f64 {
        self.load_seconds
    }

    /// The contract (`slicewise.*` metadata) as JSON.
    fn contract_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.contract()).map_err(|e| invalid(e.to_string()))
    }

    /// The provider report (requested, used, notes) as JSON.
    fn provider_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.provider()).map_err(|e| invalid(e.to_string()))
    }

    /// Why `device="auto"` runs on CPU, or None.
    fn fallback_reason(&self) -> Option<String> {
        self.inner.fallback_reason().map(str::to_string)
    }

    /// Segments `data` (`[c, z, y, x]` float32, any strides) on the grid of the index-to-LPS
    /// `affine`, slicing along index axis `axis` (0 = x, 1 = y, 2 = z), with `options` (a JSON
    /// object of the engine's segmentation options), without the GIL. `progress(done, total)`
    /// is called between batches; a falsy result other than None cancels.
    #[pyo3(signature = (data, affine, axis, options, progress=None, cancel=None))]
    #[allow(clippy::too_many_arguments)]
    fn segment<'py>(
        &self,
        py: Python<'py>,
        data: PyReadonlyArray4<'py, f32>,
        affine: [[f64; 4]; 4],
        axis: usize,
        options: &str,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'py, PyCancelToken>>,
    ) -> PyResult<SegmentResult<'py>> {
        let t0 = Instant::now();
        let mut sopts = segment_options(options)?;
        if let Some(c) = cancel {
            sopts = sopts.cancel(c.0.clone());
        }
        let volume = memory_volume(&data, &affine, axis)?;
        drop(data);
        let convert = t0.elapsed().as_secs_f64();
        let model = Arc::clone(&self.inner);
        let mut hook = ProgressHook::new(progress);
        let result = py.detach(|| infer::segment(&model, &volume, &sopts, &mut |p| hook.call(p)));
        hook.raise_if_failed()?;
        let seg = result.map_err(to_py)?;
        let stats = serde_json::to_string(&seg.mask.stats()).map_err(|e| invalid(e.to_string()))?;
        let mut timings = serde_json::to_value(&seg.timings).map_err(|e| invalid(e.to_string()))?;
        timings["convert"] = convert.into();
        timings["total"] = t0.elapsed().as_secs_f64().into();
        let mask = seg.mask.labels.into_pyarray(py);
        Ok((mask, stats, timings.to_string(), seg.provider, seg.warnings))
    }
}

/// The engine's options from the JSON object Python passes.
fn segment_options(json: &str) -> PyResult<SegmentOptions> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| invalid(format!("options: {e}")))?;
    SegmentOptions::from_json(&value).map_err(to_py)
}

/// The segmentation options and their defaults as a JSON object: the keyword arguments
/// `Model.segment` accepts, declared once, in the engine.
#[pyfunction]
pub fn default_segment_options() -> String {
    SegmentOptions::default().to_json().to_string()
}

/// A `Volume` from the caller's array, copied into the engine's standard layout.
fn memory_volume(
    data: &PyReadonlyArray4<'_, f32>,
    affine_lps: &[[f64; 4]; 4],
    axis: usize,
) -> PyResult<Volume> {
    if axis > 2 {
        return Err(invalid(format!("slice axis {axis} is not 0, 1 or 2")));
    }
    let view = data.as_array();
    let shape = view.dim();
    let values: Vec<f32> = view.iter().copied().collect();
    let array = Array4::from_shape_vec(shape, values).map_err(|e| invalid(e.to_string()))?;
    let geometry = Geometry::from_affine_lps(affine_lps)
        .ok_or_else(|| invalid("the affine has a zero-length or non-finite axis"))?;
    let mut meta = VolumeMeta::new("<array>", SourceFormat::Memory, DType::F32);
    meta.acquisition_axis = axis;
    Ok(Volume {
        data: array,
        geometry,
        meta,
    })
}

/// Calls a Python progress callable from the engine's thread, taking the GIL only for the call.
/// An exception in the callable cancels the run and is raised in its place.
struct ProgressHook {
    callable: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl ProgressHook {
    fn new(callable: Option<Py<PyAny>>) -> Self {
        ProgressHook {
            callable,
            error: None,
        }
    }

    /// Whether to go on.
    fn call(&mut self, p: Progress) -> bool {
        let Some(f) = &self.callable else {
            return true;
        };
        Python::attach(|py| match f.call1(py, (p.done, p.total)) {
            Ok(r) => r.is_none(py) || r.bind(py).is_truthy().unwrap_or(true),
            Err(e) => {
                self.error = Some(e);
                false
            }
        })
    }

    fn raise_if_failed(&mut self) -> PyResult<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}
