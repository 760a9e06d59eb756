//! Listing and reading the training sources through the engine's readers: folders of numbered
//! image/`_mask` slices (the LGG layout) and NIfTI pairs (MSD layout); [`read`] reads any
//! [`Source`], COCO through [`super::coco`].
//!
//! A TIFF slice folder is read exactly as `slicewise` reads it for segmentation
//! ([`slicewise::Volume::open`] of the folder, its masks by
//! [`slicewise::volume::tiff::read_mask_folder`]): the same files, paired and ordered by the same
//! rule ([`slicewise::volume::tiff::slice_pairs`]: `_mask` in any case, slices by the last number
//! in the name, zero-padded or not), decoded by the same decoder.

use std::path::{Path, PathBuf};

use super::coco::read_coco;
use super::raw::{is_tiff, read_image2d, RawVolume, Source, SourceKind};
use slicewise::error::{Error, Result};
use slicewise::volume::tiff::{numbered_slices, read_mask_folder};
use slicewise::volume::{ReadOptions, Volume};

/// The file types of image/mask slices: TIFF (the engine's reader) and PNG.
const SLICE_EXTENSIONS: [&str; 3] = ["tif", "tiff", "png"];

/// Reads one source at source resolution (`axis`: the NIfTI slicing axis).
pub fn read(src: &Source, axis: usize) -> Result<RawVolume> {
    match &src.what {
        SourceKind::Folder(dir) => read_folder(&src.name, dir),
        SourceKind::Pairs(pairs) => read_pairs(&src.name, pairs),
        SourceKind::Nifti { image, label } => read_nifti(&src.name, image, label, axis),
        SourceKind::Coco(images) => read_coco(&src.name, images),
    }
}

/// Every sub-folder of `root` whose slices have masks is a volume (in folder-name order); each
/// image/mask pair directly in `root` is a volume of its own (there is no grouping to respect).
/// Sub-folders without any mask, and images in `root` without one, are not training data and
/// are skipped; in a volume's folder every image needs its mask.
pub fn pair_volumes(root: &Path) -> Result<Vec<Source>> {
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(root).map_err(|e| Error::io("list folder", root, e))? {
        let p = e.map_err(|e| Error::io("list folder", root, e))?.path();
        if p.is_dir() {
            dirs.push(p);
        }
    }
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        out.extend(folder_source(&d)?);
    }
    for pair in numbered_slices(root, &SLICE_EXTENSIONS)? {
        let Some(mask) = pair.mask else { continue };
        out.push(Source {
            name: file_stem(&pair.image),
            what: SourceKind::Pairs(vec![(pair.image, mask)]),
        });
    }
    Ok(out)
}

/// The volume of one folder of slices, or none when no slice has a mask. An all-TIFF folder is
/// read by the engine's folder readers; one with PNG slices file by file.
fn folder_source(dir: &Path) -> Result<Option<Source>> {
    let pairs = numbered_slices(dir, &SLICE_EXTENSIONS)?;
    if pairs.iter().all(|p| p.mask.is_none()) {
        return Ok(None);
    }
    let mut files = Vec::with_capacity(pairs.len());
    for p in pairs {
        let Some(mask) = p.mask else {
            return Err(Error::format(
                &p.image,
                "slice has no *_mask file beside it",
            ));
        };
        files.push((p.image, mask));
    }
    let what = if files.iter().all(|(i, m)| is_tiff(i) && is_tiff(m)) {
        SourceKind::Folder(dir.to_path_buf())
    } else {
        SourceKind::Pairs(files)
    };
    Ok(Some(Source {
        name: file_name(dir),
        what,
    }))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into())
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map_or_else(String::new, |n| n.to_string_lossy().into())
}

/// A folder of TIFF slices as the engine reads it: the images as [`Volume::open`] reads the
/// folder, the masks as [`read_mask_folder`] does (foreground: any non-zero sample).
pub fn read_folder(name: &str, dir: &Path) -> Result<RawVolume> {
    let opts = ReadOptions::default();
    let image = Volume::open_with(dir, &opts)?;
    let masks = read_mask_folder(dir, &opts)?;
    RawVolume::from_volumes(name, &image, &masks, dir)
}

/// (image, mask) files decoded one by one (see [`read_image2d`]); any non-zero sample of a mask
/// pixel (grey or RGB) is foreground.
pub fn read_pairs(name: &str, pairs: &[(PathBuf, PathBuf)]) -> Result<RawVolume> {
    let mut vol = RawVolume::empty(name);
    for (ip, mp) in pairs {
        let img = read_image2d(ip)?;
        let mask = read_image2d(mp)?;
        if (mask.height, mask.width) != (img.height, img.width) {
            return Err(Error::format(mp, "mask size differs from its image"));
        }
        let labels = mask
            .data
            .chunks_exact(mask.channels)
            .map(|p| u8::from(p.iter().any(|&v| v != 0.0)))
            .collect();
        vol.push_slice(ip, &img, labels)?;
    }
    Ok(vol)
}

fn nifti_stem(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_str()?;
    name.strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .map(str::to_string)
}

/// MSD layout: `imagesTr/` + `labelsTr/` (or `images/` + `labels/`), matched by file name.
/// Hidden files (`._x.nii.gz` from macOS archives) are skipped.
pub fn nifti_volumes(root: &Path) -> Result<Vec<Source>> {
    let (images, labels) = [("imagesTr", "labelsTr"), ("images", "labels")]
        .iter()
        .map(|(i, l)| (root.join(i), root.join(l)))
        .find(|(i, l)| i.is_dir() && l.is_dir())
        .ok_or_else(|| Error::format(root, "no imagesTr/labelsTr or images/labels folders"))?;
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&images)
        .map_err(|e| Error::io("list folder", &images, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for image in entries {
        let Some(stem) = nifti_stem(&image) else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        let Some(name) = image.file_name() else {
            continue;
        };
        let label = labels.join(name);
        if label.is_file() {
            out.push(Source {
                name: stem,
                what: SourceKind::Nifti { image, label },
            });
        }
    }
    Ok(out)
}

/// Slices a NIfTI image/label pair along `axis` (0 = x, 1 = y, 2 = z).
pub fn read_nifti(name: &str, image: &Path, label: &Path, axis: usize) -> Result<RawVolume> {
    let opts = ReadOptions::default();
    let img = Volume::open_with(image, &opts)?;
    let lab = Volume::open_with(label, &opts)?;
    if img.dims_xyz() != lab.dims_xyz() {
        return Err(Error::format(
            label,
            format!(
                "label grid {:?} differs from the image's {:?}",
                lab.dims_xyz(),
                img.dims_xyz()
            ),
        ));
    }
    let mut vol = RawVolume {
        name: name.to_string(),
        height: 0,
        width: 0,
        channels: vec![Vec::new(); img.channels()],
        masks: Vec::new(),
    };
    for (s, l) in img.slices(axis).zip(lab.slices(axis)) {
        let sh = s.shape();
        (vol.height, vol.width) = (sh[1], sh[2]);
        for (c, plane) in vol.channels.iter_mut().enumerate() {
            plane.push(s.index_axis(ndarray::Axis(0), c).iter().copied().collect());
        }
        vol.masks.push(
            l.index_axis(ndarray::Axis(0), 0)
                .iter()
                .map(|&v| {
                    if v.is_finite() {
                        v.round().clamp(0.0, 255.0) as u8
                    } else {
                        0
                    }
                })
                .collect(),
        );
    }
    Ok(vol)
}
