//! Turning `segment`'s inputs into jobs: one per file or folder volume, one per series of a
//! DICOM folder, one per multi-channel case (one file per channel), with output names that
//! cannot collide.
//!
//! Multi-channel cases come two ways. Explicit channel lists (the CLI's `--channels`, a
//! manifest's `input_0000`, `input_0001`, … columns, Python's lists) are one job each. And for
//! a model taking C > 1 channels, nnU-Net's naming groups files: `CASE_0000.nii.gz` …
//! `CASE_{C-1}.nii.gz` in one folder (given as files, or found in a folder given) become one
//! job named `CASE`, failing by name when a channel file is missing. With a one-channel model
//! nothing is grouped: inputs become the jobs they always did.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use slicewise::error::{Error, Result};
use slicewise::infer::contract::{Selection, SeriesRules};
use slicewise::volume::channels::volume_stem;
use slicewise::volume::dicom::SeriesInfo;
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
    /// The series' header facts, for DICOM jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesInfo>,
    /// Why the model does not take this series ([`select`]): the job is reported, not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_selected: Option<String>,
    /// A note for the job's record: the series runs although the model's rules would skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_note: Option<String>,
    /// For a multi-channel case: its files (or DICOM folders), one per channel in channel
    /// order; `input` is the first. Empty for a job reading one volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<PathBuf>,
}

/// Which series of the DICOM inputs a batch runs. Other inputs (NIfTI, TIFF) carry no series
/// facts and always run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesChoice {
    /// The series the model's `series_selection` rules take (every series without rules).
    #[default]
    ByRules,
    /// Exactly the series with this SeriesInstanceUID, whatever the rules say (`--series`).
    Uid(String),
    /// Every series (`--all-series`): what `segment` did before models declared rules.
    All,
}

/// Marks the DICOM jobs the batch does not run, each with why ([`Job::not_selected`]): the
/// series the model's `rules` refuse, or with [`SeriesChoice::Uid`] every other series. A series
/// run against the rules (`Uid`, `All`) gets a [`Job::selection_note`] saying which rule it
/// fails. A UID that no job has is an error naming the series found.
pub fn select(jobs: &mut [Job], rules: Option<&SeriesRules>, choice: &SeriesChoice) -> Result<()> {
    if let SeriesChoice::Uid(uid) = choice {
        if !jobs
            .iter()
            .any(|j| j.series_uid.as_deref() == Some(uid.trim()))
        {
            return Err(Error::InvalidArgument(format!(
                "no series with UID {uid} among the inputs; found: {}",
                found_series(jobs)
            )));
        }
    }
    for job in jobs.iter_mut().filter(|j| j.series.is_some()) {
        let verdict = match (rules, &job.series) {
            (Some(r), Some(s)) => r.evaluate(s),
            _ => Selection::Selected,
        };
        let failed = match verdict {
            Selection::Selected => None,
            Selection::NotSelected(why) => Some(why),
        };
        match choice {
            SeriesChoice::ByRules => job.not_selected = failed,
            SeriesChoice::Uid(uid) if job.series_uid.as_deref() != Some(uid.trim()) => {
                job.not_selected = Some(format!("not the series asked for ({uid})"));
            }
            SeriesChoice::Uid(_) | SeriesChoice::All => job.selection_note = failed.map(run_anyway),
        }
    }
    Ok(())
}

/// The note on a series run although the rules refuse it for `why`.
fn run_anyway(why: String) -> String {
    format!("the model's series selection would skip this series ({why}); run as asked")
}

/// For a DICOM series a user asked for by name (the server's requests: the viewer chose it),
/// which runs whatever the rules say: the warning its result carries when the model's `rules`
/// would not take it. `None` when they would, when there are none, or when the series' headers
/// cannot be listed (its reading reports that).
pub fn requested_series_note(
    input: &Path,
    series_uid: Option<&str>,
    rules: Option<&SeriesRules>,
) -> Option<String> {
    let rules = rules?;
    let list = volume::dicom::list_series(input).ok()?;
    let series = list
        .iter()
        .find(|s| Some(s.uid.as_str()) == series_uid || list.len() == 1)?;
    match rules.evaluate(series) {
        Selection::Selected => None,
        Selection::NotSelected(why) => Some(run_anyway(why)),
    }
}

