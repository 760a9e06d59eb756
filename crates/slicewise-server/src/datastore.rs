//! The local datastore: uploaded images under `<root>/images/`, named by image id — a file
//! `<id><ext>` (NIfTI, TIFF, one DICOM file) or a folder `<id>/` (a DICOM series sent as several
//! files). `<root>/staging/` holds uploads in flight and is emptied at start.
//!
//! An image id is checked by [`validate_id`] before it meets the file system, and every path
//! built from one is a direct child of `images/`, so no id can name anything outside it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};
use slicewise::Volume;

use crate::error::{ApiError, ServeError};
use crate::upload::Upload;

/// File types an image may be uploaded as, longest suffix first.
pub const IMAGE_EXTENSIONS: [&str; 5] = [".nii.gz", ".nii", ".tiff", ".tif", ".dcm"];

/// Longest image id accepted.
const MAX_ID_CHARS: usize = 128;

/// Checks an image id: 1 to 128 characters, letters, digits, space and `._-+@,:()[]=~`, not
/// starting with `.` or a space. Everything that could name another folder (`/`, `\`, `..`,
/// NUL, control characters) is refused. Slicer sends volume node names, which may hold spaces
/// and parentheses, hence the generous set.
pub fn validate_id(id: &str) -> Result<&str, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(
            "bad_image_id",
            format!("image id {id:?} is not allowed: {why}"),
        )
    };
    let n = id.chars().count();
    if n == 0 || n > MAX_ID_CHARS {
        return Err(bad("it must be 1 to 128 characters"));
    }
    if id.starts_with('.') || id.starts_with(' ') || id.ends_with(' ') {
        return Err(bad(
            "it may not start with a dot or start or end with a space",
        ));
    }
    let ok = |c: char| c.is_alphanumeric() || " ._-+@,:()[]=~".contains(c);
    if let Some(c) = id.chars().find(|&c| !ok(c)) {
        return Err(bad(&format!(
            "{c:?} is not one of letters, digits, space, ._-+@,:()[]=~"
        )));
    }
    Ok(id)
}

/// The image extension of a file name (lower-cased match), if it is one slicewise reads.
pub fn image_extension(file_name: &str) -> Option<&'static str> {
    let lower = file_name.to_ascii_lowercase();
    IMAGE_EXTENSIONS
        .iter()
        .copied()
        .find(|e| lower.ends_with(e) && lower.len() > e.len())
}

/// An image checked and waiting in the staging folder; removed when dropped unless moved.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    ext: &'static str,
    name: String,
}

impl Staged {
    /// The staged file or folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The client's file name (the first one for a series).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Moves it to `dest_stem` + its extension, replacing what was there; returns the new path.
    pub fn commit(mut self, dest_stem: &Path) -> std::io::Result<PathBuf> {
        let dest = with_suffix(dest_stem, self.ext);
        std::fs::rename(&self.path, &dest)?;
        // Moved: nothing left for Drop to clean up.
        self.path = PathBuf::new();
        Ok(dest)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        let _ = if self.path.is_dir() {
            std::fs::remove_dir_all(&self.path)
        } else {
            std::fs::remove_file(&self.path)
        };
    }
}

/// The datastore folder.
pub struct Datastore {
    root: PathBuf,
    images: PathBuf,
    staging: PathBuf,
    // Replacing an image is remove-then-rename: serialise it.
    replace: Mutex<()>,
}

