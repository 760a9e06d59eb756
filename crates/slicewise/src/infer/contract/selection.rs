//! Series selection (`slicewise.series_selection`): the rules a model declares for the DICOM
//! series it is made for, and their evaluation over a series' header facts
//! ([`SeriesInfo`], from the header scan; no pixel is read).
//!
//! In the spirit of MONAI Deploy's series selector: a JSON object of conditions, every one of
//! which a series must meet, plus `any_of`, alternatives of which at least one must hold (each
//! an object of the same kind, with an optional `name`). For example the bundled tumour model:
//!
//! ```json
//! {"modality": ["MR"], "image_type": {"none": ["LOCALIZER"]},
//!  "orientation": {"planes": ["axial"], "tolerance_deg": 30}, "min_slices": 10,
//!  "any_of": [
//!    {"name": "FLAIR by description", "description": {"include": ["flair"]}},
//!    {"name": "FLAIR by sequence", "scanning_sequence": {"any": ["IR"]},
//!     "inversion_time_ms": {"min": 1500}}]}
//! ```
//!
//! | condition | meets it when |
//! |---|---|
//! | `modality` | Modality is one of the list (case-insensitive) |
//! | `image_type` | ImageType holds `all` of its values, at least one of `any`, `none` of `none` |
//! | `orientation` | the slices lie in one of `planes` (`axial`, `sagittal`, `coronal`), their normal within `tolerance_deg` (default 30) of the plane's |
//! | `min_slices` | the series has at least this many slices |
//! | `description` | SeriesDescription matches one of the `include` regular expressions (when any) and none of `exclude`; case-insensitive |
//! | `scanning_sequence`, `sequence_variant` | the MR attribute's values, as `image_type` |
//! | `repetition_time_ms`, `echo_time_ms`, `inversion_time_ms` | the MR time lies in `{"min", "max"}` (inclusive; either may be left out) |
//!
//! An attribute the series lacks fails every condition that asks about it, except `none` lists
//! and `exclude` patterns. The evaluation names the first condition that failed, in words
//! (`Modality CT not in [MR]`). A model without the key takes every series. Rules apply to DICOM
//! series only: NIfTI and TIFF inputs carry no such facts and are always taken.

use std::fmt::Write;
use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::volume::dicom::{self, Plane, SeriesInfo};

/// The rules of `slicewise.series_selection` (or of one `any_of` alternative).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesRules {
    /// A name for an `any_of` alternative, used in the reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Modalities accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modality: Vec<String>,
    /// ImageType values required / refused.
    #[serde(default, skip_serializing_if = "ValueSet::is_empty")]
    pub image_type: ValueSet,
    /// Slice planes accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<OrientationRule>,
    /// Fewest slices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_slices: Option<usize>,
    /// SeriesDescription patterns.
    #[serde(default, skip_serializing_if = "Patterns::is_empty")]
    pub description: Patterns,
    /// ScanningSequence values required / refused.
    #[serde(default, skip_serializing_if = "ValueSet::is_empty")]
    pub scanning_sequence: ValueSet,
    /// SequenceVariant values required / refused.
    #[serde(default, skip_serializing_if = "ValueSet::is_empty")]
    pub sequence_variant: ValueSet,
    /// RepetitionTime range, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_time_ms: Option<Range>,
    /// EchoTime range, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_time_ms: Option<Range>,
    /// InversionTime range, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inversion_time_ms: Option<Range>,
    /// Alternatives, at least one of which must hold (when any are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<SeriesRules>,
}

/// Conditions on a multi-valued code string (ImageType, ScanningSequence, SequenceVariant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSet {
    /// Every one of these must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<String>,
    /// At least one of these must be present (when any are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<String>,
    /// None of these may be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub none: Vec<String>,
}

impl ValueSet {
    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.none.is_empty()
    }
}

