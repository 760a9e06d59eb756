//! `slicewise_volume`: an image volume read from a file or copied from host memory.

use std::ffi::c_char;
use std::path::Path;

use ndarray::{Array4, ShapeBuilder};

use super::boundary::{self, arg, call, call_void, out, CError, CResult};
use super::status::slicewise_status;
use slicewise::volume::{DType, Geometry, ReadOptions, SourceFormat, Volume, VolumeMeta};

/// An image volume: voxels (as 32-bit floats, real-world values) plus geometry.
///
/// Owner: created by `slicewise_volume_open`, `slicewise_volume_open_channels` or
/// `slicewise_volume_from_memory`, released by the caller with `slicewise_volume_free`. Thread
/// rule: immutable after creation, so shareable: any number of threads may read or segment it at
/// the same time. Free it only when unused.
pub struct slicewise_volume {
    pub(crate) inner: Volume,
}

/// A voxel sample type.
pub type slicewise_dtype = u32;
/// uint8_t.
pub const SLICEWISE_DTYPE_U8: slicewise_dtype = 1;
/// int8_t.
pub const SLICEWISE_DTYPE_I8: slicewise_dtype = 2;
/// uint16_t.
pub const SLICEWISE_DTYPE_U16: slicewise_dtype = 3;
/// int16_t.
pub const SLICEWISE_DTYPE_I16: slicewise_dtype = 4;
/// uint32_t.
pub const SLICEWISE_DTYPE_U32: slicewise_dtype = 5;
/// int32_t.
pub const SLICEWISE_DTYPE_I32: slicewise_dtype = 6;
/// float (IEEE 754 binary32).
pub const SLICEWISE_DTYPE_F32: slicewise_dtype = 7;
/// double (IEEE 754 binary64).
pub const SLICEWISE_DTYPE_F64: slicewise_dtype = 8;
/// uint64_t.
pub const SLICEWISE_DTYPE_U64: slicewise_dtype = 9;
/// int64_t.
pub const SLICEWISE_DTYPE_I64: slicewise_dtype = 10;
/// 1-bit samples (only reported by `slicewise_volume_info`, not accepted as input).
pub const SLICEWISE_DTYPE_BOOL: slicewise_dtype = 11;

/// The patient coordinate system that origins and direction cosines are given in.
pub type slicewise_space = u32;
/// LPS (DICOM, ITK): +x Left, +y Posterior, +z Superior. slicewise's own convention.
pub const SLICEWISE_SPACE_LPS: slicewise_space = 1;
/// RAS (NIfTI, 3D Slicer): +x Right, +y Anterior, +z Superior. Converted by negating the first
/// two components of the origin and of every direction vector.
pub const SLICEWISE_SPACE_RAS: slicewise_space = 2;

/// Where a volume came from.
pub type slicewise_format = u32;
/// A DICOM series.
pub const SLICEWISE_FORMAT_DICOM: slicewise_format = 1;
/// A NIfTI file.
pub const SLICEWISE_FORMAT_NIFTI: slicewise_format = 2;
/// A TIFF file or folder of TIFF slices.
pub const SLICEWISE_FORMAT_TIFF: slicewise_format = 3;
/// Host memory (`slicewise_volume_from_memory`).
pub const SLICEWISE_FORMAT_MEMORY: slicewise_format = 4;

/// Size and geometry of a volume (`slicewise_volume_info`). Set `struct_size` to
/// `sizeof(slicewise_volume_desc)` before the call; the library fills the rest.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct slicewise_volume_desc {
    /// `sizeof(slicewise_volume_desc)`, set by the caller.
    pub struct_size: usize,
    /// Columns (x, i), rows (y, j), slices (z, k), channels.
    pub dims: [usize; 4],
    /// Voxel size along i, j, k in mm.
    pub spacing: [f64; 3],
    /// Position of the centre of voxel (0,0,0) in mm, in the requested space.
    pub origin: [f64; 3],
    /// Direction cosines, row-major: `direction[3*r + c]` is component r of index axis c's unit
    /// vector, in the requested space (the IJK-to-LPS/RAS rotation).
    pub direction: [f64; 9],
    /// The sample type in the source (`SLICEWISE_DTYPE_*`).
    pub original_dtype: slicewise_dtype,
    /// The source format (`SLICEWISE_FORMAT_*`).
    pub format: slicewise_format,
    /// The index axis slices were acquired along and are segmented along (0 = i, 1 = j, 2 = k).
    pub acquisition_axis: u32,
}

