//! Reading volumes and writing masks through the engine's readers and writers.

use std::path::PathBuf;

use ndarray::Array3;
use numpy::{IntoPyArray, PyArray4, PyReadonlyArray3};
use pyo3::prelude::*;

use crate::errors::{invalid, to_py};
use slicewise::mask::Mask;
use slicewise::volume::{Geometry, ReadOptions, Volume};

/// What `read_volume` returns: voxels `[c, z, y, x]` float32, the index-to-RAS affine, the
/// on-disk dtype's name (numpy spelling), and the volume's metadata as JSON.
type VolumeParts<'py> = (
    Bound<'py, PyArray4<f32>>,
    [[f64; 4]; 4],
    &'static str,
    String,
);

/// Reads any volume the engine reads (the DICOM series `series_uid` of a folder), without the GIL.
#[pyfunction]
#[pyo3(signature = (path, series_uid=None))]
pub fn read_volume(
    py: Python<'_>,
    path: PathBuf,
    series_uid: Option<String>,
) -> PyResult<VolumeParts<'_>> {
    let mut opts = ReadOptions::default();
    if let Some(uid) = series_uid {
        opts = opts.series_uid(uid);
    }
    let v: Volume = py
        .detach(|| Volume::open_with(&path, &opts))
        .map_err(to_py)?;
    let meta = serde_json::to_string(&v.meta).map_err(|e| invalid(e.to_string()))?;
    let dtype = numpy_dtype(v.meta.original_dtype);
    let affine = v.geometry.affine_ras();
    Ok((v.data.into_pyarray(py), affine, dtype, meta))
}

/// Reads one volume per channel (`paths[i]` is channel i, all on one grid) stacked into one,
/// without the GIL; returns what `read_volume` returns.
#[pyfunction]
pub fn read_channels(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<VolumeParts<'_>> {
    let v: Volume = py
        .detach(|| Volume::open_channels(&paths, &ReadOptions::default()))
        .map_err(to_py)?;
    let meta = serde_json::to_string(&v.meta).map_err(|e| invalid(e.to_string()))?;
    let dtype = numpy_dtype(v.meta.original_dtype);
    let affine = v.geometry.affine_ras();
    Ok((v.data.into_pyarray(py), affine, dtype, meta))
}

/// numpy's name of an on-disk sample type.
fn numpy_dtype(d: slicewise::volume::DType) -> &'static str {
    use slicewise::volume::DType::*;
    match d {
        Bool => "bool",
        U8 => "uint8",
        I8 => "int8",
        U16 => "uint16",
        I16 => "int16",
        U32 => "uint32",
        I32 => "int32",
        U64 => "uint64",
        I64 => "int64",
        F32 => "float32",
        F64 => "float64",
    }
}

/// Writes labels `[z, y, x]` on the grid of the index-to-RAS `affine` (format from the
/// extension: NIfTI, TIFF), atomically and without the GIL.
#[pyfunction]
pub fn write_mask(
    py: Python<'_>,
    path: PathBuf,
    mask: PyReadonlyArray3<'_, u8>,
    affine: [[f64; 4]; 4],
) -> PyResult<()> {
    let view = mask.as_array();
    let values: Vec<u8> = view.iter().copied().collect();
    let array = Array3::from_shape_vec(view.dim(), values).map_err(|e| invalid(e.to_string()))?;
    drop(mask);
    let geometry = Geometry::from_affine_ras(&affine)
        .ok_or_else(|| invalid("the affine has a zero-length or non-finite axis"))?;
    let m = Mask {
        labels: array,
        geometry,
        label_info: Vec::new(),
        source: None,
    };
    py.detach(|| slicewise::output::write_mask(&path, &m))
        .map_err(to_py)
}