/// SeriesDescription regular expressions (case-insensitive, matched anywhere in the text).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patterns {
    /// One of these must match (when any are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// None of these may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl Patterns {
    fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// Slice planes accepted, with the tilt allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrientationRule {
    /// The planes accepted.
    pub planes: Vec<Plane>,
    /// Largest angle in degrees between the slice normal and the plane's normal.
    #[serde(default = "default_tolerance")]
    pub tolerance_deg: f64,
}

fn default_tolerance() -> f64 {
    30.0
}

/// An inclusive range; a bound left out does not limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest value accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest value accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The outcome of a series' evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The series meets the rules.
    Selected,
    /// It does not: the first condition that failed, in words.
    NotSelected(String),
}

/// A failed condition's reason.
type Check = std::result::Result<(), String>;

/// One series of a folder and whether a model takes it: what [`select_series`] lists (the C
/// ABI's `slicewise_select_series` gives it as JSON, the series' facts flattened in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesVerdict {
    /// The series' header facts.
    #[serde(flatten)]
    pub series: SeriesInfo,
    /// Whether the rules take it.
    pub selected: bool,
    /// Why not (the first condition it failed), for a series not selected.
    pub reason: Option<String>,
}

/// The DICOM series of a file, folder or folder tree (headers only, no pixel read), each with
/// whether `rules` take it; without rules every series is taken.
pub fn select_series(path: &Path, rules: Option<&SeriesRules>) -> Result<Vec<SeriesVerdict>> {
    Ok(dicom::list_series(path)?
        .into_iter()
        .map(|series| {
            let verdict = rules.map_or(Selection::Selected, |r| r.evaluate(&series));
            let reason = match verdict {
                Selection::Selected => None,
                Selection::NotSelected(why) => Some(why),
            };
            SeriesVerdict {
                selected: reason.is_none(),
                reason,
                series,
            }
        })
        .collect())
}

impl SeriesRules {
    /// Reads the rules from the key's JSON text, checking every pattern and range.
    pub fn from_json(text: &str) -> std::result::Result<SeriesRules, String> {
        let rules: SeriesRules = serde_json::from_str(text)
            .map_err(|e| format!("series_selection is not understood: {e}"))?;
        rules.validate()?;
        Ok(rules)
    }

    /// The rules as the key's compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks that every pattern compiles, every range is ordered and every tolerance is an
    /// angle, here and in the alternatives.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for p in self
            .description
            .include
            .iter()
            .chain(&self.description.exclude)
        {
            pattern(p)?;
        }
        for (what, r) in self.ranges() {
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    return Err(format!(
                        "series_selection {what}: min {lo} exceeds max {hi}"
                    ));
                }
            }
        }
        if let Some(o) = &self.orientation {
            if !(0.0..=90.0).contains(&o.tolerance_deg) || o.planes.is_empty() {
                return Err(
                    "series_selection orientation needs planes and a tolerance_deg in 0..90".into(),
                );
            }
        }
        self.any_of.iter().try_for_each(SeriesRules::validate)
    }

    /// Whether `series` meets the rules, and if not the first condition it failed.
    pub fn evaluate(&self, series: &SeriesInfo) -> Selection {
        match self.check(series) {
            Ok(()) => Selection::Selected,
            Err(why) => Selection::NotSelected(why),
        }
    }

    fn ranges(&self) -> [(&'static str, &Range); 3] {
        const NONE: &Range = &Range {
            min: None,
            max: None,
        };
        [
            (
                "repetition_time_ms",
                self.repetition_time_ms.as_ref().unwrap_or(NONE),
            ),
            ("echo_time_ms", self.echo_time_ms.as_ref().unwrap_or(NONE)),
            (
                "inversion_time_ms",
                self.inversion_time_ms.as_ref().unwrap_or(NONE),
            ),
        ]
    }

    fn check(&self, s: &SeriesInfo) -> Check {
        check_modality(&self.modality, s.modality.as_deref())?;
        check_values("ImageType", &self.image_type, &s.image_type)?;
        if let Some(o) = &self.orientation {
            check_orientation(o, s)?;
        }
        if let Some(n) = self.min_slices {
            if s.slices < n {
                return Err(format!("{} slices, fewer than {n}", s.slices));
            }
        }
        check_description(&self.description, s.description.as_deref())?;
        let q = &s.sequence;
        check_values(
            "ScanningSequence",
            &self.scanning_sequence,
            &q.scanning_sequence,
        )?;
        check_values(
            "SequenceVariant",
            &self.sequence_variant,
            &q.sequence_variant,
        )?;
        check_range(
            "RepetitionTime",
            self.repetition_time_ms.as_ref(),
            q.repetition_time,
        )?;
        check_range("EchoTime", self.echo_time_ms.as_ref(), q.echo_time)?;
        check_range(
            "InversionTime",
            self.inversion_time_ms.as_ref(),
            q.inversion_time,
        )?;
        self.check_alternatives(s)
    }

    /// At least one alternative holds; else every alternative's reason, by name.
    fn check_alternatives(&self, s: &SeriesInfo) -> Check {
        if self.any_of.is_empty() {
            return Ok(());
        }
        let mut why = String::from("none of the alternatives holds: ");
        for (i, alt) in self.any_of.iter().enumerate() {
            match alt.check(s) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let name = alt.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
                    let sep = if i == 0 { "" } else { "; " };
                    let _ = write!(why, "{sep}{name}: {e}");
                }
            }
        }
        Err(why)
    }
}

