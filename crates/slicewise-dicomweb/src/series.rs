//! What QIDO-RS says of a series ([`SeriesInfo`]), and reading DICOM JSON attributes.

use serde_json::Value;

/// A series as QIDO-RS describes it.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// Modality, when given.
    pub modality: Option<String>,
    /// NumberOfSeriesRelatedInstances, when given.
    pub instances: Option<usize>,
    /// The QIDO-RS attributes (DICOM JSON).
    pub attributes: Value,
}

impl SeriesInfo {
    /// `None` unless both UIDs are there and are UIDs: they become URL and cache path parts.
    pub fn from_json(v: &Value) -> Option<SeriesInfo> {
        let uid = |tag| text(v, tag).filter(|u| is_uid(u));
        Some(SeriesInfo {
            study_uid: uid("0020000D")?,
            series_uid: uid("0020000E")?,
            modality: text(v, "00080060"),
            instances: text(v, "00201209").and_then(|n| n.parse().ok()),
            attributes: v.clone(),
        })
    }

    /// The first value of attribute `tag` (8 hex digits, e.g. `0008103E`), as text.
    pub fn attribute(&self, tag: &str) -> Option<String> {
        text(&self.attributes, tag)
    }

    /// SeriesDescription, when given.
    pub fn description(&self) -> Option<String> {
        self.attribute("0008103E")
    }
}

/// Checks that `id` is a DICOM UID: 1 to 64 characters, digits in dot-separated components.
pub fn is_uid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

/// The first value of `tag` in a DICOM JSON object, as text (numbers and person names too).
pub fn text(v: &Value, tag: &str) -> Option<String> {
    match v.get(tag)?.get("Value")?.get(0)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("Alphabetic")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The items of sequence `tag` in a DICOM JSON object.
pub fn items<'a>(v: &'a Value, tag: &str) -> Vec<&'a Value> {
    v.get(tag)
        .and_then(|e| e.get("Value"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A DICOM JSON attribute map.
    fn attrs(pairs: &[(&str, Value)]) -> Value {
        let m: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(t, v)| (t.to_string(), json!({ "Value": [v] })))
            .collect();
        Value::Object(m)
    }

    #[test]
    fn uids_are_digits_and_dots_only() {
        assert!(is_uid(
            "1.3.6.1.4.1.14519.5.2.1.4429.7055.250698293053013179878447218670"
        ));
        assert!(is_uid("2.25.1"));
        for bad in [
            "",
            "1..2",
            ".1",
            "1.",
            "1.2a",
            "../1",
            "1/2",
            "*",
            &"1".repeat(65),
        ] {
            assert!(!is_uid(bad), "{bad:?}");
        }
    }

    #[test]
    fn qido_attributes_read_as_text() {
        let v = attrs(&[
            ("0020000D", json!("1.2")),
            ("0020000E", json!("1.2.3")),
            ("00201209", json!(22)),
            ("00100010", json!({"Alphabetic": "Doe^Jane"})),
            ("0008103E", json!("AX FLAIR")),
        ]);
        let s = SeriesInfo::from_json(&v).unwrap();
        assert_eq!((s.study_uid.as_str(), s.instances), ("1.2", Some(22)));
        assert_eq!(s.description().as_deref(), Some("AX FLAIR"));
        assert_eq!(text(&v, "00100010").as_deref(), Some("Doe^Jane"));
        assert!(SeriesInfo::from_json(&attrs(&[("0020000E", json!("1"))])).is_none());
        let escaping = attrs(&[("0020000D", json!("../..")), ("0020000E", json!("1.2"))]);
        assert!(SeriesInfo::from_json(&escaping).is_none());
    }
}
