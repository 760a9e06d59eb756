//! `curves.png`: training curves drawn from `metrics.csv` after every epoch, so an interrupted
//! run has them too. Two panels over the epochs: loss (left, scaled to its largest value) and
//! Dice (right, 0 to 1 with grid lines at 0.25); training in blue, validation in orange, the
//! validation volume Dice in green. No text: the axes are described here and in the README.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

use slicewise::error::{Error, Result};

const W: u32 = 400;
const H: u32 = 300;
const MARGIN: u32 = 20;
/// Training series colour.
pub const TRAIN: Rgb<u8> = Rgb([31, 119, 180]);
/// Validation series colour.
pub const VAL: Rgb<u8> = Rgb([255, 127, 14]);
/// Validation per-volume Dice colour.
pub const VAL_VOLUME: Rgb<u8> = Rgb([44, 160, 44]);

/// Reads the columns `names` of a metrics CSV (header row first) as numbers.
fn columns(csv: &str, names: &[&str]) -> Vec<Vec<f64>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let idx: Vec<Option<usize>> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n))
        .collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    idx.iter()
        .map(|i| {
            rows.iter()
                .map(|r| {
                    i.and_then(|i| r.get(i))
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(f64::NAN)
                })
                .collect()
        })
        .collect()
}

/// Pixel of (epoch index, value) in a panel starting at `x0`, for `n` epochs and values in
/// `[0, vmax]`.
fn to_px(x0: u32, i: usize, n: usize, v: f64, vmax: f64) -> (i64, i64) {
    let pw = (W - 2 * MARGIN) as f64;
    let ph = (H - 2 * MARGIN) as f64;
    let x = x0 as f64
        + if n > 1 {
            i as f64 / (n - 1) as f64 * pw
        } else {
            pw / 2.0
        };
    let y = (H - MARGIN) as f64 - (v / vmax).clamp(0.0, 1.0) * ph;
    (x.round() as i64, y.round() as i64)
}

fn line(img: &mut RgbImage, (mut x0, mut y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        for (ox, oy) in [(0, 0), (0, 1), (1, 0)] {
            let (px, py) = (x0 + ox, y0 + oy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, c);
            }
        }
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

fn series(img: &mut RgbImage, x0: u32, ys: &[f64], vmax: f64, c: Rgb<u8>) {
    let pts: Vec<(i64, i64)> = ys
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| to_px(x0, i, ys.len(), v, vmax))
        .collect();
    match pts.as_slice() {
        [p] => line(img, *p, *p, c),
        _ => pts.windows(2).for_each(|w| line(img, w[0], w[1], c)),
    }
}

/// Renders the curves of a `metrics.csv` text into an image (two panels side by side).
pub fn render(csv: &str) -> RgbImage {
    let cols = columns(
        csv,
        &[
            "train_loss",
            "val_loss",
            "train_dice",
            "val_dice",
            "val_volume_dice",
        ],
    );
    let mut img = RgbImage::from_pixel(2 * W, H, Rgb([255, 255, 255]));
    let grey = Rgb([200, 200, 200]);
    for panel in 0..2 {
        let x0 = panel * W + MARGIN;
        let (l, r) = (x0 as i64, (x0 + W - 2 * MARGIN) as i64);
        let (t, b) = (MARGIN as i64, (H - MARGIN) as i64);
        line(&mut img, (l, b), (r, b), Rgb([0, 0, 0]));
        line(&mut img, (l, t), (l, b), Rgb([0, 0, 0]));
        for q in 1..=4 {
            let y = b - (q as i64 * (b - t)) / 4;
            line(&mut img, (l + 1, y), (r, y), grey);
        }
    }
    let loss_max = cols[0]
        .iter()
        .chain(&cols[1])
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::MIN_POSITIVE, f64::max);
    series(&mut img, MARGIN, &cols[0], loss_max, TRAIN);
    series(&mut img, MARGIN, &cols[1], loss_max, VAL);
    series(&mut img, W + MARGIN, &cols[2], 1.0, TRAIN);
    series(&mut img, W + MARGIN, &cols[3], 1.0, VAL);
    series(&mut img, W + MARGIN, &cols[4], 1.0, VAL_VOLUME);
    img
}

/// Writes `curves.png` for the metrics CSV text, atomically.
pub fn write(csv: &str, path: &Path) -> Result<()> {
    let img = render(csv);
    slicewise::output::atomic_write(path, |w| {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png)
            .map_err(|e| Error::format(path, e.to_string()))?;
        std::io::Write::write_all(w, buf.get_ref()).map_err(|e| Error::io("write", path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_curve_lands_where_its_values_say() {
        let csv = "epoch,train_loss,val_loss,train_dice,val_dice,val_volume_dice\n\
                   1,1.0,1.2,0.0,0.0,0.0\n2,0.5,0.6,1.0,1.0,1.0\n";
        let img = render(csv);
        // Validation volume Dice (drawn last) starts at the bottom-left and ends top-right of
        // the right panel.
        let (x0, y0) = to_px(W + MARGIN, 0, 2, 0.0, 1.0);
        let (x1, y1) = to_px(W + MARGIN, 1, 2, 1.0, 1.0);
        assert_eq!(*img.get_pixel(x0 as u32, y0 as u32), VAL_VOLUME);
        assert_eq!(*img.get_pixel(x1 as u32, y1 as u32), VAL_VOLUME);
        // Validation loss peaks at the top of the left panel.
        let (x, y) = to_px(MARGIN, 0, 2, 1.2, 1.2);
        assert_eq!(*img.get_pixel(x as u32, y as u32), VAL);
        // Nothing is drawn above the plotted range.
        assert_eq!(*img.get_pixel(W + W / 2, 2), Rgb([255, 255, 255]));
    }
}