fn pattern(p: &str) -> std::result::Result<Regex, String> {
    RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            format!("series_selection description pattern /{p}/ is not a regular expression: {e}")
        })
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

fn check_modality(accepted: &[String], modality: Option<&str>) -> Check {
    if accepted.is_empty() {
        return Ok(());
    }
    match modality {
        Some(m) if accepted.iter().any(|a| a.eq_ignore_ascii_case(m)) => Ok(()),
        Some(m) => Err(format!("Modality {m} not in {}", list(accepted))),
        None => Err(format!("no Modality (wanted one of {})", list(accepted))),
    }
}

fn check_values(attr: &str, rule: &ValueSet, values: &[String]) -> Check {
    let has = |v: &String| values.iter().any(|x| x.eq_ignore_ascii_case(v));
    let shown = if values.is_empty() {
        format!("no {attr}")
    } else {
        format!("{attr} {}", values.join("\\"))
    };
    if let Some(v) = rule.none.iter().find(|v| has(v)) {
        return Err(format!("{shown} contains {v}"));
    }
    if let Some(v) = rule.all.iter().find(|v| !has(v)) {
        return Err(format!("{shown} lacks {v}"));
    }
    if !rule.any.is_empty() && !rule.any.iter().any(has) {
        return Err(format!("{shown} holds none of {}", list(&rule.any)));
    }
    Ok(())
}

fn check_orientation(rule: &OrientationRule, s: &SeriesInfo) -> Check {
    let names: Vec<String> = rule.planes.iter().map(|p| p.as_str().to_string()).collect();
    let Some((plane, angle)) = s.plane() else {
        return Err(format!(
            "no ImageOrientationPatient (wanted {})",
            list(&names)
        ));
    };
    if !rule.planes.contains(&plane) {
        return Err(format!(
            "orientation {} not in {}",
            plane.as_str(),
            list(&names)
        ));
    }
    if angle > rule.tolerance_deg {
        return Err(format!(
            "orientation oblique: {angle:.1}° from {}, more than {}°",
            plane.as_str(),
            rule.tolerance_deg
        ));
    }
    Ok(())
}