pub(crate) fn dtype_code(d: DType) -> slicewise_dtype {
    match d {
        DType::U8 => SLICEWISE_DTYPE_U8,
        DType::I8 => SLICEWISE_DTYPE_I8,
        DType::U16 => SLICEWISE_DTYPE_U16,
        DType::I16 => SLICEWISE_DTYPE_I16,
        DType::U32 => SLICEWISE_DTYPE_U32,
        DType::I32 => SLICEWISE_DTYPE_I32,
        DType::F32 => SLICEWISE_DTYPE_F32,
        DType::F64 => SLICEWISE_DTYPE_F64,
        DType::U64 => SLICEWISE_DTYPE_U64,
        DType::I64 => SLICEWISE_DTYPE_I64,
        DType::Bool => SLICEWISE_DTYPE_BOOL,
    }
}

fn dtype_from_code(code: slicewise_dtype) -> CResult<(DType, usize)> {
    Ok(match code {
        SLICEWISE_DTYPE_U8 => (DType::U8, 1),
        SLICEWISE_DTYPE_I8 => (DType::I8, 1),
        SLICEWISE_DTYPE_U16 => (DType::U16, 2),
        SLICEWISE_DTYPE_I16 => (DType::I16, 2),
        SLICEWISE_DTYPE_U32 => (DType::U32, 4),
        SLICEWISE_DTYPE_I32 => (DType::I32, 4),
        SLICEWISE_DTYPE_F32 => (DType::F32, 4),
        SLICEWISE_DTYPE_F64 => (DType::F64, 8),
        SLICEWISE_DTYPE_U64 => (DType::U64, 8),
        SLICEWISE_DTYPE_I64 => (DType::I64, 8),
        c => {
            return Err(CError::invalid(format!(
                "dtype {c} is not an accepted SLICEWISE_DTYPE_* value (U8..I64, not BOOL)"
            )))
        }
    })
}

/// Native-endian samples to f32, whatever the alignment of the host's buffer.
fn to_f32(bytes: &[u8], dtype: DType) -> Vec<f32> {
    macro_rules! conv {
        ($t:ty) => {
            bytes
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_ne_bytes(c.try_into().unwrap_or_default()) as f32)
                .collect()
        };
    }
    match dtype {
        DType::U8 => bytes.iter().map(|&b| b as f32).collect(),
        DType::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        DType::U16 => conv!(u16),
        DType::I16 => conv!(i16),
        DType::U32 => conv!(u32),
        DType::I32 => conv!(i32),
        DType::F32 => conv!(f32),
        DType::F64 => conv!(f64),
        DType::U64 => conv!(u64),
        DType::I64 => conv!(i64),
        DType::Bool => Vec::new(),
    }
}

/// Converts between LPS and RAS (the same operation both ways).
pub(crate) fn flip_space(v: &mut [f64; 3]) {
    v[0] = -v[0];
    v[1] = -v[1];
}

pub(crate) fn check_space(space: slicewise_space) -> CResult<()> {
    match space {
        SLICEWISE_SPACE_LPS | SLICEWISE_SPACE_RAS => Ok(()),
        s => Err(CError::invalid(format!(
            "space {s} is not SLICEWISE_SPACE_LPS or SLICEWISE_SPACE_RAS"
        ))),
    }
}

/// Origin and row-major direction of `g` in `space`.
pub(crate) fn geometry_out(g: &Geometry, space: slicewise_space) -> ([f64; 3], [f64; 9]) {
    let mut origin = g.origin;
    let mut dir = [0.0; 9];
    for c in 0..3 {
        let mut axis = g.axis(c);
        if space == SLICEWISE_SPACE_RAS {
            flip_space(&mut axis);
        }
        for r in 0..3 {
            dir[3 * r + c] = axis[r];
        }
    }
    if space == SLICEWISE_SPACE_RAS {
        flip_space(&mut origin);
    }
    (origin, dir)
}