/// The DICOM series among `jobs`, for an error message.
fn found_series(jobs: &[Job]) -> String {
    let found: Vec<String> = jobs
        .iter()
        .filter_map(|j| {
            let s = j.series.as_ref()?;
            Some(format!(
                "{} \"{}\"",
                s.uid,
                s.description.as_deref().unwrap_or("")
            ))
        })
        .collect();
    if found.is_empty() {
        "no DICOM series".into()
    } else {
        found.join("; ")
    }
}

/// One input as a user names it: one path (a file, a folder, a DICOM study), or several, one
/// volume per channel of one case.
pub type Input = Vec<PathBuf>;

/// Expands inputs into jobs, in input order. A folder that is neither a DICOM nor a TIFF volume
/// is expanded into its sub-folders (one level), so a folder of patient folders works.
pub fn expand(inputs: &[PathBuf]) -> Vec<Job> {
    expand_for(&singles(inputs), 1)
}

/// Expands inputs into jobs for a model taking `model_channels` input channels (0: unknown,
/// nothing grouped and channel lists not counted): like [`expand`], plus one job per channel
/// list, and for `model_channels > 1` one job per nnU-Net case (see [`case_job`]).
pub fn expand_for(inputs: &[Input], model_channels: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    for input in inputs {
        push_input(input, None, model_channels, &mut seen, &mut jobs);
    }
    make_unique(&mut jobs);
    jobs
}

/// Each path as an input of its own.
fn singles(paths: &[PathBuf]) -> Vec<Input> {
    paths.iter().map(|p| vec![p.clone()]).collect()
}

/// Adds the jobs of one input (of manifest row `row`); `seen` holds the nnU-Net cases already
/// planned, so that a case whose files are all given is one job.
fn push_input(
    input: &[PathBuf],
    row: Option<usize>,
    model_channels: usize,
    seen: &mut HashSet<CaseKey>,
    jobs: &mut Vec<Job>,
) {
    match input {
        [] => {}
        [path] if model_channels > 1 && path.is_file() => match CaseKey::of(path) {
            Some((key, _)) if seen.insert(key.clone()) => {
                jobs.push(case_job(&key, row, model_channels))
            }
            Some(_) => {}
            None => expand_one(path, row, 1, model_channels, jobs),
        },
        [path] => expand_one(path, row, 1, model_channels, jobs),
        paths => jobs.push(channel_job(paths, row, model_channels)),
    }
}

/// The job of an explicit channel list: file i is channel i. Fails (as a job) when the model's
/// channel count is known and the list has another length.
fn channel_job(paths: &[PathBuf], row: Option<usize>, model_channels: usize) -> Job {
    let first = &paths[0];
    let error = (model_channels > 0 && paths.len() != model_channels).then(|| {
        format!(
            "{}: {} channel files given but the model takes {model_channels} channel(s)",
            first.display(),
            paths.len()
        )
    });
    let stem = volume_stem(first);
    let base = match CaseKey::of(first) {
        Some((key, 0)) => sanitize(&key.case),
        _ => sanitize(&stem),
    };
    Job {
        input: first.clone(),
        row,
        series_uid: None,
        kind: volume::detect(first).ok(),
        base,
        error,
        series: None,
        not_selected: None,
        selection_note: None,
        channels: paths.to_vec(),
    }
}

/// A case of files named the nnU-Net way, `CASE_XXXX.ext` (XXXX: four digits, the channel):
/// the folder, the case and the extension as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CaseKey {
    dir: PathBuf,
    case: String,
    ext: String,
}

