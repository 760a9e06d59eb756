//! nnU-Net's crop to non-zero (`preprocessing/cropping/cropping.py`): the bounding box of the
//! voxels non-zero in any input channel, and the 3-D hole-filled non-zero mask that
//! ZScore's `use_mask` normalises inside (holes: background not 6-connected to the border).

use std::ops::Range;

use ndarray::{Array3, ArrayView3};

/// A box on the transposed grid: one half-open range per axis (a0, a1, a2).
pub type Box3 = [Range<usize>; 3];

/// The box of voxels non-zero in any of `channels` (each `[z, y, x]`, the volume's array order),
/// on the array axes; the whole extent when every voxel is zero (as acvl_utils does).
pub fn nonzero_box(channels: &[ArrayView3<f32>]) -> Box3 {
    let sh = channels[0].shape();
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for ch in channels {
        for ((z, y, x), &v) in ch.indexed_iter() {
            if v != 0.0 {
                for (k, i) in [z, y, x].into_iter().enumerate() {
                    lo[k] = lo[k].min(i);
                    hi[k] = hi[k].max(i + 1);
                }
            }
        }
    }
    if lo[0] == usize::MAX {
        return [0..sh[0], 0..sh[1], 0..sh[2]];
    }
    [lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]]
}

/// The box on the transposed grid: axis j of the transposed array is array axis `t[j]`.
pub fn transpose_box(b: &Box3, t: [usize; 3]) -> Box3 {
    [b[t[0]].clone(), b[t[1]].clone(), b[t[2]].clone()]
}

/// `scipy.ndimage.binary_fill_holes` of (any channel ≠ 0) inside the cropped box, 3-D with
/// 6-connectivity: true where a channel is non-zero or where the background is enclosed.
/// Within the box this equals filling the whole volume: outside the box every voxel is
/// background and reaches the border straight along an axis, so a hole is exactly a background
/// component that touches no face of the box.
pub fn filled_mask(channels: &[Array3<f32>]) -> Array3<bool> {
    let sh = channels[0].dim();
    let fg = Array3::from_shape_fn(sh, |i| channels.iter().any(|c| c[i] != 0.0));
    // Flood the background from the box's faces.
    let mut outside = Array3::from_elem(sh, false);
    let mut stack: Vec<[usize; 3]> = Vec::new();
    let dims = [sh.0, sh.1, sh.2];
    let visit = |p: [usize; 3], outside: &mut Array3<bool>, stack: &mut Vec<[usize; 3]>| {
        let i = (p[0], p[1], p[2]);
        if !fg[i] && !outside[i] {
            outside[i] = true;
            stack.push(p);
        }
    };
    for ((a, b, c), _) in fg.indexed_iter() {
        let p = [a, b, c];
        if (0..3).any(|k| p[k] == 0 || p[k] + 1 == dims[k]) {
            visit(p, &mut outside, &mut stack);
        }
    }
    while let Some(p) = stack.pop() {
        for k in 0..3 {
            if p[k] > 0 {
                let mut q = p;
                q[k] -= 1;
                visit(q, &mut outside, &mut stack);
            }
            if p[k] + 1 < dims[k] {
                let mut q = p;
                q[k] += 1;
                visit(q, &mut outside, &mut stack);
            }
        }
    }
    outside.mapv(|o| !o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_spans_every_channel_and_defaults_to_the_whole_extent() {
        let mut a = Array3::<f32>::zeros((4, 5, 6));
        let mut b = a.clone();
        a[[1, 2, 3]] = 1.0;
        b[[2, 4, 1]] = -2.0;
        assert_eq!(nonzero_box(&[a.view(), b.view()]), [1..3, 2..5, 1..4]);
        let z = Array3::<f32>::zeros((4, 5, 6));
        assert_eq!(nonzero_box(&[z.view()]), [0..4, 0..5, 0..6]);
        assert_eq!(
            transpose_box(&[1..3, 2..5, 1..4], [2, 0, 1]),
            [1..4, 1..3, 2..5]
        );
    }

    #[test]
    fn holes_are_3d_enclosed_background() {
        // A closed shell 5×5×5 with an empty core: the core is a hole.
        let mut c = Array3::<f32>::ones((5, 5, 5));
        c[[2, 2, 2]] = 0.0;
        assert!(filled_mask(&[c.clone()]).iter().all(|&v| v));
        // Open the shell on one face: the core now reaches the border.
        c[[2, 2, 1]] = 0.0;
        c[[2, 2, 0]] = 0.0;
        let m = filled_mask(&[c.clone()]);
        assert!(!m[[2, 2, 2]] && !m[[2, 2, 0]]);
        // Diagonal contact is not 6-connected: a core reaching the face only diagonally stays a hole.
        let mut d = Array3::<f32>::ones((5, 5, 5));
        d[[2, 2, 2]] = 0.0;
        d[[1, 1, 1]] = 0.0;
        d[[0, 0, 0]] = 0.0;
        let m = filled_mask(&[d]);
        assert!(m[[2, 2, 2]] && m[[1, 1, 1]] && !m[[0, 0, 0]]);
    }
}
