//! Folders of numbered TIFF slices, with `*_mask.tif` masks paired to their images (the LGG
//! layout: `<PATIENT>_<n>.tif` and `<PATIENT>_<n>_mask.tif`, `n` not zero-padded).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One numbered slice of a folder: its image and, when present, its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePair {
    /// The slice number (the last run of digits in the image's file name), as written.
    pub number: String,
    /// The image slice.
    pub image: PathBuf,
    /// `<image stem>_mask.<ext>`, when it exists.
    pub mask: Option<PathBuf>,
}

/// The extensions of TIFF slices (compared in any case).
const TIFF_EXTENSIONS: [&str; 2] = ["tif", "tiff"];

/// True for a visible file named `*.<ext>` with `ext` one of `extensions` (any case).
fn has_extension(name: &str, extensions: &[&str]) -> bool {
    let l = name.to_lowercase();
    !l.starts_with('.')
        && l.rsplit_once('.')
            .is_some_and(|(_, e)| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// File stem without the `.tif`/`.tiff` extension.
fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) => &name[..i],
        None => name,
    }
}

/// True for `*_mask.tif` (any case).
pub(crate) fn is_mask_name(name: &str) -> bool {
    stem(name).to_lowercase().ends_with("_mask")
}

/// The last run of ASCII digits in `s`.
fn last_number(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let end = b.iter().rposition(|c| c.is_ascii_digit())? + 1;
    let start = b[..end]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    Some(&s[start..end])
}

/// (significant digit count, digits): orders digit strings numerically.
type SortKey = (usize, String);

/// Numeric sort key of a digit string of any length: (significant length, digits).
fn numeric_key(digits: &str) -> SortKey {
    let t = digits.trim_start_matches('0');
    (t.len(), t.to_string())
}

/// Lists the `.tif`/`.tiff` files directly in `dir` as (file name, path), unsorted.
pub(crate) fn tiff_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    files_with_extensions(dir, &TIFF_EXTENSIONS)
}

/// Lists the files directly in `dir` named `*.<ext>` for an `ext` of `extensions` (any case) as
/// (file name, path), unsorted.
fn files_with_extensions(dir: &Path, extensions: &[&str]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list folder", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list folder", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !has_extension(&name, extensions) {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            out.push((name, path));
        }
    }
    Ok(out)
}

/// The image slices of `dir` in numeric order, each with its mask when there is one.
///
/// Slices are ordered by the last run of digits in the file name (`x_2.tif` before `x_10.tif`;
/// for `TCGA_CS_4941_19960909_12.tif` the number is 12), ties and files without digits by name.
/// `*_mask.tif` files are never images. Fails naming `dir` when it holds no image slices.
pub fn slice_pairs(dir: &Path) -> Result<Vec<SlicePair>> {
    let pairs = numbered_slices(dir, &TIFF_EXTENSIONS)?;
    if !pairs.is_empty() {
        return Ok(pairs);
    }
    let masks: Vec<String> = tiff_files(dir)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| is_mask_name(n))
        .collect();
    Err(Error::format(
        dir,
        match masks.first() {
            None => "folder holds no TIFF slices".to_string(),
            Some(m) => format!("folder holds only mask slices (*_mask.tif, e.g. {m}), no images"),
        },
    ))
}

/// The numbered image slices of `dir` among the files with one of `extensions` (without the
/// dot, any case), each with its `<image stem>_mask.<ext>` mask (any case, any of `extensions`)
/// when there is one, in the order of [`slice_pairs`]; empty when `dir` holds no such image.
///
/// [`slice_pairs`] is this with the TIFF extensions. The trainer lists PNG slice pairs with it,
/// so that every folder of slices pairs and orders its files by one rule.
pub fn numbered_slices(dir: &Path, extensions: &[&str]) -> Result<Vec<SlicePair>> {
    let files = files_with_extensions(dir, extensions)?;
    let (masks, images): (Vec<_>, Vec<_>) = files.into_iter().partition(|(n, _)| is_mask_name(n));
    let mut pairs: Vec<(Option<SortKey>, String, SlicePair)> = images
        .into_iter()
        .map(|(name, image)| {
            let s = stem(&name);
            let number = last_number(s).unwrap_or("").to_string();
            let mask_name = format!("{}_mask", s.to_lowercase());
            let mask = masks
                .iter()
                .find(|(m, _)| stem(m).to_lowercase() == mask_name)
                .map(|(_, p)| p.clone());
            let key = (!number.is_empty()).then(|| numeric_key(&number));
            (
                key,
                name,
                SlicePair {
                    number,
                    image,
                    mask,
                },
            )
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(pairs.into_iter().map(|(_, _, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_masks() {
        assert_eq!(last_number("TCGA_CS_4941_19960909_12"), Some("12"));
        assert_eq!(last_number("x"), None);
        assert_eq!(last_number("7"), Some("7"));
        assert!(is_mask_name("a_3_mask.tif"));
        assert!(is_mask_name("A_3_MASK.TIFF"));
        assert!(!is_mask_name("a_3.tif"));
        assert!(numeric_key("2") < numeric_key("10"));
        assert!(numeric_key("0009") < numeric_key("10"));
    }

    #[test]
    fn pairs_sorted_numerically() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "x_10.tif",
            "x_2.tif",
            "x_1.tif",
            "x_2_mask.tif",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let p = slice_pairs(d.path()).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|s| s.image.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x_1.tif", "x_2.tif", "x_10.tif"]);
        assert!(p[1].mask.is_some() && p[0].mask.is_none());
    }

    #[test]
    fn other_extensions_pair_and_sort_by_the_same_rule() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "a_10.PNG",
            "a_2.png",
            "a_2_MASK.png",
            "a_10_Mask.png",
            "a_3.tif",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let p = numbered_slices(d.path(), &["png"]).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|s| s.image.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a_2.png", "a_10.PNG"]);
        assert!(p.iter().all(|s| s.mask.is_some()), "{p:?}");
        assert_eq!(p[1].number, "10");
        let tiff = slice_pairs(d.path()).unwrap();
        assert_eq!(tiff.len(), 1, "{tiff:?}");
        let empty = tempfile::tempdir().unwrap();
        assert!(numbered_slices(empty.path(), &["png"]).unwrap().is_empty());
        let e = slice_pairs(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no TIFF slices"), "{e}");
    }

    #[test]
    fn mask_only_folder_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x_1_mask.tif"), b"").unwrap();
        let e = slice_pairs(d.path()).unwrap_err().to_string();
        assert!(e.contains("only mask slices"), "{e}");
    }
}
