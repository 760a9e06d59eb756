//! A skull-stripped copy of a training volume, so that a model trained on heads with their
//! skull also meets brains without one (other sites ship skull-stripped volumes: BraTS, most
//! research pipelines), and so that its intensity statistics are those of a stripped volume.
//!
//! The brain is approximated by the head eroded by a rim: the head is every pixel whose
//! normalised first channel exceeds [`HEAD_LEVEL`] with its holes filled, and the rim is
//! [`RIM`] of the volume's widest head (about scalp plus skull, 12–14 mm on the LGG slices).
//! Pixels outside go to each channel's minimum (the background a stripped volume has), mask
//! labels outside go to 0. The copy is then normalised on its own, as the engine would.

use std::collections::VecDeque;

use slicewise::infer::preprocess::{slice_norm, volume_norm, ChannelNorm};
use slicewise::infer::Normalization;

use ndarray::ArrayView2;

use crate::distance::{to_outside, CHAMFER_3_4};

/// Normalised level above which a pixel belongs to the head.
pub const HEAD_LEVEL: f32 = 0.1;

/// Rim width as a fraction of the widest head extent in the volume.
pub const RIM: f64 = 0.07;

/// The stripped copy of `planes` (`[c][z][h*w]`) and `masks`.
pub fn strip(
    planes: &[Vec<Vec<f32>>],
    masks: &[Vec<u8>],
    (h, w): (usize, usize),
    normalization: &Normalization,
) -> (Vec<Vec<Vec<f32>>>, Vec<Vec<u8>>) {
    let norm = volume_norm(normalization, planes[0].iter().flat_map(|p| p.iter()));
    let heads: Vec<Vec<bool>> = planes[0].iter().map(|p| head(p, (h, w), norm)).collect();
    let rim = (RIM * widest(&heads, (h, w)) as f64).round() as u32;
    let keep: Vec<Vec<bool>> = heads.iter().map(|m| erode(m, (h, w), rim)).collect();
    let out_planes = planes
        .iter()
        .map(|ch| {
            let min = ch
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f32::INFINITY, f32::min);
            ch.iter()
                .zip(&keep)
                .map(|(p, k)| {
                    p.iter()
                        .zip(k)
                        .map(|(&v, &k)| if k { v } else { min })
                        .collect()
                })
                .collect()
        })
        .collect();
    let out_masks = masks
        .iter()
        .zip(&keep)
        .map(|(m, k)| {
            m.iter()
                .zip(k)
                .map(|(&v, &k)| if k { v } else { 0 })
                .collect()
        })
        .collect();
    (out_planes, out_masks)
}

/// The head of one plane: pixels above [`HEAD_LEVEL`] once normalised, holes filled (every
/// pixel the border's background cannot reach).
fn head(plane: &[f32], (h, w): (usize, usize), norm: Option<ChannelNorm>) -> Vec<bool> {
    let n = norm.unwrap_or_else(|| match ArrayView2::from_shape((h, w), plane) {
        Ok(v) => slice_norm(v),
        Err(_) => ChannelNorm::IDENTITY,
    });
    let bright: Vec<bool> = plane.iter().map(|&v| n.apply(v) > HEAD_LEVEL).collect();
    let mut outside = vec![false; h * w];
    let mut queue = VecDeque::new();
    for i in 0..h * w {
        let (r, c) = (i / w, i % w);
        if (r == 0 || c == 0 || r == h - 1 || c == w - 1) && !bright[i] {
            outside[i] = true;
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        let (r, c) = (i / w, i % w);
        let mut visit = |j: usize| {
            if !bright[j] && !outside[j] {
                outside[j] = true;
                queue.push_back(j);
            }
        };
        if r > 0 {
            visit(i - w);
        }
        if r + 1 < h {
            visit(i + w);
        }
        if c > 0 {
            visit(i - 1);
        }
        if c + 1 < w {
            visit(i + 1);
        }
    }
    outside.into_iter().map(|o| !o).collect()
}

/// The largest row or column extent of any head in the volume, in pixels.
fn widest(heads: &[Vec<bool>], (h, w): (usize, usize)) -> usize {
    let mut best = 0;
    for m in heads {
        let rows: Vec<usize> = (0..h)
            .filter(|&r| m[r * w..(r + 1) * w].contains(&true))
            .collect();
        let cols: Vec<usize> = (0..w).filter(|&c| (0..h).any(|r| m[r * w + c])).collect();
        if let (Some(r0), Some(r1), Some(c0), Some(c1)) =
            (rows.first(), rows.last(), cols.first(), cols.last())
        {
            best = best.max(r1 - r0 + 1).max(c1 - c0 + 1);
        }
    }
    best
}

/// The pixels of `inside` at least `rim` pixels (3-4 chamfer distance) from its outside.
fn erode(inside: &[bool], (h, w): (usize, usize), rim: u32) -> Vec<bool> {
    to_outside(inside, (h, w), &CHAMFER_3_4)
        .into_iter()
        .map(|v| v >= 3 * rim.max(1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripping_removes_a_rim_and_the_mask_under_it() {
        // A 40×40 bright square head on a 60×60 black slice, a label on its edge and its centre.
        let (h, w) = (60, 60);
        let mut plane = vec![0f32; h * w];
        let mut mask = vec![0u8; h * w];
        for r in 10..50 {
            for c in 10..50 {
                plane[r * w + c] = 100.0;
            }
        }
        mask[10 * w + 30] = 1;
        mask[30 * w + 30] = 1;
        let norm = Normalization::Percentile {
            lower: 0.0,
            upper: 100.0,
        };
        let (p, m) = strip(&[vec![plane]], &[mask], (h, w), &norm);
        // Rim: 7 % of 40 px ≈ 3 px: row 10 goes, the centre stays.
        assert_eq!(p[0][0][10 * w + 30], 0.0);
        assert_eq!(m[0][10 * w + 30], 0);
        assert_eq!(p[0][0][30 * w + 30], 100.0);
        assert_eq!(m[0][30 * w + 30], 1);
        assert_eq!(p[0][0][13 * w + 30], 100.0);
    }
}