impl CaseKey {
    /// The case `path` belongs to and its channel, when its name is `CASE_XXXX` plus a volume
    /// extension.
    fn of(path: &Path) -> Option<(CaseKey, usize)> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let stem = volume_stem(path);
        let (case, digits) = stem.rsplit_once('_')?;
        if case.is_empty() || digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ext = name[stem.len()..].to_string();
        if ext.is_empty() {
            return None;
        }
        let key = CaseKey {
            dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            case: case.to_string(),
            ext,
        };
        Some((key, digits.parse().ok()?))
    }

    /// The file of channel `i`.
    fn file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}_{i:04}{}", self.case, self.ext))
    }
}

/// The job of nnU-Net case `key` for a model taking `channels` channels: channel i is the
/// file `CASE_{i:04}` with the case's extension, in the case's folder. Fails (as a job) naming
/// the first missing channel file, or the file of channel C when the case has more channels
/// than the model takes.
fn case_job(key: &CaseKey, row: Option<usize>, channels: usize) -> Job {
    let files: Vec<PathBuf> = (0..channels).map(|i| key.file(i)).collect();
    let span = format!(
        "{}_0000{} … {}_{:04}{}",
        key.case,
        key.ext,
        key.case,
        channels - 1,
        key.ext
    );
    let missing = files.iter().enumerate().find(|(_, f)| !f.is_file());
    let error = match missing {
        Some((i, f)) => Some(format!(
            "{}: channel {i} of case {} is missing (the model takes {channels} channels: {span})",
            f.display(),
            key.case
        )),
        None => Some(key.file(channels)).filter(|f| f.exists()).map(|f| {
            format!(
                "{}: case {} has more channel files than the model's {channels} ({span})",
                f.display(),
                key.case
            )
        }),
    };
    Job {
        input: files[0].clone(),
        row,
        series_uid: None,
        kind: volume::detect(&files[0]).ok(),
        base: sanitize(&key.case),
        error,
        series: None,
        not_selected: None,
        selection_note: None,
        channels: files,
    }
}

/// The nnU-Net cases among the files of `dir`, sorted by name.
fn cases_in(dir: &Path) -> Vec<CaseKey> {
    let mut keys: Vec<CaseKey> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter_map(|p| CaseKey::of(&p).map(|(key, _)| key))
                .collect()
        })
        .unwrap_or_default();
    keys.sort_by(|a, b| (&a.case, &a.ext).cmp(&(&b.case, &b.ext)));
    keys.dedup();
    keys
}

/// Expands a manifest's rows like [`expand`], each job marked with its row. Every shard expands
/// all rows, so that output names (made unique over the whole batch) are the same in every shard
/// as in an unsharded run; this lists the series of DICOM rows (headers only) for naming.
pub fn expand_rows(rows: &[PathBuf]) -> Vec<Job> {
    expand_rows_for(&singles(rows), 1)
}

/// Expands a manifest's rows like [`expand_rows`], for a model taking `model_channels`
/// channels as [`expand_for`] does (each row its own: a case is one job per row naming it).
pub fn expand_rows_for(rows: &[Input], model_channels: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (r, input) in rows.iter().enumerate() {
        push_input(
            input,
            Some(r),
            model_channels,
            &mut HashSet::new(),
            &mut jobs,
        );
    }
    make_unique(&mut jobs);
    jobs
}

