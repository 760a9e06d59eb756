//! PNG previews of a segmentation: a grayscale slice of the image with each label's contour drawn
//! in the label's colour.

use std::path::Path;

use ndarray::{ArrayView2, Axis};

use slicewise::error::{Error, Result};
use slicewise::mask::Mask;
use slicewise::volume::Volume;

/// Colour for labels without [`slicewise::mask::LabelInfo`].
const FALLBACK: [u8; 3] = [255, 40, 40];

/// The z indices of the `n` slices with the most foreground (ties: lower index first), in
/// ascending order; the middle slice when the mask is empty.
pub fn top_slices(mask: &Mask, n: usize) -> Vec<usize> {
    let mut counts: Vec<(usize, usize)> = mask
        .labels
        .axis_iter(Axis(0))
        .map(|s| s.iter().filter(|&&v| v != 0).count())
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect();
    if counts.is_empty() {
        let z = mask.labels.shape()[0];
        return if z == 0 { Vec::new() } else { vec![z / 2] };
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut zs: Vec<usize> = counts.into_iter().take(n).map(|(z, _)| z).collect();
    zs.sort_unstable();
    zs
}

/// Renders slice `z` (RGB, 8-bit, `width × height × 3`): channel `channel` of `volume` scaled
/// from its 1st to 99th percentile to gray, with label contours (label pixels with a 4-neighbour
/// of another value) in their colours.
pub fn render(
    volume: &Volume,
    mask: &Mask,
    z: usize,
    channel: usize,
) -> Option<(u32, u32, Vec<u8>)> {
    let img = volume
        .data
        .index_axis(Axis(0), channel.min(volume.channels().checked_sub(1)?));
    let img = img.index_axis(Axis(0), z);
    let lab = mask.labels.index_axis(Axis(0), z);
    if img.shape() != lab.shape() {
        return None;
    }
    let (h, w) = lab.dim();
    let (lo, hi) = window(img);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let l = lab[[y, x]];
            let px = if l != 0 && is_edge(lab, y, x) {
                mask.label_info
                    .iter()
                    .find(|i| i.value == l)
                    .map(|i| i.color)
                    .unwrap_or(FALLBACK)
            } else {
                let v = img[[y, x]];
                let g = if hi > lo {
                    ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0
                } else {
                    0.0
                };
                let g = if g.is_finite() { g.round() as u8 } else { 0 };
                [g, g, g]
            };
            rgb.extend_from_slice(&px);
        }
    }
    Some((w as u32, h as u32, rgb))
}

/// Writes slice `z`'s preview as PNG at `path`, atomically.
pub fn write(path: &Path, volume: &Volume, mask: &Mask, z: usize, channel: usize) -> Result<()> {
    let (w, h, rgb) = render(volume, mask, z, channel).ok_or_else(|| {
        Error::InvalidArgument(format!("{}: mask and image grids differ", path.display()))
    })?;
    let (w, h, rgb) = enlarge(w, h, &rgb, enlarge_factor(w, h));
    slicewise::output::atomic_write(path, |out| {
        let mut enc = png::Encoder::new(out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let err = |e: png::EncodingError| Error::io("write", path, std::io::Error::other(e));
        let mut wr = enc.write_header().map_err(err)?;
        wr.write_image_data(&rgb).map_err(err)?;
        wr.finish().map_err(err)
    })
}

/// Smallest side a preview is enlarged towards: a 35×50 hippocampus crop is a thumbnail otherwise.
const MIN_PREVIEW_SIDE: u32 = 256;

/// The whole-number factor that brings the shorter side to at least [`MIN_PREVIEW_SIDE`]
/// (at most 8; 1 for slices that are large enough).
fn enlarge_factor(w: u32, h: u32) -> u32 {
    let short = w.min(h).max(1);
    MIN_PREVIEW_SIDE.div_ceil(short).clamp(1, 8)
}

/// Nearest-neighbour enlargement by `k`: each pixel becomes a k×k block, so label contours stay
/// crisp and voxel boundaries visible.
fn enlarge(w: u32, h: u32, rgb: &[u8], k: u32) -> (u32, u32, Vec<u8>) {
    if k == 1 {
        return (w, h, rgb.to_vec());
    }
    let (w, h, k) = (w as usize, h as usize, k as usize);
    let mut out = Vec::with_capacity(rgb.len() * k * k);
    for row in rgb.chunks_exact(w * 3) {
        let wide: Vec<u8> = row
            .chunks_exact(3)
            .flat_map(|px| std::iter::repeat_n(px, k).flatten().copied())
            .collect();
        for _ in 0..k {
            out.extend_from_slice(&wide);
        }
    }
    ((w * k) as u32, (h * k) as u32, out)
}

fn is_edge(lab: ArrayView2<u8>, y: usize, x: usize) -> bool {
    let (h, w) = lab.dim();
    let l = lab[[y, x]];
    (y == 0 || lab[[y - 1, x]] != l)
        || (y + 1 == h || lab[[y + 1, x]] != l)
        || (x == 0 || lab[[y, x - 1]] != l)
        || (x + 1 == w || lab[[y, x + 1]] != l)
}

/// 1st and 99th percentile of the finite values of a slice.
fn window(img: ArrayView2<f32>) -> (f32, f32) {
    let mut v: Vec<f32> = img.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.01), at(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use slicewise::volume::{DType, Geometry, SourceFormat, VolumeMeta};

    #[test]
    fn contour_pixels_take_the_label_colour() {
        let g = Geometry::identity();
        let data = Array4::from_shape_fn((1, 1, 5, 5), |(_, _, y, x)| (y * 5 + x) as f32);
        let v = Volume {
            data,
            geometry: g,
            meta: VolumeMeta::new("mem", SourceFormat::Memory, DType::F32),
        };
        let mut m = Mask::zeros([1, 5, 5], g);
        for y in 1..4 {
            for x in 1..4 {
                m.labels[[0, y, x]] = 1;
            }
        }
        let (w, h, rgb) = render(&v, &m, 0, 0).expect("render");
        assert_eq!((w, h), (5, 5));
        let px = |y: usize, x: usize| &rgb[(y * 5 + x) * 3..(y * 5 + x) * 3 + 3];
        assert_eq!(px(1, 1), FALLBACK);
        assert_ne!(px(2, 2), FALLBACK); // interior keeps the image
        assert_eq!(px(2, 2)[0], px(2, 2)[1]);
        assert_eq!(top_slices(&m, 3), vec![0]);
    }

    #[test]
    fn small_slices_are_enlarged_in_whole_pixel_blocks() {
        assert_eq!(enlarge_factor(54, 32), 8);
        assert_eq!(enlarge_factor(256, 512), 1);
        assert_eq!(enlarge_factor(100, 200), 3);
        let rgb = [1, 2, 3, 4, 5, 6]; // 2×1
        let (w, h, big) = enlarge(2, 1, &rgb, 2);
        assert_eq!((w, h), (4, 2));
        assert_eq!(
            big,
            [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]
        );
    }
}
