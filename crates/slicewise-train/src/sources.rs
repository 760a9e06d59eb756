//! NIfTI (MSD layout) and COCO-polygon training sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::data::{read_image2d, RawVolume, Source, SourceKind};
use slicewise::error::{Error, Result};
use slicewise::volume::{ReadOptions, Volume};

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

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImageEntry>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
}

#[derive(Deserialize)]
struct CocoImageEntry {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    #[serde(default)]
    segmentation: serde_json::Value,
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

/// The source an augmented Roboflow export made a file from: `63_jpg.rf.<hash>.jpg` → `63`.
fn source_name(file: &str) -> String {
    match file.find(".rf.") {
        Some(i) => file[..i]
            .trim_end_matches("_jpg")
            .trim_end_matches("_png")
            .to_string(),
        None => Path::new(file)
            .file_stem()
            .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into()),
    }
}

/// Every `_annotations.coco.json` (or `*.json`) in `root` and its sub-folders. Images are grouped
/// by their source image, so augmented copies of one image never straddle the split.
pub fn coco_volumes(root: &Path) -> Result<Vec<Source>> {
    let mut jsons = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    for d in &dirs {
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::io("list folder", d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        found.sort();
        jsons.extend(found);
    }
    let mut groups: BTreeMap<String, Vec<CocoImage>> = BTreeMap::new();
    for j in jsons {
        let text = std::fs::read_to_string(&j).map_err(|e| Error::io("read", &j, e))?;
        let file: CocoFile =
            serde_json::from_str(&text).map_err(|e| Error::format(&j, e.to_string()))?;
        let dir = j.parent().unwrap_or(root);
        let mut polys: BTreeMap<u64, Vec<Vec<f64>>> = BTreeMap::new();
        for a in &file.annotations {
            // Polygon lists only; RLE (iscrowd) segmentations are objects and are skipped.
            if let Some(list) = a.segmentation.as_array() {
                for p in list {
                    if let Some(coords) = p.as_array() {
                        let v: Vec<f64> = coords.iter().filter_map(|c| c.as_f64()).collect();
                        if v.len() >= 6 {
                            polys.entry(a.image_id).or_default().push(v);
                        }
                    }
                }
            }
        }
        for im in file.images {
            let path = dir.join(&im.file_name);
            if !path.is_file() {
                continue;
            }
            groups
                .entry(source_name(&im.file_name))
                .or_default()
                .push(CocoImage {
                    path,
                    width: im.width,
                    height: im.height,
                    polygons: polys.remove(&im.id).unwrap_or_default(),
                });
        }
    }
    Ok(groups
        .into_iter()
        .map(|(name, images)| Source {
            name,
            what: SourceKind::Coco(images),
        })
        .collect())
}

/// Even-odd fill of polygons at pixel centres.
pub fn rasterize(polygons: &[Vec<f64>], height: usize, width: usize) -> Vec<u8> {
    let mut mask = vec![0u8; height * width];
    for poly in polygons {
        let pts: Vec<(f64, f64)> = poly.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        for y in 0..height {
            let cy = y as f64 + 0.5;
            let mut xs = Vec::new();
            for k in 0..pts.len() {
                let (a, b) = (pts[k], pts[(k + 1) % pts.len()]);
                if (a.1 <= cy) != (b.1 <= cy) {
                    xs.push(a.0 + (cy - a.1) * (b.0 - a.0) / (b.1 - a.1));
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
                // Centres in [left, right): the even-odd rule counting crossings to the right.
                let x1 = (pair[1] - 0.5).ceil() - 1.0;
                if x1 < 0.0 {
                    continue;
                }
                for x in x0..=(x1 as usize).min(width.saturating_sub(1)) {
                    mask[y * width + x] = 1;
                }
            }
        }
    }
    mask
}

/// Decodes the images of one COCO group and rasterises their polygons.
pub fn read_coco(name: &str, images: &[CocoImage]) -> Result<RawVolume> {
    let mut vol = RawVolume::empty(name);
    for im in images {
        let img = read_image2d(&im.path)?;
        if (img.height, img.width) != (im.height, im.width) {
            return Err(Error::format(
                &im.path,
                "image size differs from the COCO entry",
            ));
        }
        let mask = rasterize(&im.polygons, img.height, img.width);
        vol.push_slice(&im.path, &img, mask)?;
    }
    Ok(vol)
}