impl Datastore {
    /// Opens (creating) the datastore at `root` and empties its staging folder.
    pub fn open(root: &Path) -> Result<Datastore, ServeError> {
        let images = root.join("images");
        let staging = root.join("staging");
        let _ = std::fs::remove_dir_all(&staging);
        for dir in [&images, &staging] {
            std::fs::create_dir_all(dir).map_err(|source| ServeError::Io {
                action: "create folder",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Datastore {
            root: root.to_path_buf(),
            images,
            staging,
            replace: Mutex::new(()),
        })
    }

    /// The datastore folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where uploads are staged.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The stored image with this id, if any (the id is validated first).
    pub fn image_path(&self, id: &str) -> Result<Option<PathBuf>, ApiError> {
        let stem = self.images.join(validate_id(id)?);
        if stem.is_dir() {
            return Ok(Some(stem));
        }
        Ok(IMAGE_EXTENSIONS
            .iter()
            .map(|e| with_suffix(&stem, e))
            .find(|p| p.is_file()))
    }

    /// Like [`Datastore::image_path`], with a 404 when there is none.
    pub fn require_image(&self, id: &str) -> Result<PathBuf, ApiError> {
        self.image_path(id)?.ok_or_else(|| {
            ApiError::not_found("unknown_image", format!("no image {id:?} in the datastore"))
        })
    }

    /// Checks uploaded `files` with the engine's readers and stages them: one file keeps its
    /// extension, several become one folder (a DICOM series). Blocking: reads the volume.
    pub fn stage(&self, files: Vec<Upload>) -> Result<Staged, ApiError> {
        let first = files
            .first()
            .ok_or_else(|| ApiError::bad_request("missing_file", "the form holds no file part"))?;
        let name = first.file_name.clone();
        let staged = if files.len() == 1 {
            self.stage_file(files, name)?
        } else {
            self.stage_series(files, name)?
        };
        check_readable(&staged)?;
        Ok(staged)
    }

    fn stage_file(&self, mut files: Vec<Upload>, name: String) -> Result<Staged, ApiError> {
        let Some(upload) = files.pop() else {
            return Err(ApiError::bad_request("missing_file", "no file part"));
        };
        let ext = image_extension(&upload.file_name).ok_or_else(|| {
            ApiError::bad_request(
                "unsupported_file_type",
                format!(
                    "{:?}: upload a NIfTI (.nii, .nii.gz), TIFF (.tif, .tiff) or DICOM (.dcm) file, or a DICOM series as several files",
                    upload.file_name
                ),
            )
        })?;
        let path = with_suffix(&self.staging.join(uuid::Uuid::new_v4().to_string()), ext);
        upload
            .path
            .persist(&path)
            .map_err(|e| ApiError::internal(format!("cannot stage an upload: {}", e.error)))?;
        Ok(Staged { path, ext, name })
    }

    fn stage_series(&self, files: Vec<Upload>, name: String) -> Result<Staged, ApiError> {
        let dir = self.staging.join(uuid::Uuid::new_v4().to_string());
        let staged = Staged {
            path: dir.clone(),
            ext: "",
            name,
        };
        std::fs::create_dir(&dir)
            .map_err(|e| ApiError::internal(format!("cannot stage an upload: {e}")))?;
        for (i, f) in files.into_iter().enumerate() {
            // Numbered names: the client's names may repeat or be unusable; DICOM is found by content.
            f.path
                .persist(dir.join(format!("{i:05}.dcm")))
                .map_err(|e| ApiError::internal(format!("cannot stage an upload: {}", e.error)))?;
        }
        Ok(staged)
    }

    /// Stores a staged image under `id`, replacing any image of that id.
    pub fn add_image(&self, id: &str, staged: Staged) -> Result<PathBuf, ApiError> {
        let stem = self.images.join(validate_id(id)?);
        let _one_at_a_time = self.replace.lock().unwrap_or_else(|p| p.into_inner());
        remove_variants(&stem);
        staged
            .commit(&stem)
            .map_err(|e| ApiError::internal(format!("cannot store image {id:?}: {e}")))
    }

    /// Removes the image `id`; 404 when there is none.
    pub fn remove_image(&self, id: &str) -> Result<(), ApiError> {
        self.require_image(id)?;
        let _one_at_a_time = self.replace.lock().unwrap_or_else(|p| p.into_inner());
        remove_variants(&self.images.join(id));
        Ok(())
    }

    /// `(id, file name, extension, modification time)` of every stored image, by id.
    fn entries(&self) -> Vec<(String, String, &'static str, u64)> {
        let Ok(dir) = std::fs::read_dir(&self.images) else {
            return Vec::new();
        };
        let mut out: Vec<_> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let meta = e.metadata().ok()?;
                let ext = if meta.is_dir() {
                    ""
                } else {
                    image_extension(&name)?
                };
                let id = name[..name.len() - ext.len()].to_string();
                validate_id(&id).ok()?;
                let ts = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                Some((id, name, ext, ts))
            })
            .collect();
        out.sort();
        out
    }

