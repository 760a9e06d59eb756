//! `slicewise_mask`: the label mask a segmentation produced.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::boundary::{self, arg, call, call_void, out, CError};
use super::status::slicewise_status;
use super::volume::{check_space, geometry_out, slicewise_space};
use slicewise::infer::Segmentation;
use slicewise::mask::{LabelStats, Mask};

/// A label mask (`uint8_t` per voxel, 0 = background) on the grid of the segmented volume, with
/// its geometry and per-label statistics.
///
/// Owner: created by `slicewise_segment`, owned by the caller, released with
/// `slicewise_mask_free`. Thread rule: immutable, so its accessors may be called from several
/// threads at once; pointers it hands out stay valid until it is freed.
pub struct slicewise_mask {
    mask: Mask,
    // Computed on first use (a pass over every voxel), so that a host that only wants the
    // labels pays nothing for them.
    stats: OnceLock<Stats>,
}

struct Stats {
    stats: Vec<LabelStats>,
    // NUL-terminated copies of the label names, for `slicewise_label_stats.name`.
    names: Vec<CString>,
}

impl slicewise_mask {
    pub(crate) fn new(seg: Segmentation) -> Self {
        let mut mask = seg.mask;
        if !mask.labels.is_standard_layout() {
            // slicewise_mask_data hands out one contiguous C-order buffer.
            mask.labels = mask.labels.as_standard_layout().into_owned();
        }
        slicewise_mask {
            mask,
            stats: OnceLock::new(),
        }
    }

    fn stats(&self) -> &Stats {
        self.stats.get_or_init(|| {
            let stats = self.mask.stats();
            let names = stats
                .iter()
                .map(|s| CString::new(s.name.replace('\0', "")).unwrap_or_default())
                .collect();
            Stats { stats, names }
        })
    }
}

/// Size and geometry of a mask (`slicewise_mask_info`). Set `struct_size` to
/// `sizeof(slicewise_mask_desc)` before the call; the library fills the rest.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct slicewise_mask_desc {
    /// `sizeof(slicewise_mask_desc)`, set by the caller.
    pub struct_size: usize,
    /// Columns (x), rows (y), slices (z): those of the segmented volume.
    pub dims: [usize; 3],
    /// Voxel size along i, j, k in mm.
    pub spacing: [f64; 3],
    /// Centre of voxel (0,0,0) in the requested space, mm.
    pub origin: [f64; 3],
    /// Direction cosines, row-major, `direction[3*r + c]` = component r of index axis c, in the
    /// requested space.
    pub direction: [f64; 9],
    /// Number of entries for `slicewise_mask_label_stats`: the model's labels plus any other
    /// non-zero value present, background excluded.
    pub label_count: usize,
}

/// Statistics of one label (`slicewise_mask_label_stats`). Set `struct_size` to
/// `sizeof(slicewise_label_stats)` before the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct slicewise_label_stats {
    /// `sizeof(slicewise_label_stats)`, set by the caller.
    pub struct_size: usize,
    /// Label value in the mask (1..255).
    pub value: u8,
    /// Display colour, sRGB (0,0,0 when the model gives none).
    pub color: [u8; 3],
    /// Number of voxels with this label.
    pub voxels: u64,
    /// Their volume in millilitres (voxels × voxel volume).
    pub ml: f64,
    /// Label name (UTF-8, "" when unknown), owned by the mask: valid until `slicewise_mask_free`.
    pub name: *const c_char,
}

/// Points `*data` at the mask's labels and stores their count in `*len`.
///
/// The buffer holds `dims[0]*dims[1]*dims[2]` bytes in C order `[z][y][x]` (x fastest), the same
/// order as `slicewise_volume_from_memory`'s input; it is owned by the mask, read-only, and valid
/// until `slicewise_mask_free`.
///
/// # Safety
/// `mask` is NULL or a live mask; `data` and `len` are NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn slicewise_mask_data(
    mask: *const slicewise_mask,
    data: *mut *const u8,
    len: *mut usize,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `mask` is NULL or a live mask.
        let m = unsafe { arg(mask, "mask") }?;
        let data = out(data, "data")?;
        let len = out(len, "len")?;
        let s = m
            .mask
            .labels
            .as_slice()
            .ok_or_else(|| CError::invalid("mask labels are not contiguous"))?;
        // SAFETY: `data` is non-null (checked above) and the caller guarantees it valid for
        // writing. The buffer it now points to is the mask's, valid until the mask is freed.
        unsafe { *data = s.as_ptr() };
        // SAFETY: `len` is non-null (checked above) and the caller guarantees it valid for
        // writing.
        unsafe { *len = s.len() };
        Ok(())
    })
}

