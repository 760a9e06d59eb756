//! Turning `segment`'s inputs into jobs: one per file or folder volume, one per series of a
//! DICOM folder, with output names that cannot collide.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use slicewise::volume::{self, InputKind};

/// One volume to segment. Serialisable, so that a scheduler can plan jobs in one process and
/// run them in others (the Python package's Ray runner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The input path as given (or a sub-folder of it).
    pub input: PathBuf,
    /// The manifest row it came from (0-based), for manifest batches.
    pub row: Option<usize>,
    /// The DICOM series to read, for DICOM inputs.
    pub series_uid: Option<String>,
    /// The detected kind; `None` when detection failed (see `error`).
    #[serde(with = "kind_name")]
    pub kind: Option<InputKind>,
    /// Output base name (unique within the batch, file-system safe).
    pub base: String,
    /// Why this job cannot run (it is reported as failed).
    pub error: Option<String>,
}

/// Expands inputs into jobs, in input order. A folder that is neither a DICOM nor a TIFF volume
/// is expanded into its sub-folders (one level), so a folder of patient folders works.
pub fn expand(inputs: &[PathBuf]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for input in inputs {
        expand_one(input, None, 1, &mut jobs);
    }
    make_unique(&mut jobs);
    jobs
}

/// Expands a manifest's rows like [`expand`], each job marked with its row. Every shard expands
/// all rows, so that output names (made unique over the whole batch) are the same in every shard
/// as in an unsharded run; this lists the series of DICOM rows (headers only) for naming.
pub fn expand_rows(rows: &[PathBuf]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (r, input) in rows.iter().enumerate() {
        expand_one(input, Some(r), 1, &mut jobs);
    }
    make_unique(&mut jobs);
    jobs
}

fn expand_one(input: &Path, row: Option<usize>, depth: usize, jobs: &mut Vec<Job>) {
    let job = |kind, uid: Option<String>, error: Option<String>| Job {
        input: input.to_path_buf(),
        row,
        base: base_name(input, uid.as_deref()),
        series_uid: uid,
        kind,
        error,
    };
    match volume::detect(input) {
        Ok(InputKind::Dicom) => match volume::dicom::list_series(input) {
            Ok(list) if !list.is_empty() => {
                for s in list {
                    let uid = (!s.uid.is_empty()).then_some(s.uid);
                    jobs.push(job(Some(InputKind::Dicom), uid, None));
                }
            }
            Ok(_) => jobs.push(job(
                Some(InputKind::Dicom),
                None,
                Some(format!("{}: no DICOM series found", input.display())),
            )),
            Err(e) => jobs.push(job(Some(InputKind::Dicom), None, Some(e.to_string()))),
        },
        Ok(kind) => jobs.push(job(Some(kind), None, None)),
        Err(e) => {
            let subdirs = if depth > 0 && input.is_dir() {
                sorted_subdirs(input)
            } else {
                Vec::new()
            };
            if subdirs.is_empty() {
                jobs.push(job(None, None, Some(e.to_string())));
            } else {
                for d in subdirs {
                    expand_one(&d, row, depth - 1, jobs);
                }
            }
        }
    }
}

/// [`InputKind`] as `"dicom"`, `"nifti"` or `"tiff"` (the engine's enum is not serialisable).
mod kind_name {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use slicewise::volume::InputKind;

    pub fn serialize<S: Serializer>(k: &Option<InputKind>, s: S) -> Result<S::Ok, S::Error> {
        k.map(|k| match k {
            InputKind::Dicom => "dicom",
            InputKind::Nifti => "nifti",
            InputKind::Tiff => "tiff",
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<InputKind>, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            None => Ok(None),
            Some("dicom") => Ok(Some(InputKind::Dicom)),
            Some("nifti") => Ok(Some(InputKind::Nifti)),
            Some("tiff") => Ok(Some(InputKind::Tiff)),
            Some(other) => Err(serde::de::Error::custom(format!(
                "unknown input kind `{other}`"
            ))),
        }
    }
}

fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The input's name without volume extensions, plus the series UID for DICOM, made safe for
/// file names.
fn base_name(input: &Path, uid: Option<&str>) -> String {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let lower = name.to_lowercase();
    let mut stem = name.as_str();
    if input.is_file() {
        for ext in [
            ".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img.gz", ".img", ".tiff", ".tif", ".dcm",
        ] {
            if lower.ends_with(ext) && lower.len() > ext.len() {
                stem = &name[..name.len() - ext.len()];
                break;
            }
        }
    }
    let mut base = sanitize(stem);
    if let Some(uid) = uid {
        base.push('_');
        base.push_str(&sanitize(uid));
    }
    base
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('.').to_string();
    if out.is_empty() {
        "input".into()
    } else {
        out
    }
}

/// Jobs whose bases collide (case-insensitively, for case-insensitive file systems) get a
/// suffix hashed from their canonical input path and series UID: stable across runs.
fn make_unique(jobs: &mut [Job]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for j in jobs.iter() {
        *count.entry(j.base.to_lowercase()).or_default() += 1;
    }
    for j in jobs.iter_mut() {
        if count[&j.base.to_lowercase()] > 1 {
            j.base = distinct_base(j);
        }
    }
}

/// The job's base name with a suffix hashed from its canonical input path and series UID: the
/// name it gets when another input of its batch has the same base, and the one it writes under
/// when an earlier run's outputs of another input hold its plain name. Stable across runs; a
/// base that already carries this job's suffix is returned as it is.
pub fn distinct_base(job: &Job) -> String {
    let canon = job
        .input
        .canonicalize()
        .unwrap_or_else(|_| job.input.clone());
    let key = format!(
        "{}\0{}",
        canon.display(),
        job.series_uid.as_deref().unwrap_or("")
    );
    let suffix = format!("_{:08x}", fnv1a(key.as_bytes()) as u32);
    if job.base.ends_with(&suffix) {
        job.base.clone()
    } else {
        format!("{}{suffix}", job.base)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_names_get_stable_distinct_suffixes() {
        let mk = |p: &str| Job {
            input: PathBuf::from(p),
            row: None,
            series_uid: None,
            kind: None,
            base: base_name(Path::new(p), None),
            error: None,
        };
        let mut jobs = vec![mk("/a/img"), mk("/b/img"), mk("/c/other")];
        make_unique(&mut jobs);
        assert_ne!(jobs[0].base, jobs[1].base);
        assert!(jobs[0].base.starts_with("img_"));
        assert_eq!(jobs[2].base, "other");
        let mut again = vec![mk("/a/img"), mk("/b/img")];
        make_unique(&mut again);
        assert_eq!(again[0].base, jobs[0].base);
    }

    #[test]
    fn base_names_are_file_system_safe() {
        assert_eq!(sanitize("a b/c:d"), "a_b_c_d");
        assert_eq!(sanitize(".."), "input");
        assert_eq!(
            base_name(Path::new("/x/Study 1"), Some("1.2.3")),
            "Study_1_1.2.3"
        );
    }
}