    /// `GET /datastore/` (`output=stats`): `{total, completed, label_tags}`.
    pub fn stats_json(&self) -> Value {
        json!({ "total": self.entries().len(), "completed": 0, "label_tags": {} })
    }

    /// `GET /datastore/?output=all`: MONAI Label's local datastore model,
    /// `{name, description, images_dir, labels_dir, objects: {id: {image: {ext, info}, labels}}}`.
    pub fn all_json(&self) -> Value {
        let objects: Map<String, Value> = self
            .entries()
            .into_iter()
            .map(|(id, name, ext, ts)| {
                let v = json!({ "image": { "ext": ext, "info": { "name": name, "ts": ts } }, "labels": {} });
                (id, v)
            })
            .collect();
        json!({
            "name": "slicewise",
            "description": "slicewise local datastore",
            "images_dir": "images",
            "labels_dir": "labels",
            "objects": objects,
        })
    }
}

/// Reads the staged image with the engine, so that a bad upload is refused now, with the
/// reader's message (naming the client's file, not the staging path).
fn check_readable(staged: &Staged) -> Result<(), ApiError> {
    match Volume::open(staged.path()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut err = ApiError::from(e);
            err.detail = err
                .detail
                .replace(&staged.path().display().to_string(), staged.name());
            Err(err)
        }
    }
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes `stem/` and every `stem<ext>`.
fn remove_variants(stem: &Path) {
    if stem.is_dir() {
        let _ = std::fs::remove_dir_all(stem);
    }
    for e in IMAGE_EXTENSIONS {
        let _ = std::fs::remove_file(with_suffix(stem, e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_datastore_are_refused() {
        for bad in [
            "",
            "../../etc/passwd",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "nul\0",
            "tab\t",
            " lead",
            "trail ",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["hippocampus_375", "MRHead", "2: T1", "a.b-c+d (1)", "Über"] {
            assert!(validate_id(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn extensions_match_longest_suffix_case_blind() {
        assert_eq!(image_extension("x.NII.GZ"), Some(".nii.gz"));
        assert_eq!(image_extension("x.nii"), Some(".nii"));
        assert_eq!(image_extension("x.tif"), Some(".tif"));
        assert_eq!(image_extension(".nii"), None);
        assert_eq!(image_extension("x.nrrd"), None);
    }

    #[test]
    fn stored_images_are_found_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(dir.path()).unwrap();
        std::fs::write(ds.images.join("a.nii.gz"), b"x").unwrap();
        std::fs::create_dir(ds.images.join("series 1")).unwrap();
        std::fs::write(ds.images.join("ignored.txt"), b"x").unwrap();
        assert!(ds.image_path("a").unwrap().is_some());
        assert!(ds.image_path("series 1").unwrap().unwrap().is_dir());
        assert!(ds.image_path("b").unwrap().is_none());
        assert_eq!(ds.stats_json()["total"], 2);
        assert_eq!(ds.all_json()["objects"]["a"]["image"]["ext"], ".nii.gz");
        ds.remove_image("a").unwrap();
        assert!(ds.image_path("a").unwrap().is_none());
        assert_eq!(ds.remove_image("a").unwrap_err().status.as_u16(), 404);
    }
}
