//! TIFF input: single images, multi-page stacks and folders of numbered slices.
//!
//! # Conventions
//! * Every full-resolution page is one z slice (reduced-resolution pages, NewSubfileType bit 0,
//!   are skipped). All pages, and all files of a folder, must have the same size, channel count
//!   and sample format, else [`Error::Format`](crate::Error) names the file and page.
//! * An ImageJ hyperstack with `channels=C` stores its pages channel-fastest; they are split into
//!   `C` channels. Other multi-sample images become channels: RGB gives `["R", "G", "B"]`; alpha
//!   and other extra samples are dropped with a warning.
//! * Values are the stored samples as `f32` (no scaling). 1-bit images give 0/1.
//!   **MinIsWhite** images are returned so that higher = brighter, as a viewer shows them:
//!   unsigned `max - stored` (1-bit: `1 - stored`), float `1 - stored`; signed MinIsWhite is
//!   unsupported.
//! * JPEG-compressed pages (Compression 7) are decoded: grayscale as is, YCbCr converted to RGB
//!   (JFIF full range, as libjpeg and so tifffile do). Palette-colour TIFFs and YCbCr without JPEG
//!   compression are refused with [`Error::Unsupported`](crate::Error) (palettes are not
//!   expanded: a palette image is a picture, not a measurement), and so are compressions the
//!   `tiff` crate does not decode here (Zstandard, LZMA, JPEG 2000, WebP, PNG, LERC, …), by name.
//! * Geometry: spacing from ImageJ metadata (`unit=`, `spacing=` for z, X/YResolution as pixels
//!   per unit) or OME-XML (`PhysicalSizeX/Y/Z` with units), converted to mm; otherwise 1 mm with
//!   the warning "no spacing in file; assumed 1 mm". TIFF carries no position or orientation:
//!   the origin is 0 and the direction the identity (row = +y, column = +x, page = +z in LPS).
//! * LGG folders (`<PATIENT>_<n>.tif` RGB slices): the three channels are pre-contrast, FLAIR and
//!   post-contrast MR (per the data set's README); they are still named `R`, `G`, `B`.

mod codecs;
mod decode;
mod folder;
mod meta;

use std::path::Path;

use ndarray::Array4;

pub use folder::{numbered_slices, slice_pairs, SlicePair};
pub use meta::unit_to_mm;

use super::{Geometry, ReadOptions, SourceFormat, Volume, VolumeMeta};
use crate::error::{Error, Result};
use decode::Stack;

/// Reads a TIFF file (single image or multi-page stack) or a folder of numbered slices
/// (`*_mask.tif` files excluded; see [`slice_pairs`] for the order).
pub fn read(path: &Path, options: &ReadOptions) -> Result<Volume> {
    if path.is_dir() {
        let pairs = slice_pairs(path)?;
        let files: Vec<_> = pairs.into_iter().map(|p| p.image).collect();
        read_files(path, &files, options)
    } else {
        let stack = decode::read_stack(path, options)?;
        to_volume(path, stack)
    }
}

/// Reads the masks (`*_mask.tif`) of a folder of numbered slices as a volume, in the order of
/// their images (slice `k` of the result is the mask of slice `k` of [`read`] on the folder).
/// Fails naming the image when an image has no mask.
pub fn read_mask_folder(dir: &Path, options: &ReadOptions) -> Result<Volume> {
    let pairs = slice_pairs(dir)?;
    let mut files = Vec::with_capacity(pairs.len());
    for p in pairs {
        match p.mask {
            Some(m) => files.push(m),
            None => return Err(Error::format(&p.image, "slice has no *_mask.tif mask")),
        }
    }
    read_files(dir, &files, options)
}

/// True when `dir` directly holds `.tif`/`.tiff` files (masks included, so that a folder of
/// masks only reaches [`read`] and gets its specific error).
pub fn folder_has_tiff(dir: &Path) -> Result<bool> {
    Ok(!folder::tiff_files(dir)?.is_empty())
}

