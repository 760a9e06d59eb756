//! The contract's `crop_foreground` step: before resizing, each slice is cropped to one in-plane
//! box, the bounding box of the volume's foreground, so that the anatomy fills the model input
//! the same way whatever the field of view (a head with its skull, a skull-stripped brain on a
//! wide black canvas). The engine and the trainer both call [`foreground_box`], so a model sees
//! at inference the crop it was trained on.
//!
//! Foreground: voxels whose *normalised* value exceeds the contract's threshold. The box is the
//! robust extent of their row and column counts summed over all slices (the outermost
//! [`TRIM`] of the foreground on each side is ignored, so a speck of noise in a corner does not
//! widen it), grown by [`MARGIN`] of its size on each side and clipped to the slice. With no
//! foreground the box is the whole slice.

use ndarray::ArrayView2;

use super::preprocess::ChannelNorm;

/// Fraction of the foreground ignored at each end of the row and column extents.
pub const TRIM: f64 = 0.001;

/// Fraction of the box's size added on each side.
pub const MARGIN: f64 = 0.04;

/// An in-plane box: rows `top..bottom`, columns `left..right` of a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// One past the last row.
    pub bottom: usize,
    /// First column.
    pub left: usize,
    /// One past the last column.
    pub right: usize,
}

impl CropBox {
    /// The whole `rows × cols` slice.
    pub fn full(rows: usize, cols: usize) -> CropBox {
        CropBox {
            top: 0,
            bottom: rows,
            left: 0,
            right: cols,
        }
    }

    /// Rows in the box.
    pub fn rows(&self) -> usize {
        self.bottom - self.top
    }

    /// Columns in the box.
    pub fn cols(&self) -> usize {
        self.right - self.left
    }
}

/// The foreground box of `planes` (all `rows × cols`), each value normalised by `norm` (or, when
/// `None`, by the plane's own min-max, as the `minmax-slice` normalisation does), foreground
/// being a normalised value above `threshold`.
pub fn foreground_box<'a>(
    planes: impl Iterator<Item = ArrayView2<'a, f32>>,
    norm: Option<ChannelNorm>,
    threshold: f32,
    rows: usize,
    cols: usize,
) -> CropBox {
    let (mut per_row, mut per_col) = (vec![0u64; rows], vec![0u64; cols]);
    for plane in planes {
        let n = norm.unwrap_or_else(|| super::preprocess::slice_norm(plane));
        for ((r, c), &v) in plane.indexed_iter() {
            if n.apply(v) > threshold {
                per_row[r] += 1;
                per_col[c] += 1;
            }
        }
    }
    match (extent(&per_row), extent(&per_col)) {
        (Some((top, bottom)), Some((left, right))) => {
            let (top, bottom) = grow(top, bottom, rows);
            let (left, right) = grow(left, right, cols);
            CropBox {
                top,
                bottom,
                left,
                right,
            }
        }
        _ => CropBox::full(rows, cols),
    }
}

/// The first and one-past-last index holding the central `1 - 2 TRIM` of `counts`' total.
fn extent(counts: &[u64]) -> Option<(usize, usize)> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let cut = (total as f64 * TRIM).floor() as u64;
    let mut seen = 0;
    let mut first = None;
    let mut last = 0;
    for (i, &k) in counts.iter().enumerate() {
        seen += k;
        if first.is_none() && seen > cut {
            first = Some(i);
        }
        if k > 0 && seen - k < total - cut {
            last = i;
        }
    }
    first.map(|f| (f, last.max(f) + 1))
}

/// `lo..hi` grown by [`MARGIN`] of its length on each side, clipped to `0..n`.
fn grow(lo: usize, hi: usize, n: usize) -> (usize, usize) {
    let m = ((hi - lo) as f64 * MARGIN).round() as usize;
    (lo.saturating_sub(m), (hi + m).min(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn box_is_the_grown_extent_of_the_foreground() {
        let mut a = Array2::<f32>::zeros((100, 80));
        a.slice_mut(ndarray::s![20..70, 10..60]).fill(1.0);
        let b = foreground_box(std::iter::once(a.view()), None, 0.1, 100, 80);
        // 50 rows grown by 2 each side, 50 columns likewise.
        assert_eq!(
            b,
            CropBox {
                top: 18,
                bottom: 72,
                left: 8,
                right: 62
            }
        );
    }

    #[test]
    fn a_speck_of_noise_does_not_widen_the_box() {
        let mut a = Array2::<f32>::zeros((100, 100));
        a.slice_mut(ndarray::s![20..80, 20..80]).fill(1.0);
        a[[0, 99]] = 1.0;
        let b = foreground_box(std::iter::once(a.view()), None, 0.1, 100, 100);
        assert_eq!((b.top, b.bottom, b.left, b.right), (18, 82, 18, 82));
    }

    #[test]
    fn no_foreground_gives_the_whole_slice() {
        let a = Array2::<f32>::zeros((30, 40));
        let b = foreground_box(std::iter::once(a.view()), None, 0.1, 30, 40);
        assert_eq!(b, CropBox::full(30, 40));
    }
}