fn expand_one(
    input: &Path,
    row: Option<usize>,
    depth: usize,
    model_channels: usize,
    jobs: &mut Vec<Job>,
) {
    let job = |kind, series: Option<SeriesInfo>, error: Option<String>| Job {
        input: input.to_path_buf(),
        row,
        base: base_name(input, series.as_ref()),
        series_uid: series
            .as_ref()
            .map(|s| s.uid.clone())
            .filter(|u| !u.is_empty()),
        kind,
        error,
        series,
        not_selected: None,
        selection_note: None,
        channels: Vec::new(),
    };
    match volume::detect(input) {
        Ok(InputKind::Dicom) => match volume::dicom::list_series(input) {
            Ok(list) if !list.is_empty() => {
                for s in list {
                    jobs.push(job(Some(InputKind::Dicom), Some(s), None));
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
        Err(_) if model_channels > 1 && input.is_dir() && !cases_in(input).is_empty() => {
            for key in cases_in(input) {
                jobs.push(case_job(&key, row, model_channels));
            }
        }
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
                    expand_one(&d, row, depth - 1, model_channels, jobs);
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

/// The input's name without volume extensions, plus for DICOM what a radiologist sees of the
/// series ([`series_label`]), made safe for file names.
fn base_name(input: &Path, series: Option<&SeriesInfo>) -> String {
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
    if let Some(label) = series.and_then(series_label) {
        base.push('_');
        base.push_str(&label);
    }
    base
}

/// A series as a radiologist names it: its number (three digits) and description, e.g.
/// `004_AX_T2_FLAIR`; the modality stands in for a missing description, the UID for both
/// (`None` without any). File-system safe, runs of `_` collapsed.
pub fn series_label(s: &SeriesInfo) -> Option<String> {
    let text = s
        .description
        .as_deref()
        .or(s.modality.as_deref())
        .map(str::to_string);
    let label = match (s.number, text) {
        (Some(n), Some(t)) => format!("{n:03}_{t}"),
        (Some(n), None) => format!("{n:03}"),
        (None, Some(t)) => t,
        (None, None) if !s.uid.is_empty() => s.uid.clone(),
        (None, None) => return None,
    };
    let safe = sanitize(&label);
    let mut out = String::with_capacity(safe.len());
    for c in safe.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    Some(out.trim_matches('_').to_string()).filter(|s| !s.is_empty())
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
    let mut key = format!(
        "{}\0{}",
        canon.display(),
        job.series_uid.as_deref().unwrap_or("")
    );
    // A case's other channels are part of what it is (the single-volume key is unchanged).
    for c in job.channels.iter().skip(1) {
        let c = c.canonicalize().unwrap_or_else(|_| c.clone());
        key.push('\0');
        key.push_str(&c.display().to_string());
    }
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
            series: None,
            not_selected: None,
            selection_note: None,
            channels: Vec::new(),
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

    /// A temporary folder holding empty files named `names`.
    fn folder_with(names: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        d
    }

    #[test]
    fn nnunet_files_group_into_one_job_per_case_only_for_a_multi_channel_model() {
        let d = folder_with(&[
            "A_0000.nii.gz",
            "A_0001.nii.gz",
            "B_0000.nii.gz",
            "C_0000.nii.gz",
            "C_0001.nii.gz",
            "C_0002.nii.gz",
        ]);
        let jobs = expand_for(&[vec![d.path().to_path_buf()]], 2);
        let names: Vec<&str> = jobs.iter().map(|j| j.base.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert!(jobs[0].error.is_none(), "{:?}", jobs[0].error);
        assert_eq!(jobs[0].channels[1], d.path().join("A_0001.nii.gz"));
        let b = jobs[1].error.as_deref().unwrap();
        assert!(
            b.contains("B_0001.nii.gz") && b.contains("channel 1"),
            "{b}"
        );
        let c = jobs[2].error.as_deref().unwrap();
        assert!(
            c.contains("C_0002.nii.gz") && c.contains("more channel files"),
            "{c}"
        );
        // Files given one by one: one job per case, in the order first given.
        let files: Vec<Input> = ["A_0001.nii.gz", "A_0000.nii.gz"]
            .iter()
            .map(|n| vec![d.path().join(n)])
            .collect();
        let jobs = expand_for(&files, 2);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].input, d.path().join("A_0000.nii.gz"));
        // A one-channel model: every file is its own job, named as always.
        let jobs = expand_for(&files, 1);
        let names: Vec<&str> = jobs.iter().map(|j| j.base.as_str()).collect();
        assert_eq!(names, ["A_0001", "A_0000"]);
        assert!(jobs.iter().all(|j| j.channels.is_empty()));
    }

    #[test]
    fn channel_lists_are_one_job_and_must_match_the_models_channels() {
        let d = folder_with(&["flair.nii.gz", "t1c.nii.gz"]);
        let list = vec![d.path().join("flair.nii.gz"), d.path().join("t1c.nii.gz")];
        let jobs = expand_for(std::slice::from_ref(&list), 2);
        assert_eq!((jobs.len(), jobs[0].base.as_str()), (1, "flair"));
        assert!(jobs[0].error.is_none());
        let e = expand_for(&[list], 3)[0].error.clone().unwrap();
        assert!(
            e.contains("2 channel files given but the model takes 3"),
            "{e}"
        );
    }

    #[test]
    fn base_names_are_file_system_safe() {
        assert_eq!(sanitize("a b/c:d"), "a_b_c_d");
        assert_eq!(sanitize(".."), "input");
        let mut s = series("1.2.3", Some(4), Some("AX T2 FLAIR"));
        assert_eq!(
            base_name(Path::new("/x/Study 1"), Some(&s)),
            "Study_1_004_AX_T2_FLAIR"
        );
        s.description = Some("T1 +C / 3D (MPR)".into());
        assert_eq!(series_label(&s).unwrap(), "004_T1_C_3D_MPR");
        s.description = None;
        assert_eq!(series_label(&s).unwrap(), "004_MR");
        s.modality = None;
        s.number = None;
        assert_eq!(
            series_label(&s).unwrap(),
            "1.2.3",
            "the UID when nothing else"
        );
    }

    fn series(uid: &str, number: Option<i64>, description: Option<&str>) -> SeriesInfo {
        SeriesInfo {
            uid: uid.into(),
            description: description.map(str::to_string),
            modality: Some("MR".into()),
            slices: 20,
            files: 20,
            dims: [64, 64, 20],
            first_file: PathBuf::new(),
            number,
            image_type: Vec::new(),
            orientation: None,
            sequence: Default::default(),
        }
    }

    fn dicom_job(uid: &str, description: &str) -> Job {
        let s = series(uid, Some(1), Some(description));
        Job {
            input: PathBuf::from("/study"),
            row: None,
            series_uid: Some(uid.into()),
            kind: Some(InputKind::Dicom),
            base: base_name(Path::new("/study"), Some(&s)),
            error: None,
            series: Some(s),
            not_selected: None,
            selection_note: None,
            channels: Vec::new(),
        }
    }

    #[test]
    fn selection_by_rules_by_uid_and_all() {
        let rules = SeriesRules::from_json(r#"{"description":{"include":["flair"]}}"#).unwrap();
        let fresh = || vec![dicom_job("1.1", "AX FLAIR"), dicom_job("1.2", "T1post")];
        let mut jobs = fresh();
        select(&mut jobs, Some(&rules), &SeriesChoice::ByRules).unwrap();
        assert_eq!(jobs[0].not_selected, None);
        assert_eq!(
            jobs[1].not_selected.as_deref(),
            Some("SeriesDescription 'T1post' does not match /flair/i")
        );
        let mut jobs = fresh();
        select(&mut jobs, Some(&rules), &SeriesChoice::Uid("1.2".into())).unwrap();
        assert_eq!(
            jobs[0].not_selected.as_deref(),
            Some("not the series asked for (1.2)")
        );
        assert_eq!(jobs[1].not_selected, None);
        assert!(jobs[1]
            .selection_note
            .as_deref()
            .unwrap()
            .contains("/flair/i"));
        let mut jobs = fresh();
        select(&mut jobs, Some(&rules), &SeriesChoice::All).unwrap();
        assert!(jobs.iter().all(|j| j.not_selected.is_none()));
        let mut jobs = fresh();
        select(&mut jobs, None, &SeriesChoice::ByRules).unwrap();
        assert!(
            jobs.iter().all(|j| j.not_selected.is_none()),
            "no rules: every series"
        );
        let e = select(&mut fresh(), None, &SeriesChoice::Uid("9.9".into())).unwrap_err();
        assert!(e.to_string().contains("no series with UID 9.9"), "{e}");
        assert!(e.to_string().contains("1.2 \"T1post\""), "{e}");
    }
}
