//! What the header scan tells about one series without reading its pixels: the facts a listing
//! shows and a model's series selection (`infer::contract::selection`) decides on — modality,
//! image type, orientation, description, series number, MR sequence attributes, slice count.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::plane::normal;

/// One series found under a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    /// SeriesInstanceUID (empty when the files carry none).
    pub uid: String,
    /// SeriesDescription, when present.
    pub description: Option<String>,
    /// Modality, when present.
    pub modality: Option<String>,
    /// Number of slices (frames over all files).
    pub slices: usize,
    /// Number of files.
    pub files: usize,
    /// `[columns, rows, slices]`.
    pub dims: [usize; 3],
    /// The first file of the series (in path order).
    pub first_file: PathBuf,
    /// SeriesNumber, when present.
    #[serde(default)]
    pub number: Option<i64>,
    /// ImageType's values (`ORIGINAL`, `PRIMARY`, `AXIAL`, …), upper case; empty when absent.
    #[serde(default)]
    pub image_type: Vec<String>,
    /// ImageOrientationPatient of the first slice (row cosine, column cosine).
    #[serde(default)]
    pub orientation: Option<[f64; 6]>,
    /// The MR sequence attributes of the first file.
    #[serde(default)]
    pub sequence: SequenceFacts,
}

/// MR acquisition attributes (PS3.3 C.8.3.1): top-level in MR Image objects, from the shared
/// functional groups in enhanced MR ones. Empty for other modalities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SequenceFacts {
    /// ScanningSequence's values (`SE`, `IR`, `GR`, `EP`, `RM`), upper case.
    #[serde(default)]
    pub scanning_sequence: Vec<String>,
    /// SequenceVariant's values (`SK`, `SP`, `MP`, `OSP`, …), upper case.
    #[serde(default)]
    pub sequence_variant: Vec<String>,
    /// RepetitionTime in ms.
    #[serde(default)]
    pub repetition_time: Option<f64>,
    /// EchoTime (EffectiveEchoTime in enhanced objects) in ms.
    #[serde(default)]
    pub echo_time: Option<f64>,
    /// InversionTime (the first of InversionTimes in enhanced objects) in ms.
    #[serde(default)]
    pub inversion_time: Option<f64>,
}

/// The patient-based plane a slice lies in (LPS axes: sagittal ⟂ x, coronal ⟂ y, axial ⟂ z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    /// Normal along the patient's foot–head axis.
    Axial,
    /// Normal along the patient's right–left axis.
    Sagittal,
    /// Normal along the patient's front–back axis.
    Coronal,
}

impl Plane {
    /// The plane's name as a card writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Plane::Axial => "axial",
            Plane::Sagittal => "sagittal",
            Plane::Coronal => "coronal",
        }
    }
}

impl SeriesInfo {
    /// The plane the slices are closest to and the angle in degrees between their normal and
    /// that plane's normal (0 for a pure plane, up to 54.7 for the most oblique); `None` without
    /// an orientation.
    pub fn plane(&self) -> Option<(Plane, f64)> {
        let n = normal(self.orientation.as_ref()?);
        let planes = [
            (Plane::Sagittal, n[0]),
            (Plane::Coronal, n[1]),
            (Plane::Axial, n[2]),
        ];
        let (plane, c) = planes
            .into_iter()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
        Some((plane, c.abs().min(1.0).acos().to_degrees()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_iop(iop: [f64; 6]) -> SeriesInfo {
        SeriesInfo {
            uid: "1".into(),
            description: None,
            modality: None,
            slices: 1,
            files: 1,
            dims: [1, 1, 1],
            first_file: PathBuf::new(),
            number: None,
            image_type: Vec::new(),
            orientation: Some(iop),
            sequence: SequenceFacts::default(),
        }
    }

    #[test]
    fn planes_follow_the_slice_normal() {
        let axial = with_iop([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).plane().unwrap();
        assert_eq!(axial, (Plane::Axial, 0.0));
        let sagittal = with_iop([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]).plane().unwrap();
        assert_eq!(sagittal.0, Plane::Sagittal);
        let coronal = with_iop([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]).plane().unwrap();
        assert_eq!(coronal.0, Plane::Coronal);
        // The shared T1post series: tilted 10.8° from axial.
        let t1post = with_iop([1.0, -4.8e-5, -2.5e-4, 2.0e-10, 0.98228909, -0.18737167]);
        let (p, angle) = t1post.plane().unwrap();
        assert_eq!(p, Plane::Axial);
        assert!((angle - 10.8).abs() < 0.1, "{angle}");
    }
}
