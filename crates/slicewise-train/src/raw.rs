//! A training volume before preprocessing: where it is read from ([`Source`], [`SourceKind`])
//! and what reading gives ([`RawVolume`]), plus the decoding of one 2-D image file.
//!
//! The readers ([`super::sources`], [`super::coco`]) fill these types and [`super::data`]
//! preprocesses them; none of those modules is imported here, so the three never import each
//! other.

use std::path::{Path, PathBuf};

use slicewise::error::{Error, Result};
use slicewise::volume::{ReadOptions, Volume};

/// One volume to read: its name and how.
#[derive(Debug, Clone)]
pub struct Source {
    /// Volume name.
    pub name: String,
    /// How to read it.
    pub what: SourceKind,
}

/// How a [`Source`] is read.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// A folder of numbered TIFF slices, each with its `_mask` slice (the LGG layout), read by
    /// the engine's folder readers: the volume `slicewise` segments.
    Folder(PathBuf),
    /// Ordered (image, mask) 2-D files decoded one by one: PNG slices, and pairs lying directly
    /// in a data folder.
    Pairs(Vec<(PathBuf, PathBuf)>),
    /// NIfTI image and label volumes.
    Nifti {
        /// Image file.
        image: PathBuf,
        /// Label file.
        label: PathBuf,
    },
    /// COCO images with their polygons (rasterised on reading).
    Coco(Vec<CocoImage>),
}

/// One COCO image and its polygons (pixel coordinates, x y pairs).
#[derive(Debug, Clone)]
pub struct CocoImage {
    /// The image file.
    pub path: PathBuf,
    /// Declared width.
    pub width: usize,
    /// Declared height.
    pub height: usize,
    /// Polygons, each `[x0, y0, x1, y1, ...]`.
    pub polygons: Vec<Vec<f64>>,
}

/// A volume at source resolution: `[c][z][h*w]` plus masks `[z][h*w]`, all slices `h × w`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawVolume {
    /// Volume name.
    pub name: String,
    /// Slice height.
    pub height: usize,
    /// Slice width.
    pub width: usize,
    /// Per source channel, per slice, `h*w` values.
    pub channels: Vec<Vec<Vec<f32>>>,
    /// Per slice, `h*w` class values.
    pub masks: Vec<Vec<u8>>,
}

/// A decoded 2-D image: `h × w × c` interleaved values.
pub struct Image2d {
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Samples per pixel.
    pub channels: usize,
    /// Interleaved values.
    pub data: Vec<f32>,
}

impl RawVolume {
    /// A volume with no slices yet.
    pub fn empty(name: &str) -> RawVolume {
        RawVolume {
            name: name.to_string(),
            height: 0,
            width: 0,
            channels: Vec::new(),
            masks: Vec::new(),
        }
    }

    /// The engine's image volume (`[c, z, y, x]`, z slices) with its binary masks: a mask voxel
    /// is foreground (1) when any of its channels is non-zero. The two must have the same
    /// slices; the error names `mask_source` when they do not.
    pub fn from_volumes(
        name: &str,
        image: &Volume,
        masks: &Volume,
        mask_source: &Path,
    ) -> Result<RawVolume> {
        let [c, z, h, w] = shape(image);
        let [mc, mz, mh, mw] = shape(masks);
        if (mz, mh, mw) != (z, h, w) {
            return Err(Error::format(
                mask_source,
                format!("masks are {mz} slices of {mh}×{mw}, the images {z} of {h}×{w}"),
            ));
        }
        let plane = |v: &Volume, ch: usize, k: usize| -> Vec<f32> {
            v.data
                .index_axis(ndarray::Axis(0), ch)
                .index_axis(ndarray::Axis(0), k)
                .iter()
                .copied()
                .collect()
        };
        let channels = (0..c)
            .map(|ch| (0..z).map(|k| plane(image, ch, k)).collect())
            .collect();
        let masks = (0..z)
            .map(|k| {
                let mut m = vec![0u8; h * w];
                for ch in 0..mc {
                    for (o, v) in m.iter_mut().zip(plane(masks, ch, k)) {
                        *o |= u8::from(v != 0.0);
                    }
                }
                m
            })
            .collect();
        Ok(RawVolume {
            name: name.to_string(),
            height: h,
            width: w,
            channels,
            masks,
        })
    }

    /// Appends one slice (read from `path`) and its mask; the first slice fixes the size and the
    /// channel count, and a later one that differs is an error naming its file.
    pub fn push_slice(&mut self, path: &Path, img: &Image2d, mask: Vec<u8>) -> Result<()> {
        if self.channels.is_empty() {
            self.height = img.height;
            self.width = img.width;
            self.channels = vec![Vec::new(); img.channels];
        }
        if (img.height, img.width, img.channels) != (self.height, self.width, self.channels.len()) {
            return Err(Error::format(
                path,
                "slice size or channels differ within the volume",
            ));
        }
        let c = img.channels;
        for (ch, plane) in self.channels.iter_mut().enumerate() {
            plane.push(img.data.iter().skip(ch).step_by(c).copied().collect());
        }
        self.masks.push(mask);
        Ok(())
    }
}

/// `[c, z, y, x]` of a volume.
fn shape(v: &Volume) -> [usize; 4] {
    let s = v.data.shape();
    [s[0], s[1], s[2], s[3]]
}

/// True for a `.tif`/`.tiff` file name (any case).
pub fn is_tiff(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
}

/// Reads one 2-D image: TIFF through the engine's reader (one page), PNG and JPEG through the
/// `image` crate (the engine reads neither), 8-bit values as stored.
pub fn read_image2d(path: &Path) -> Result<Image2d> {
    if is_tiff(path) {
        return read_tiff2d(path);
    }
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io("open", path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io("read", path, e))?
        .decode()
        .map_err(|e| Error::format(path, e.to_string()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (channels, data) = if img.color().channel_count() == 1 {
        (1, img.to_luma32f().into_raw())
    } else {
        (3, img.to_rgb32f().into_raw())
    };
    // to_*32f scales to [0, 1]; bring 8-bit data back to its stored values.
    let data = data.into_iter().map(|v| v * 255.0).collect();
    Ok(Image2d {
        height: h,
        width: w,
        channels,
        data,
    })
}

/// A single-page TIFF read by the engine, interleaved as [`Image2d`] holds it.
fn read_tiff2d(path: &Path) -> Result<Image2d> {
    let v = slicewise::volume::tiff::read(path, &ReadOptions::default())?;
    let [c, z, h, w] = shape(&v);
    if z != 1 {
        return Err(Error::unsupported(
            path,
            format!("{z} pages where one 2-D image was expected"),
        ));
    }
    let mut data = vec![0f32; c * h * w];
    for (ch, plane) in v.data.outer_iter().enumerate() {
        for (p, &x) in plane.iter().enumerate() {
            data[p * c + ch] = x;
        }
    }
    Ok(Image2d {
        height: h,
        width: w,
        channels: c,
        data,
    })
}
