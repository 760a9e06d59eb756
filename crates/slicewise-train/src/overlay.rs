//! PNG overlays of validation slices: the image (first channel, grey), the true outline in green
//! and the predicted outline in red, written at the end of a run.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::data::Dataset;
use super::inference::predict;
use super::loader::make_batch;
use super::metrics::foreground;
use super::model::UNet;
use burn::tensor::Device;
use slicewise::error::{Error, Result};

fn outline(mask: &[bool], s: usize, y: usize, x: usize) -> bool {
    if !mask[y * s + x] {
        return false;
    }
    let at = |yy: isize, xx: isize| {
        yy < 0
            || xx < 0
            || yy >= s as isize
            || xx >= s as isize
            || !mask[yy as usize * s + xx as usize]
    };
    let (y, x) = (y as isize, x as isize);
    at(y - 1, x) || at(y + 1, x) || at(y, x - 1) || at(y, x + 1)
}

/// Writes up to `max` overlays of the validation slices with the most true foreground into
/// `dir` as `<volume>_<slice>.png` (slice numbers from 1); returns the files written.
#[allow(clippy::too_many_arguments)]
pub fn write_overlays(
    dir: &Path,
    model: &UNet,
    device: &Device,
    ds: &Dataset,
    indices: &[usize],
    classes: usize,
    threshold: f32,
    max: usize,
) -> Result<Vec<std::path::PathBuf>> {
    let mut picked: Vec<usize> = indices.to_vec();
    picked
        .sort_by_key(|&i| std::cmp::Reverse(ds.slices[i].mask.iter().filter(|&&m| m != 0).count()));
    picked.truncate(max);
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let (c, s) = (ds.input_channels(), ds.size);
    let plane = s * s;
    let mut written = Vec::new();
    for &i in &picked {
        let sl = &ds.slices[i];
        // The model's input as a batch of one (the 2.5D context stacked when there is one).
        let input = make_batch(ds, &[i], None, &mut StdRng::seed_from_u64(0)).images;
        let probs = predict(model, device, &input, [1, c, s, s])?;
        let pred: Vec<bool> = (0..plane)
            .map(|p| foreground(&probs, classes, plane, p, threshold) != 0)
            .collect();
        let truth: Vec<bool> = sl.mask.iter().map(|&m| m != 0).collect();
        let grey = &sl.image[..plane];
        let (lo, hi) = grey
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let mut img = RgbImage::new(s as u32, s as u32);
        for y in 0..s {
            for x in 0..s {
                let g = (((grey[y * s + x] - lo) / span) * 255.0).clamp(0.0, 255.0) as u8;
                let px = match (outline(&truth, s, y, x), outline(&pred, s, y, x)) {
                    (true, true) => Rgb([255, 255, 0]),
                    (true, false) => Rgb([0, 255, 0]),
                    (false, true) => Rgb([255, 0, 0]),
                    _ => Rgb([g, g, g]),
                };
                img.put_pixel(x as u32, y as u32, px);
            }
        }
        let path = dir.join(format!("{}_{}.png", ds.volumes[sl.volume], sl.index + 1));
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, ImageFormat::Png)
            .map_err(|e| Error::format(&path, e.to_string()))?;
        slicewise::output::atomic_write(&path, |w| {
            use std::io::Write;
            w.write_all(bytes.get_ref())
                .map_err(|e| Error::io("write", &path, e))
        })?;
        written.push(path);
    }
    Ok(written)
}