fn check_description(rule: &Patterns, description: Option<&str>) -> Check {
    if rule.is_empty() {
        return Ok(());
    }
    let shown = match description {
        Some(d) => format!("SeriesDescription '{d}'"),
        None => "no SeriesDescription".to_string(),
    };
    if let Some(text) = description {
        for p in &rule.exclude {
            if pattern(p)?.is_match(text) {
                return Err(format!("{shown} matches /{p}/i"));
            }
        }
        for p in &rule.include {
            if pattern(p)?.is_match(text) {
                return Ok(());
            }
        }
    }
    if rule.include.is_empty() {
        return Ok(());
    }
    let pats: Vec<String> = rule.include.iter().map(|p| format!("/{p}/i")).collect();
    Err(match pats.as_slice() {
        [one] => format!("{shown} does not match {one}"),
        _ => format!("{shown} matches none of {}", pats.join(", ")),
    })
}

fn check_range(attr: &str, range: Option<&Range>, value: Option<f64>) -> Check {
    let Some(r) = range else {
        return Ok(());
    };
    let bounds = match (r.min, r.max) {
        (Some(lo), Some(hi)) => format!("{lo}–{hi} ms"),
        (Some(lo), None) => format!("≥ {lo} ms"),
        (None, Some(hi)) => format!("≤ {hi} ms"),
        (None, None) => return Ok(()),
    };
    let Some(v) = value else {
        return Err(format!("no {attr} (wanted {bounds})"));
    };
    if r.min.is_some_and(|lo| v < lo) || r.max.is_some_and(|hi| v > hi) {
        return Err(format!("{attr} {v} ms not {bounds}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::volume::dicom::SequenceFacts;

    /// The shared T1post series' facts (Study3/11-T1post-18670, read with pydicom).
    fn t1post() -> SeriesInfo {
        SeriesInfo {
            uid: "1.2.3".into(),
            description: Some("T1post".into()),
            modality: Some("MR".into()),
            slices: 22,
            files: 22,
            dims: [280, 320, 22],
            first_file: PathBuf::new(),
            number: Some(11),
            image_type: ["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"]
                .map(String::from)
                .to_vec(),
            orientation: Some([1.0, -4.8e-5, -2.5e-4, 2.0e-10, 0.98228909, -0.18737167]),
            sequence: SequenceFacts {
                scanning_sequence: vec!["SE".into()],
                sequence_variant: vec!["SP".into(), "OSP".into()],
                repetition_time: Some(500.0),
                echo_time: Some(9.5),
                inversion_time: None,
            },
        }
    }

    fn rules(json: &str) -> SeriesRules {
        SeriesRules::from_json(json).unwrap()
    }

    fn reason(r: &SeriesRules, s: &SeriesInfo) -> String {
        match r.evaluate(s) {
            Selection::NotSelected(why) => why,
            Selection::Selected => panic!("selected by {r:?}"),
        }
    }

    #[test]
    fn each_condition_names_what_failed() {
        let s = t1post();
        let cases = [
            (r#"{"modality":["CT"]}"#, "Modality MR not in [CT]"),
            (
                r#"{"image_type":{"none":["DERIVED","NORM"]}}"#,
                "ImageType ORIGINAL\\PRIMARY\\M\\NORM\\DIS2D contains NORM",
            ),
            (
                r#"{"image_type":{"all":["ORIGINAL","AXIAL"]}}"#,
                "ImageType ORIGINAL\\PRIMARY\\M\\NORM\\DIS2D lacks AXIAL",
            ),
            (
                r#"{"orientation":{"planes":["sagittal","coronal"]}}"#,
                "orientation axial not in [sagittal, coronal]",
            ),
            (
                r#"{"orientation":{"planes":["axial"],"tolerance_deg":5}}"#,
                "orientation oblique: 10.8° from axial, more than 5°",
            ),
            (r#"{"min_slices":30}"#, "22 slices, fewer than 30"),
            (
                r#"{"description":{"include":["flair"]}}"#,
                "SeriesDescription 'T1post' does not match /flair/i",
            ),
            (
                r#"{"description":{"exclude":["POST"]}}"#,
                "SeriesDescription 'T1post' matches /POST/i",
            ),
            (
                r#"{"scanning_sequence":{"any":["IR"]}}"#,
                "ScanningSequence SE holds none of [IR]",
            ),
            (
                r#"{"repetition_time_ms":{"min":2000}}"#,
                "RepetitionTime 500 ms not ≥ 2000 ms",
            ),
            (
                r#"{"inversion_time_ms":{"min":1500}}"#,
                "no InversionTime (wanted ≥ 1500 ms)",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(reason(&rules(json), &s), want, "{json}");
        }
    }

    #[test]
    fn met_conditions_select_and_alternatives_need_one() {
        let s = t1post();
        let t1 = rules(
            r#"{"modality":["mr"],"image_type":{"none":["LOCALIZER"]},
                "orientation":{"planes":["axial"]},"min_slices":10,
                "any_of":[{"name":"T1 by description","description":{"include":["(^|[^a-z0-9])t1([^0-9]|$)"]}},
                          {"name":"T1 by timing","repetition_time_ms":{"max":1000},"echo_time_ms":{"max":30}}]}"#,
        );
        assert_eq!(t1.evaluate(&s), Selection::Selected);
        let mut unnamed = s.clone();
        unnamed.description = None;
        assert_eq!(t1.evaluate(&unnamed), Selection::Selected, "by timing");
        let flair = rules(
            r#"{"any_of":[{"name":"FLAIR by description","description":{"include":["flair","tirm"]}},
                          {"name":"FLAIR by sequence","scanning_sequence":{"any":["IR"]},"inversion_time_ms":{"min":1500}}]}"#,
        );
        assert_eq!(
            reason(&flair, &s),
            "none of the alternatives holds: FLAIR by description: SeriesDescription 'T1post' \
             matches none of /flair/i, /tirm/i; FLAIR by sequence: ScanningSequence SE holds none \
             of [IR]"
        );
        let mut fl = s.clone();
        fl.description = Some("AX T2 FLAIR".into());
        assert_eq!(flair.evaluate(&fl), Selection::Selected);
    }

    #[test]
    fn missing_attributes_fail_what_asks_for_them_only() {
        let mut s = t1post();
        s.modality = None;
        s.image_type.clear();
        s.orientation = None;
        s.description = None;
        assert_eq!(
            reason(&rules(r#"{"modality":["MR"]}"#), &s),
            "no Modality (wanted one of [MR])"
        );
        assert_eq!(
            reason(&rules(r#"{"orientation":{"planes":["axial"]}}"#), &s),
            "no ImageOrientationPatient (wanted [axial])"
        );
        assert_eq!(
            reason(&rules(r#"{"description":{"include":[".*"]}}"#), &s),
            "no SeriesDescription does not match /.*/i"
        );
        let lenient =
            rules(r#"{"image_type":{"none":["DERIVED"]},"description":{"exclude":["x"]}}"#);
        assert_eq!(lenient.evaluate(&s), Selection::Selected);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_problem() {
        for (json, want) in [
            (r#"{"modality":"MR"}"#, "not understood"),
            (r#"{"modalty":["MR"]}"#, "unknown field `modalty`"),
            (
                r#"{"description":{"include":["("]}}"#,
                "/(/ is not a regular expression",
            ),
            (
                r#"{"echo_time_ms":{"min":50,"max":10}}"#,
                "min 50 exceeds max 10",
            ),
            (
                r#"{"any_of":[{"orientation":{"planes":["axial"],"tolerance_deg":120}}]}"#,
                "tolerance_deg",
            ),
            (
                r#"{"orientation":{"planes":["oblique"]}}"#,
                "unknown variant",
            ),
        ] {
            let e = SeriesRules::from_json(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn rules_round_trip_through_their_json() {
        let r = rules(
            r#"{"modality":["MR"],"orientation":{"planes":["axial"]},
                "any_of":[{"name":"a","echo_time_ms":{"max":30}}]}"#,
        );
        assert_eq!(SeriesRules::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(
            r.to_json(),
            r#"{"modality":["MR"],"orientation":{"planes":["axial"],"tolerance_deg":30.0},"any_of":[{"name":"a","echo_time_ms":{"max":30.0}}]}"#
        );
    }
}
