//! TIFF writers: multi-page LZW stacks with ImageJ metadata.
//!
//! One page per z slice, LZW-compressed, with an ImageJ ImageDescription
//! (`ImageJ=1.11a images=N slices=Z unit=mm spacing=<z mm>`) on the first page and
//! X/YResolution = pixels per mm on every page, so that slicewise, ImageJ and tifffile
//! (`TiffFile.imagej_metadata`) recover the spacing. TIFF holds no origin or orientation; they are
//! lost. Files over 2 GiB of samples are written as BigTIFF.
//!
//! The encoders need `Write + Seek`: a TIFF's directories point back at data written before
//! them. Encode into a [`std::io::Cursor`] over a `Vec<u8>` for the bytes in memory.

use std::io::{Seek, Write};
use std::path::Path;

use ::tiff::encoder::colortype::{self, ColorType};
use ::tiff::encoder::{
    Compression, Rational, TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard,
};
use ::tiff::tags::{ResolutionUnit, Tag};
use ::tiff::TiffError;
use ndarray::{ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::output::{write_file, STREAM};
use crate::volume::{Geometry, Volume};

/// Writes a mask as a TIFF file (atomically): see [`write_mask_to`].
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    write_file(path, |w| write_mask_to(mask, w))
}

/// Writes a volume as a TIFF file (atomically): see [`write_volume_to`].
pub fn write_volume(path: &Path, volume: &Volume) -> Result<()> {
    write_file(path, |w| write_volume_to(volume, w))
}

/// Encodes a mask as a multi-page LZW TIFF stack into `out`: uint8 grayscale, one page per z
/// slice.
pub fn write_mask_to<W: Write + Seek>(mask: &Mask, out: W) -> Result<()> {
    let (z, h, w) = mask.labels.dim();
    let pages: Vec<Vec<u8>> = (0..z)
        .map(|k| plane(mask.labels.index_axis(Axis(0), k)))
        .collect();
    let desc = imagej_description(z, 1, &mask.geometry);
    write_pages::<colortype::Gray8, _>(out, w, h, &pages, &desc, &mask.geometry)
}

/// Encodes a volume as a multi-page LZW TIFF stack into `out`.
///
/// * One channel: float32 grayscale, one page per z slice.
/// * Three channels whose values are all integers in 0..=255 (e.g. LGG RGB slices): 8-bit RGB
///   pages, one per z slice.
/// * Otherwise: float32 grayscale pages in ImageJ hyperstack order (channel fastest: page
///   `z * C + c`), with `channels=C` and `hyperstack=true` in the description; tifffile reads
///   them as `(Z, C, Y, X)` and slicewise's reader splits them back into channels.
pub fn write_volume_to<W: Write + Seek>(volume: &Volume, out: W) -> Result<()> {
    let shape = volume.data.shape();
    let (c, z, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let g = &volume.geometry;
    if c == 0 || z == 0 || h == 0 || w == 0 {
        return Err(Error::InvalidArgument(format!(
            "cannot write an empty volume {shape:?}"
        )));
    }
    let is_u8 = |v: &f32| *v >= 0.0 && *v <= 255.0 && v.fract() == 0.0;
    if c == 3 && volume.data.iter().all(is_u8) {
        let pages: Vec<Vec<u8>> = (0..z)
            .map(|k| {
                let mut out = Vec::with_capacity(w * h * 3);
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..3 {
                            out.push(volume.data[[ch, k, y, x]] as u8);
                        }
                    }
                }
                out
            })
            .collect();
        let desc = imagej_description(z, 1, g);
        return write_pages::<colortype::RGB8, _>(out, w, h, &pages, &desc, g);
    }
    let mut pages = Vec::with_capacity(z * c);
    for k in 0..z {
        for ch in 0..c {
            let p = volume.data.index_axis(Axis(0), ch);
            pages.push(plane(p.index_axis(Axis(0), k)));
        }
    }
    let desc = imagej_description(z, c, g);
    write_pages::<colortype::Gray32Float, _>(out, w, h, &pages, &desc, g)
}

fn plane<T: Copy>(a: ArrayView2<'_, T>) -> Vec<T> {
    a.iter().copied().collect()
}

/// The ImageJ description for `z` slices of `c` gray channels (c = 1 also for RGB pages).
fn imagej_description(z: usize, c: usize, g: &Geometry) -> String {
    let mut d = format!("ImageJ=1.11a\nimages={}\n", z * c);
    if c > 1 {
        d.push_str(&format!("channels={c}\n"));
    }
    d.push_str(&format!("slices={z}\n"));
    if c > 1 {
        d.push_str("hyperstack=true\nmode=grayscale\n");
    }
    d.push_str(&format!("unit=mm\nspacing={}\nloop=false\n", g.spacing[2]));
    d
}

/// `value` as a TIFF rational with as many significant digits as u32 allows.
fn rational(value: f64) -> Rational {
    if !(value.is_finite() && value > 0.0) {
        return Rational { n: 1, d: 1 };
    }
    let mut d: u32 = 1_000_000;
    while d > 1 && value * d as f64 > u32::MAX as f64 {
        d /= 10;
    }
    let n = (value * d as f64).round().clamp(1.0, u32::MAX as f64) as u32;
    Rational { n, d }
}

fn write_pages<C: ColorType, W: Write + Seek>(
    mut out: W,
    w: usize,
    h: usize,
    pages: &[Vec<C::Inner>],
    desc: &str,
    g: &Geometry,
) -> Result<()>
where
    [C::Inner]: ::tiff::encoder::TiffValue,
{
    let (w32, h32) = match (u32::try_from(w), u32::try_from(h)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "slice {w}x{h} too large for TIFF"
            )))
        }
    };
    let bytes: usize = pages
        .iter()
        .map(|p| std::mem::size_of_val(p.as_slice()))
        .sum();
    let err = |e: TiffError| Error::format(STREAM, format!("writing TIFF: {e}"));
    if bytes > (1usize << 31) {
        let enc = TiffEncoder::new_big(&mut out).map_err(err)?;
        encode::<_, C, TiffKindBig>(enc, w32, h32, pages, desc, g).map_err(err)
    } else {
        let enc = TiffEncoder::new(&mut out).map_err(err)?;
        encode::<_, C, TiffKindStandard>(enc, w32, h32, pages, desc, g).map_err(err)
    }
}

fn encode<W: Write + Seek, C: ColorType, K: TiffKind>(
    enc: TiffEncoder<W, K>,
    w: u32,
    h: u32,
    pages: &[Vec<C::Inner>],
    desc: &str,
    g: &Geometry,
) -> Result<(), TiffError>
where
    [C::Inner]: ::tiff::encoder::TiffValue,
{
    let mut enc = enc.with_compression(Compression::Lzw);
    for (k, data) in pages.iter().enumerate() {
        let mut img = enc.new_image::<C>(w, h)?;
        if k == 0 {
            img.encoder().write_tag(Tag::ImageDescription, desc)?;
        }
        img.resolution_unit(ResolutionUnit::None);
        img.x_resolution(rational(1.0 / g.spacing[0]));
        img.y_resolution(rational(1.0 / g.spacing[1]));
        img.write_data(data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_keep_precision() {
        for v in [1.0 / 0.9375, 1.0 / 3.0, 1000.0, 1e-3] {
            let r = rational(v);
            assert!((r.n as f64 / r.d as f64 / v - 1.0).abs() < 1e-5, "{v}");
        }
    }
}
