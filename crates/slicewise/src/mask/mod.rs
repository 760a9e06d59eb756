//! Label masks: `u8` labels on the grid of the volume they were computed for, what a label means
//! as coded concepts ([`coding`]), and [`dicom_seg`], which reads DICOM Segmentation objects back
//! into masks.
//!
//! Masks sit above volumes: this module uses [`volume`](crate::volume)'s geometry and metadata,
//! never the other way round.

pub mod coding;
pub mod contours;
pub mod dicom_seg;

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::volume::{Geometry, VolumeMeta};

/// One label of a mask (label value 0 is always background).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelInfo {
    /// The label value in the mask (1..=255).
    pub value: u8,
    /// Human-readable name, e.g. "tumour".
    pub name: String,
    /// Display colour, sRGB.
    pub color: [u8; 3],
}

/// A label mask with the geometry of its source volume.
#[derive(Debug, Clone)]
pub struct Mask {
    /// Labels, shape `[z, y, x]` (the source volume's spatial shape); 0 = background.
    pub labels: Array3<u8>,
    /// The source volume's geometry.
    pub geometry: Geometry,
    /// The labels that may occur (from the model), background excluded.
    pub label_info: Vec<LabelInfo>,
    /// The source volume's metadata (for writers that reference the source, such as DICOM SEG).
    pub source: Option<VolumeMeta>,
}

/// Per-label statistics of a mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelStats {
    /// Label value.
    pub value: u8,
    /// Label name ("" when unknown).
    pub name: String,
    /// Number of voxels with this label.
    pub voxels: u64,
    /// Their volume in millilitres.
    pub ml: f64,
}

impl Mask {
    /// A mask of zeros on the given grid.
    pub fn zeros(shape_zyx: [usize; 3], geometry: Geometry) -> Mask {
        Mask {
            labels: Array3::zeros(shape_zyx),
            geometry,
            label_info: Vec::new(),
            source: None,
        }
    }

    /// Voxel count and volume per label, for every label in `label_info` and any other
    /// non-zero value present, in label order.
    pub fn stats(&self) -> Vec<LabelStats> {
        let mut counts = [0u64; 256];
        for &v in self.labels.iter() {
            counts[v as usize] += 1;
        }
        let ml = self.geometry.voxel_volume_ml();
        (1..256usize)
            .filter_map(|v| {
                let info = self.label_info.iter().find(|l| l.value as usize == v);
                if counts[v] == 0 && info.is_none() {
                    return None;
                }
                Some(LabelStats {
                    value: v as u8,
                    name: info.map(|l| l.name.clone()).unwrap_or_default(),
                    voxels: counts[v],
                    ml: counts[v] as f64 * ml,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_voxels_and_millilitres() {
        let mut g = Geometry::identity();
        g.spacing = [2.0, 2.0, 2.5]; // 10 mm³ per voxel
        let mut m = Mask::zeros([2, 3, 4], g);
        m.labels[[0, 0, 0]] = 1;
        m.labels[[1, 2, 3]] = 1;
        m.labels[[1, 1, 1]] = 3;
        m.label_info.push(LabelInfo {
            value: 1,
            name: "tumour".into(),
            color: [255, 0, 0],
        });
        m.label_info.push(LabelInfo {
            value: 2,
            name: "oedema".into(),
            color: [0, 255, 0],
        });
        let s = m.stats();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].value, s[0].voxels), (1, 2));
        assert!((s[0].ml - 0.02).abs() < 1e-12);
        assert_eq!((s[1].value, s[1].voxels), (2, 0));
        assert_eq!((s[2].value, s[2].voxels, s[2].name.as_str()), (3, 1, ""));
    }
}