/// Describes a mask: dims, spacing, origin and direction in `space`
/// (`SLICEWISE_SPACE_LPS` or `SLICEWISE_SPACE_RAS`), label count.
///
/// # Safety
/// `mask` is NULL or a live mask; `info` is NULL or valid for `info->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn slicewise_mask_info(
    mask: *const slicewise_mask,
    space: slicewise_space,
    info: *mut slicewise_mask_desc,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `mask` is NULL or a live mask.
        let m = unsafe { arg(mask, "mask") }?;
        out(info, "info")?;
        check_space(space)?;
        let shape = m.mask.labels.shape();
        let (origin, direction) = geometry_out(&m.mask.geometry, space);
        let value = slicewise_mask_desc {
            struct_size: std::mem::size_of::<slicewise_mask_desc>(),
            dims: [shape[2], shape[1], shape[0]],
            spacing: m.mask.geometry.spacing,
            origin,
            direction,
            label_count: m.stats().stats.len(),
        };
        // SAFETY: the caller guarantees `info` is NULL or valid for `info->struct_size` bytes.
        unsafe { boundary::write_sized(info, &value, "info") }
    })
}

/// Statistics of the label at `index` (0 .. `label_count - 1`, in label-value order).
///
/// # Safety
/// `mask` is NULL or a live mask; `out` is NULL or valid for `out->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn slicewise_mask_label_stats(
    mask: *const slicewise_mask,
    index: usize,
    out: *mut slicewise_label_stats,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `mask` is NULL or a live mask.
        let m = unsafe { arg(mask, "mask") }?;
        let stats = m.stats();
        let s = stats.stats.get(index).ok_or_else(|| {
            CError::invalid(format!(
                "label index {index} is out of range (the mask has {} labels)",
                stats.stats.len()
            ))
        })?;
        let color = m
            .mask
            .label_info
            .iter()
            .find(|l| l.value == s.value)
            .map_or([0; 3], |l| l.color);
        let value = slicewise_label_stats {
            struct_size: std::mem::size_of::<slicewise_label_stats>(),
            value: s.value,
            color,
            voxels: s.voxels,
            ml: s.ml,
            name: stats.names[index].as_ptr(),
        };
        // SAFETY: the caller guarantees `out` is NULL or valid for `out->struct_size` bytes.
        unsafe { boundary::write_sized(out, &value, "out") }
    })
}

/// Writes the mask with the segmented volume's geometry; the format follows the extension:
/// `.nii` / `.nii.gz` (NIfTI-1), `.tif` / `.tiff` (multi-page TIFF). The file is written
/// atomically (a temporary file renamed into place): on failure nothing at `path` changes.
///
/// # Safety
/// `mask` is NULL or a live mask; `path` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn slicewise_mask_save(
    mask: *const slicewise_mask,
    path: *const std::ffi::c_char,
) -> slicewise_status {
    call(|| {
        // SAFETY: the caller guarantees `mask` is NULL or a live mask.
        let m = unsafe { arg(mask, "mask") }?;
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { boundary::path(path, "path") }?;
        slicewise::output::write_mask(&path, &m.mask)?;
        Ok(())
    })
}

/// Releases a mask (and every pointer it handed out). NULL is a no-op.
///
/// # Safety
/// `mask` is NULL or a mask from `slicewise_segment` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn slicewise_mask_free(mask: *mut slicewise_mask) {
    call_void(|| {
        if !mask.is_null() {
            // SAFETY: non-null checked just now; the caller guarantees it is a mask from
            // slicewise_segment (a Box::into_raw) not yet freed nor in use.
            drop(unsafe { Box::from_raw(mask) });
        }
    })
}
