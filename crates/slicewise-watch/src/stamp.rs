//! The identity of a result: its SeriesInstanceUID and SOPInstanceUID follow from (source
//! series, model name and version, format) alone, so that a result stored before a crash is
//! found again in the PACS by QIDO-RS, and a repeated STOW-RS stores the same instance (which
//! a PACS keeps once) rather than a second result.

use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use sha2::{Digest, Sha256};

/// The UIDs of one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultUids {
    /// SeriesInstanceUID.
    pub series: String,
    /// SOPInstanceUID.
    pub instance: String,
}

impl ResultUids {
    /// The UIDs of the result of `model` (`name@version`) in `format` for `source_series`.
    pub fn of(source_series: &str, model: &str, format: &str) -> ResultUids {
        let uid = |role: &str| derived_uid(&[source_series, model, format, role]);
        ResultUids {
            series: uid("series"),
            instance: uid("instance"),
        }
    }
}

/// `2.25.<n>` (PS3.5 B.2), `n` a name-based UUID (version 8) hashed from `parts`: at most 44
/// characters, the same for the same parts on every machine.
fn derived_uid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"slicewise watch result\0");
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// The DICOM file at `path` (a result the job layer wrote) with `uids` as its series and
/// instance UIDs, as bytes to store.
pub fn restamp(path: &Path, uids: &ResultUids) -> Result<Vec<u8>, String> {
    let mut obj = dicom_object::open_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (tag, value) in [
        (tags::SERIES_INSTANCE_UID, &uids.series),
        (tags::SOP_INSTANCE_UID, &uids.instance),
    ] {
        obj.put(DataElement::new(
            tag,
            VR::UI,
            PrimitiveValue::from(value.as_str()),
        ));
    }
    let meta = obj.meta_mut();
    meta.media_storage_sop_instance_uid = uids.instance.clone();
    meta.update_information_group_length();
    let mut out = Vec::new();
    obj.write_all(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_uids_are_stable_distinct_and_valid() {
        let a = ResultUids::of("1.2.3", "lgg@6", "seg");
        assert_eq!(a, ResultUids::of("1.2.3", "lgg@6", "seg"));
        assert_ne!(a.series, a.instance);
        for other in [
            ResultUids::of("1.2.4", "lgg@6", "seg"),
            ResultUids::of("1.2.3", "lgg@7", "seg"),
            ResultUids::of("1.2.3", "lgg@6", "rtstruct"),
        ] {
            assert_ne!(a.series, other.series);
        }
        for u in [&a.series, &a.instance] {
            assert!(u.len() <= 64 && u.starts_with("2.25."), "{u}");
            assert!(slicewise_dicomweb::is_uid(u), "{u}");
        }
    }
}
