//! COCO training sources: the images of a COCO JSON grouped by their source image, and their
//! polygons rasterised into masks (the engine reads no COCO, so the rasteriser is the
//! trainer's; the images are decoded by [`read_image2d`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::raw::{read_image2d, CocoImage, RawVolume, Source, SourceKind};
use slicewise::error::{Error, Result};

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
