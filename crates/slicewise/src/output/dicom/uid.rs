//! New DICOM UIDs without a registered root: `2.25.<UUID as a decimal integer>` (PS3.5 B.2).

/// A fresh random UID of the form `2.25.<decimal>`, at most 44 characters.
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        assert!(a.len() <= 64);
        assert!(a.starts_with("2.25."));
        let digits = &a[5..];
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        // A component may not have a leading zero (PS3.5 9.1).
        assert!(!digits.starts_with('0') || digits == "0");
    }
}