/// Reads slice files in order into one volume; geometry from the first file.
fn read_files(dir: &Path, files: &[std::path::PathBuf], options: &ReadOptions) -> Result<Volume> {
    let Some(first_path) = files.first() else {
        return Err(Error::format(dir, "folder holds no TIFF slices"));
    };
    let mut first = decode::read_stack(first_path, options)?;
    // Bound the whole volume before reading the rest.
    options.check_size(
        dir,
        &[
            first.channels as u64,
            (first.pages as u64).saturating_mul(files.len() as u64),
            first.height as u64,
            first.width as u64,
        ],
    )?;
    first.data.reserve(first.data.len() * (files.len() - 1));
    for f in &files[1..] {
        let s = decode::read_stack(f, options)?;
        if (s.width, s.height, s.channels, s.dtype)
            != (first.width, first.height, first.channels, first.dtype)
        {
            return Err(Error::format(
                f,
                format!(
                    "slice is {}x{} {:?} with {} channel(s) but {} is {}x{} {:?} with {} channel(s)",
                    s.width,
                    s.height,
                    s.dtype,
                    s.channels,
                    first_path.display(),
                    first.width,
                    first.height,
                    first.dtype,
                    first.channels
                ),
            ));
        }
        first.data.extend_from_slice(&s.data);
        first.pages += s.pages;
        for w in s.warnings {
            if !first.warnings.contains(&w) {
                first.warnings.push(w);
            }
        }
    }
    // An ImageJ hyperstack layout makes no sense across files.
    first.description = first.description.filter(|d| {
        !d.trim_start().starts_with("ImageJ=")
            || meta::ImageJ::parse(d).and_then(|i| i.channels).unwrap_or(1) <= 1
    });
    to_volume(dir, first)
}

/// Arranges `[page][c][y][x]` samples as a `[c, z, y, x]` volume with geometry and metadata.
fn to_volume(source: &Path, s: Stack) -> Result<Volume> {
    let (w, h) = (s.width, s.height);
    let mut channels = s.channels;
    let mut z = s.pages;
    let mut warnings = s.warnings;
    // ImageJ hyperstacks: gray pages ordered channel-fastest.
    let ij_channels = s
        .description
        .as_deref()
        .and_then(meta::ImageJ::parse)
        .and_then(|i| i.channels)
        .unwrap_or(1);
    let split = channels == 1 && ij_channels > 1 && z.is_multiple_of(ij_channels);
    if split {
        channels = ij_channels;
        z /= ij_channels;
    } else if ij_channels > 1 && channels == 1 {
        warnings.push(format!(
            "ImageJ channels={ij_channels} does not divide {z} pages; read as one channel"
        ));
    }
    let plane = w * h;
    let data = if split {
        let mut out = vec![0f32; s.data.len()];
        for (p, page) in s.data.chunks_exact(plane).enumerate() {
            let (zz, c) = (p / channels, p % channels);
            let dst = (c * z + zz) * plane;
            out[dst..dst + plane].copy_from_slice(page);
        }
        out
    } else if channels == 1 {
        s.data
    } else {
        let mut out = vec![0f32; s.data.len()];
        for (p, page) in s.data.chunks_exact(plane * channels).enumerate() {
            for (c, chan) in page.chunks_exact(plane).enumerate() {
                let dst = (c * z + p) * plane;
                out[dst..dst + plane].copy_from_slice(chan);
            }
        }
        out
    };
    let (spacing, spacing_warnings) = meta::spacing(
        s.description.as_deref(),
        s.x_resolution,
        s.y_resolution,
        s.resolution_unit,
    );
    warnings.extend(spacing_warnings);
    let mut geometry = Geometry::identity();
    geometry.spacing = spacing;
    let mut meta = VolumeMeta::new(source, SourceFormat::Tiff, s.dtype);
    meta.warnings = warnings;
    if s.rgb && channels == 3 {
        meta.channel_names = vec!["R".into(), "G".into(), "B".into()];
    }
    meta.description = s
        .description
        .filter(|d| !d.trim_start().starts_with("ImageJ=") && !d.contains("<OME") && !d.is_empty());
    let data = Array4::from_shape_vec((channels, z, h, w), data)
        .map_err(|e| Error::format(source, format!("decoded sample count: {e}")))?;
    Ok(Volume {
        data,
        geometry,
        meta,
    })
}