/// Three values from a nullable caller array, or `default` when it is NULL.
///
/// # Safety
/// `p` is NULL or valid for reading 3 `f64`s.
unsafe fn read3(p: *const f64, default: [f64; 3]) -> [f64; 3] {
    if p.is_null() {
        default
    } else {
        // SAFETY: non-null checked above; the caller guarantees 3 readable values.
        unsafe { [*p, *p.add(1), *p.add(2)] }
    }
}

/// The geometry of a host's voxel array, converted to LPS and checked.
///
/// # Safety
/// `spacing` and `origin` are NULL or valid for reading 3 `f64`s; `direction` NULL or 9.
unsafe fn geometry_in(
    spacing: *const f64,
    origin: *const f64,
    direction: *const f64,
    space: slicewise_space,
) -> CResult<Geometry> {
    check_space(space)?;
    let mut g = Geometry::identity();
    // SAFETY: the caller guarantees `spacing` is NULL or 3 values.
    g.spacing = unsafe { read3(spacing, [1.0; 3]) };
    if let Some(s) = g.spacing.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(CError::invalid(format!(
            "spacing {s} is not a positive finite number"
        )));
    }
    // SAFETY: the caller guarantees `origin` is NULL or 3 values.
    g.origin = unsafe { read3(origin, [0.0; 3]) };
    if !direction.is_null() {
        for r in 0..3 {
            for c in 0..3 {
                // SAFETY: non-null checked above; the caller guarantees 9 readable values and
                // 3 * r + c <= 8.
                g.direction[r][c] = unsafe { *direction.add(3 * r + c) };
            }
        }
    } else if space == SLICEWISE_SPACE_RAS {
        // Identity in the caller's space.
        g.direction = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    if space == SLICEWISE_SPACE_RAS {
        flip_space(&mut g.origin);
        if !direction.is_null() {
            for c in 0..3 {
                g.direction[0][c] = -g.direction[0][c];
                g.direction[1][c] = -g.direction[1][c];
            }
        }
    }
    if g.origin.iter().any(|v| !v.is_finite()) {
        return Err(CError::invalid("origin holds a non-finite value"));
    }
    for c in 0..3 {
        let len = g.axis(c).iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(len.is_finite() && (len - 1.0).abs() <= 1e-3) {
            return Err(CError::invalid(format!(
                "direction column {c} has length {len}: pass unit direction cosines, and the voxel size as spacing"
            )));
        }
    }
    Ok(g)
}

/// Reads a volume from a DICOM file or folder (one series), a NIfTI file (.nii, .nii.gz,
/// .hdr/.img) or a TIFF file or folder of TIFF slices.
///
/// `out` receives the new volume on success (untouched on failure); free it with
/// `slicewise_volume_free`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `out` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_volume_open(
    path: *const c_char,
    out: *mut *mut slicewise_volume,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { boundary::path(path, "path") }?;
        let out = boundary::out(out, "out")?;
        let inner = Volume::open(&path)?;
        let handle = Box::into_raw(Box::new(slicewise_volume { inner }));
        // SAFETY: `out` is non-null (checked above) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Reads one volume per channel and stacks them into one multi-channel volume: `paths[i]` (a
