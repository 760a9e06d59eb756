//! What a label means as coded concepts (DICOM PS3.16 codes, SNOMED CT first): the [`Code`]
//! triple, a segment's [`SegmentCoding`] (category, type, modifier, anatomic region) and a
//! model card's per-label [`LabelCodes`]. The SEG writer puts them in each segment description,
//! the SEG reader reads them back, and the model contract carries them
//! (`slicewise.label_codes`). They sit with the labels, below both the formats and the contract.

use serde::{Deserialize, Serialize};

/// A coded concept (Code Value, Coding Scheme Designator, Code Meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// Code Value, e.g. `"108369006"`.
    pub value: String,
    /// Coding Scheme Designator, e.g. `"SCT"` (SNOMED CT) or `"DCM"`.
    pub scheme: String,
    /// Code Meaning, e.g. `"Neoplasm"`.
    pub meaning: String,
}

impl Code {
    /// A code from its three parts.
    pub fn new(value: &str, scheme: &str, meaning: &str) -> Code {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }

    /// Checks that the code fits a DICOM Code Sequence item: CodeValue and
    /// CodingSchemeDesignator are SH (1–16 characters), CodeMeaning LO (1–64), none holding a
    /// backslash (the value separator). A longer CodeValue would need LongCodeValue, which
    /// slicewise does not write.
    pub fn check(&self) -> std::result::Result<(), String> {
        let fits = |what: &str, s: &str, max: usize| {
            let n = s.trim().chars().count();
            if n == 0 || n > max || s.contains('\\') {
                Err(format!(
                    "code {:?}: {what} `{s}` must be 1 to {max} characters without a backslash",
                    self.meaning
                ))
            } else {
                Ok(())
            }
        };
        fits("value", &self.value, 16)?;
        fits("scheme", &self.scheme, 16)?;
        fits("meaning", &self.meaning, 64)
    }

    /// SNOMED CT 49755003 "Morphologically Abnormal Structure" (CID 7150 segmentation category),
    /// the default category for a lesion/tumour label.
    pub fn morphologically_abnormal_structure() -> Code {
        Code::new("49755003", "SCT", "Morphologically Abnormal Structure")
    }

    /// SNOMED CT 108369006 "Neoplasm" (CID 7151 segmentation property type), the default type.
    pub fn neoplasm() -> Code {
        Code::new("108369006", "SCT", "Neoplasm")
    }

    /// SNOMED CT 85756007 "Tissue" (segmentation category for anatomy/tissue labels).
    pub fn tissue() -> Code {
        Code::new("85756007", "SCT", "Tissue")
    }

    /// DCM 125040 "Background" (category and type of a label map's background segment).
    pub fn background() -> Code {
        Code::new("125040", "DCM", "Background")
    }

    /// DCM 113076 "Segmentation" (derivation code of a segmentation frame).
    pub fn segmentation_derivation() -> Code {
        Code::new("113076", "DCM", "Segmentation")
    }

    /// DCM 121322 "Source image for image processing operation" (purpose of reference).
    pub fn source_image_for_processing() -> Code {
        Code::new(
            "121322",
            "DCM",
            "Source image for image processing operation",
        )
    }

    /// SNOMED CT 129465004 "Artificial Intelligence" (CID 7162 algorithm family, as in highdicom
    /// and dcmqi examples for AI output).
    pub fn artificial_intelligence() -> Code {
        Code::new("129465004", "SCT", "Artificial Intelligence")
    }
}

/// The coded meaning of one segment: what the label is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCoding {
    /// SegmentedPropertyCategoryCodeSequence (CID 7150).
    pub category: Code,
    /// SegmentedPropertyTypeCodeSequence (CID 7151).
    pub property_type: Code,
    /// Optional SegmentedPropertyTypeModifierCodeSequence, nested in the type's item, e.g.
    /// SNOMED CT 255549009 "Anterior" (CID 2 anatomic modifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_type_modifier: Option<Code>,
    /// Optional AnatomicRegionSequence (CID 4), e.g. SNOMED CT 12738006 "Brain".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anatomic_region: Option<Code>,
}

impl Default for SegmentCoding {
    /// Category "Morphologically Abnormal Structure", type "Neoplasm": a tumour/lesion label.
    fn default() -> Self {
        SegmentCoding {
            category: Code::morphologically_abnormal_structure(),
            property_type: Code::neoplasm(),
            property_type_modifier: None,
            anatomic_region: None,
        }
    }
}

/// The coded meaning of one label of a model, as its card declares it (`slicewise.label_codes`:
/// a JSON array of these): the label's value and the codes of its segment description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelCodes {
    /// The label value (one of the model's labels).
    pub value: u8,
    /// Segmented property category (CID 7150), e.g. SCT 91723000 "Anatomical Structure".
    pub category: Code,
    /// Segmented property type (CID 7151), e.g. SCT 5366008 "Hippocampus".
    pub property_type: Code,
    /// Modifier of the type, e.g. SCT 255549009 "Anterior" (CID 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_type_modifier: Option<Code>,
    /// Anatomic region (CID 4), e.g. SCT 12738006 "Brain".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anatomic_region: Option<Code>,
}

impl LabelCodes {
    /// The segment coding these codes give.
    pub fn coding(&self) -> SegmentCoding {
        SegmentCoding {
            category: self.category.clone(),
            property_type: self.property_type.clone(),
            property_type_modifier: self.property_type_modifier.clone(),
            anatomic_region: self.anatomic_region.clone(),
        }
    }

    /// Checks every code (see [`Code::check`]).
    pub fn check(&self) -> std::result::Result<(), String> {
        let label = self.value;
        [
            Some(&self.category),
            Some(&self.property_type),
            self.property_type_modifier.as_ref(),
            self.anatomic_region.as_ref(),
        ]
        .into_iter()
        .flatten()
        .try_for_each(|c| c.check().map_err(|m| format!("label {label}: {m}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_do_not_fit_dicom_are_refused() {
        assert!(Code::neoplasm().check().is_ok());
        for bad in [
            Code::new("", "SCT", "Empty"),
            Code::new("12345678901234567", "SCT", "Too long a value"),
            Code::new("1", "SCT", &"m".repeat(65)),
            Code::new("1\\2", "SCT", "Two values"),
            Code::new("1", " ", "No scheme"),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_codes_read_with_and_without_the_optional_codes() {
        let full: LabelCodes = serde_json::from_str(
            r#"{"value":2,
                "category":{"value":"91723000","scheme":"SCT","meaning":"Anatomical Structure"},
                "property_type":{"value":"5366008","scheme":"SCT","meaning":"Hippocampus"},
                "property_type_modifier":{"value":"255551008","scheme":"SCT","meaning":"Posterior"}}"#,
        )
        .unwrap();
        assert_eq!(full.coding().property_type.value, "5366008");
        assert_eq!(
            full.coding().property_type_modifier.unwrap().meaning,
            "Posterior"
        );
        assert_eq!(full.anatomic_region, None);
        // A misspelt key is an error, not a silently missing code.
        let typo = r#"{"value":1,
            "category":{"value":"1","scheme":"SCT","meaning":"a"},
            "property_type":{"value":"2","scheme":"SCT","meaning":"b"},
            "anatomical_region":{"value":"3","scheme":"SCT","meaning":"c"}}"#;
        assert!(serde_json::from_str::<LabelCodes>(typo).is_err());
    }
}
