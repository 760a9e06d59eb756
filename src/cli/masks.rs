//! Reading label masks for `evaluate`: any volume slicewise reads, plus LGG-style patient folders
//! (`<P>_<n>.tif` images next to `<P>_<n>_mask.tif` masks), whose mask slices are the truth.

use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};

use crate::error::{Error, Result};
use crate::volume::{Geometry, ReadOptions, Volume};

/// A mask as read from disk: raw values `[z, y, x]` and geometry.
pub struct MaskVolume {
    /// The file or folder it came from.
    pub path: PathBuf,
    /// Values as stored (labels, or 0/255, or probabilities).
    pub values: Array3<f32>,
    /// Its geometry.
    pub geometry: Geometry,
}

/// Reads a mask: an LGG patient folder's `_mask.tif` slices, or any single-channel volume.
pub fn read(path: &Path) -> Result<MaskVolume> {
    if path.is_dir() {
        let slices = lgg_mask_slices(path)?;
        if !slices.is_empty() {
            return read_lgg(path, &slices);
        }
    }
    let v = Volume::open_with(path, &ReadOptions::default())?;
    if v.channels() != 1 {
        return Err(Error::unsupported(
            path,
            format!("a mask must have one channel, this has {}", v.channels()),
        ));
    }
    Ok(MaskVolume {
        path: path.to_path_buf(),
        values: v.data.index_axis_move(Axis(0), 0),
        geometry: v.geometry,
    })
}

/// The `(n, path)` of every `<P>_<n>_mask.tif` in `dir` that has its image `<P>_<n>.tif` next to
/// it, sorted by `n` (numerically: LGG slice numbers are not zero-padded). Empty when `dir` is
/// not an LGG patient folder.
pub fn lgg_mask_slices(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_suffix("_mask.tif")
            .or_else(|| name.strip_suffix("_mask.tiff"))
        else {
            continue;
        };
        let Some((_, num)) = stem.rsplit_once('_') else {
            continue;
        };
        let Ok(n) = num.parse::<u64>() else {
            continue;
        };
        let has_image = ["tif", "tiff"]
            .iter()
            .any(|ext| dir.join(format!("{stem}.{ext}")).is_file());
        if has_image {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn read_lgg(dir: &Path, slices: &[(u64, PathBuf)]) -> Result<MaskVolume> {
    let mut planes: Vec<(usize, usize, Vec<u8>)> = Vec::with_capacity(slices.len());
    for (_, p) in slices {
        planes.push(read_gray8(p)?);
    }
    let (w, h) = (planes[0].0, planes[0].1);
    if let Some((i, _)) = planes
        .iter()
        .enumerate()
        .find(|(_, pl)| pl.0 != w || pl.1 != h)
    {
        return Err(Error::format(
            &slices[i].1,
            format!(
                "slice is {}×{}, the first slice is {w}×{h}",
                planes[i].0, planes[i].1
            ),
        ));
    }
    ReadOptions::default().check_size(dir, &[planes.len() as u64, h as u64, w as u64])?;
    let mut values = Array3::<f32>::zeros((planes.len(), h, w));
    for (z, (_, _, px)) in planes.iter().enumerate() {
        for (dst, &src) in values.index_axis_mut(Axis(0), z).iter_mut().zip(px) {
            *dst = f32::from(src);
        }
    }
    Ok(MaskVolume {
        path: dir.to_path_buf(),
        values,
        // LGG slices carry no geometry: 1 mm, identity (what the TIFF reader assumes too).
        geometry: Geometry::identity(),
    })
}

/// Decodes one single-channel 8-bit TIFF page.
fn read_gray8(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    use tiff::decoder::{Decoder, DecodingResult};
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: tiff::TiffError| Error::format(path, format!("TIFF: {e}"));
    let mut d = Decoder::new(std::io::BufReader::new(f)).map_err(bad)?;
    let (w, h) = d.dimensions().map_err(bad)?;
    let ct = d.colortype().map_err(bad)?;
    if ct != tiff::ColorType::Gray(8) {
        return Err(Error::unsupported(
            path,
            format!("mask slice must be 8-bit grayscale, found {ct:?}"),
        ));
    }
    ReadOptions::default().check_size(path, &[u64::from(w), u64::from(h)])?;
    match d.read_image().map_err(bad)? {
        DecodingResult::U8(v) if v.len() == w as usize * h as usize => {
            Ok((w as usize, h as usize, v))
        }
        _ => Err(Error::format(path, "unexpected sample layout")),
    }
}
