//! Small builders for DICOM elements: strings, decimal strings within DS limits, codes, sequences.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::mask::coding::Code;

/// Puts a string element (empty string gives an empty, zero-length value: a present type-2
/// attribute).
pub fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    let v = if value.is_empty() {
        PrimitiveValue::Empty
    } else {
        PrimitiveValue::from(value)
    };
    obj.put(DataElement::new(tag, vr, v));
}

/// Puts a multi-valued string element.
pub fn put_strs(obj: &mut InMemDicomObject, tag: Tag, vr: VR, values: &[String]) {
    obj.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::Strs(values.iter().cloned().collect()),
    ));
}

/// Puts a US element.
pub fn put_u16(obj: &mut InMemDicomObject, tag: Tag, values: &[u16]) {
    obj.put(DataElement::new(
        tag,
        VR::US,
        PrimitiveValue::U16(values.iter().copied().collect()),
    ));
}

/// Puts a sequence.
pub fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// Puts a DS element holding `values`, each formatted within DS's 16 characters.
pub fn put_ds(obj: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let strs: Vec<String> = values.iter().map(|&v| format_ds(v)).collect();
    put_strs(obj, tag, VR::DS, &strs);
}

/// Formats a number as a DICOM decimal string of at most 16 characters, keeping as many
/// significant digits as fit (PS3.5 6.2: DS values are at most 16 bytes).
pub fn format_ds(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    let shortest = format!("{v}");
    if shortest.len() <= 16 && !shortest.contains('e') {
        return shortest;
    }
    for decimals in (0..=15usize).rev() {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        let s = if s == "-0" { "0".to_string() } else { s };
        if s.len() <= 16 {
            return s;
        }
    }
    // Magnitudes beyond 1e16 mm do not occur in patient coordinates; use scientific notation.
    format!("{v:.6e}")
}

/// An item holding a coded concept.
pub fn code_item(code: &Code) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::CODE_VALUE, VR::SH, &code.value);
    put_str(
        &mut item,
        tags::CODING_SCHEME_DESIGNATOR,
        VR::SH,
        &code.scheme,
    );
    put_str(&mut item, tags::CODE_MEANING, VR::LO, &code.meaning);
    item
}

/// Puts a one-item code sequence.
pub fn put_code_seq(obj: &mut InMemDicomObject, tag: Tag, code: &Code) {
    put_seq(obj, tag, vec![code_item(code)]);
}

/// Truncates `s` to at most `max` characters (DICOM limits are in characters for our UTF-8
/// character set).
pub fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Makes a valid CS value: upper case, only A–Z, 0–9, space and underscore, at most 16 chars.
pub fn to_cs(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .map(|c| {
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    v.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the point: values with more digits than DS holds
    fn ds_values_fit_sixteen_characters() {
        assert_eq!(format_ds(0.5), "0.5");
        assert_eq!(format_ds(-0.0), "0");
        assert_eq!(format_ds(-127.69000200000001), "-127.690002");
        for v in [
            -127.69000200000001,
            1.0 / 3.0,
            -235.19999694824219,
            1e-20,
            123456789.123456789,
        ] {
            let s = format_ds(v);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap();
            assert!((back - v).abs() <= 1e-9 * v.abs().max(1.0), "{v} -> {s}");
        }
    }

    #[test]
    fn cs_values_are_sanitised() {
        assert_eq!(to_cs("Tumour seg-v1.2"), "TUMOUR SEG_V1_2");
        assert_eq!(to_cs("a_very_long_content_label"), "A_VERY_LONG_CONT");
    }
}