/// file or DICOM series folder holding one channel) becomes channel i, for a model taking
/// several input channels (e.g. nnU-Net's `CASE_0000.nii.gz`, `CASE_0001.nii.gz`).
///
/// Every path must lie on the first one's voxel grid: the same dimensions, spacing and origin
/// within 1e-4 mm, direction cosines within 1e-5. Otherwise the result is
/// `SLICEWISE_FORMAT` and `slicewise_last_error` names both files and what differs. The
/// volume has the first file's geometry.
///
/// * `paths`: `n` NUL-terminated paths; `n` at least 1.
/// * `out`: receives the new volume on success (untouched on failure); free it with
///   `slicewise_volume_free`.
///
/// # Safety
/// `paths` is NULL or points to `n` pointers, each NULL or NUL-terminated; `out` is NULL or
/// valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_volume_open_channels(
    paths: *const *const c_char,
    n: usize,
    out: *mut *mut slicewise_volume,
) -> slicewise_status {
    call(|| {
        if paths.is_null() {
            return Err(CError::null("paths"));
        }
        if n == 0 {
            return Err(CError::invalid("n is 0: give at least one channel file"));
        }
        let out = boundary::out(out, "out")?;
        // SAFETY: non-null (checked), and the caller guarantees `n` readable pointers.
        let raw = unsafe { std::slice::from_raw_parts(paths, n) };
        let mut list = Vec::with_capacity(n);
        for (i, &p) in raw.iter().enumerate() {
            // SAFETY: the caller guarantees each pointer NULL or NUL-terminated.
            list.push(unsafe { boundary::path(p, &format!("paths[{i}]")) }?);
        }
        let inner = Volume::open_channels(&list, &ReadOptions::default())?;
        let handle = Box::into_raw(Box::new(slicewise_volume { inner }));
        // SAFETY: `out` is non-null (checked above) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Copies a host's voxel array into a new volume (no file round trip).
///
/// * `data`: `dims[0]*dims[1]*dims[2]*dims[3]` samples of type `dtype`, native byte order, any
///   alignment, in C order `[z][y][x][channel]`: the channel varies fastest, then x (column),
///   then y (row), then z (slice). A numpy array of shape `(z, y, x)` (a scalar volume, e.g.
///   3D Slicer's `arrayFromVolume`) or `(z, y, x, c)` (a vector volume) made C-contiguous has
///   exactly this layout. The data is copied: the caller may free it after the call.
/// * `dtype`: one of `SLICEWISE_DTYPE_U8` .. `SLICEWISE_DTYPE_I64` (not BOOL).
/// * `dims`: 4 values: x (columns), y (rows), z (slices), channels (1 for a scalar volume);
///   each at least 1.
/// * `spacing` (nullable: 1 mm): 3 values, the voxel size along x, y, z in mm, > 0.
/// * `origin` (nullable: 0): 3 values, the centre of voxel (0,0,0) in `space`, mm.
/// * `direction` (nullable: identity in `space`): 9 values, row-major, `direction[3*r + c]` =
///   component r of the unit vector of index axis c (c = 0 for x/columns, 1 for y/rows, 2 for
///   z/slices) in `space`. This is the rotation part of the IJK-to-RAS matrix for
///   `SLICEWISE_SPACE_RAS` (3D Slicer's `GetIJKToRASDirections`); columns must be unit length.
/// * `space`: `SLICEWISE_SPACE_LPS` or `SLICEWISE_SPACE_RAS`, the frame `origin` and
///   `direction` are given in (there is no default: a silent flip is the worst error).
///   Volumes are stored in LPS.
/// * `out`: receives the new volume on success; free it with `slicewise_volume_free`.
///
/// Slices are segmented along z (index axis 2).
///
/// # Safety
/// `data` is NULL or valid for the number of bytes `dims` and `dtype` imply; `dims` is NULL or 4
/// values; `spacing` and `origin` NULL or 3 values; `direction` NULL or 9 values; `out` NULL or
/// valid for writing.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn slicewise_volume_from_memory(
    data: *const std::ffi::c_void,
    dtype: slicewise_dtype,
    dims: *const usize,
    spacing: *const f64,
    origin: *const f64,
    direction: *const f64,
    space: slicewise_space,
    out: *mut *mut slicewise_volume,
) -> slicewise_status {
    call(|| {
        let out = boundary::out(out, "out")?;
        let (dt, size) = dtype_from_code(dtype)?;
        // SAFETY: the caller guarantees `dims` is NULL or 4 values, i.e. one `[usize; 4]` (same
        // alignment as `usize`), which the caller keeps alive during the call.
        let d = unsafe { arg(dims.cast::<[usize; 4]>(), "dims") }?;
        let [x, y, z, c] = *d;
        if d.contains(&0) {
            return Err(CError::invalid(format!(
                "dims {{x: {x}, y: {y}, z: {z}, channels: {c}}} has a zero; each must be at least 1"
            )));
        }
        // SAFETY: the caller guarantees `spacing` and `origin` NULL or 3 values, `direction`
        // NULL or 9: geometry_in's contract.
        let geometry = unsafe { geometry_in(spacing, origin, direction, space) }?;
        let source = Path::new("<memory>");
        let n =
            ReadOptions::default().check_size(source, &[c as u64, z as u64, y as u64, x as u64])?;
        let nbytes = n
            .checked_mul(size)
            .ok_or_else(|| CError::invalid("data size overflows"))?;
        if data.is_null() {
            return Err(CError::null("data"));
        }
        // SAFETY: non-null checked above; the caller guarantees `data` holds the bytes `dims` and
        // `dtype` imply, which is `nbytes` (computed without overflow, and bounded by the size
        // limit check_size enforced); u8 has no alignment requirement; the host does not write
        // to it during the call.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), nbytes) };
        let values = to_f32(bytes, dt);
        let array = if c == 1 {
            Array4::from_shape_vec((1, z, y, x), values)
        } else {
            // Interleaved [z][y][x][c] seen as [c][z][y][x] through strides, then made contiguous.
            Array4::from_shape_vec((c, z, y, x).strides((1, y * x * c, x * c, c)), values)
                .map(|a| a.as_standard_layout().into_owned())
        }
        .map_err(|e| CError::invalid(format!("dims do not match the data: {e}")))?;
        let meta = VolumeMeta::new(source, SourceFormat::Memory, dt);
        let inner = Volume {
            data: array,
            geometry,
            meta,
        };
        let handle = Box::into_raw(Box::new(slicewise_volume { inner }));
        // SAFETY: `out` is non-null (checked first) and the caller guarantees it valid for
        // writing; written only now, on success.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Describes a volume: dims, spacing, and origin and direction in `space`
/// (`SLICEWISE_SPACE_LPS` or `SLICEWISE_SPACE_RAS`). `info->struct_size` must be set by the
/// caller; `info` is written only on success.
///
/// # Safety
/// `volume` is NULL or a live volume; `info` is NULL or valid for `info->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn slicewise_volume_info(
    volume: *const slicewise_volume,
    space: slicewise_space,
    info: *mut slicewise_volume_desc,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `volume` is NULL or a live volume.
        let v = &unsafe { arg(volume, "volume") }?.inner;
        out(info, "info")?;
        check_space(space)?;
        let [x, y, z] = v.dims_xyz();
        let (origin, direction) = geometry_out(&v.geometry, space);
        let value = slicewise_volume_desc {
            struct_size: std::mem::size_of::<slicewise_volume_desc>(),
            dims: [x, y, z, v.channels()],
            spacing: v.geometry.spacing,
            origin,
            direction,
            original_dtype: dtype_code(v.meta.original_dtype),
            format: match v.meta.format {
                SourceFormat::Dicom => SLICEWISE_FORMAT_DICOM,
                SourceFormat::Nifti => SLICEWISE_FORMAT_NIFTI,
                SourceFormat::Tiff => SLICEWISE_FORMAT_TIFF,
                SourceFormat::Memory => SLICEWISE_FORMAT_MEMORY,
            },
            acquisition_axis: v.meta.acquisition_axis as u32,
        };
        // SAFETY: the caller guarantees `info` is NULL or valid for `info->struct_size` bytes.
        unsafe { boundary::write_sized(info, &value, "info") }
    })
}

/// Releases a volume. NULL is a no-op. The volume must not be in use by another call.
///
/// # Safety
/// `volume` is NULL or a volume from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn slicewise_volume_free(volume: *mut slicewise_volume) {
    call_void(|| {
        if !volume.is_null() {
            // SAFETY: non-null checked just now; the caller guarantees it is a volume from this
            // library (a Box::into_raw in slicewise_volume_open or _from_memory) not yet freed nor
            // in use.
            drop(unsafe { Box::from_raw(volume) });
        }
    })
}
