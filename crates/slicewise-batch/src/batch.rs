//! One `segment` job, run exactly as `slicewise segment` runs it, for every front end that runs
//! batches (the CLI, the Python package's `segment_file` and Ray runner).
//!
//! Every job writes its mask, then its previews, then a sidecar `<base>.slicewise.json` (its
//! [`JobRecord`], with output sizes) — each atomically. The sidecar is the completion marker: a
//! rerun skips a job whose sidecar says `ok` for the same input and whose outputs still exist
//! with the recorded sizes, so an interrupted batch resumes where it stopped. `overwrite`
//! removes the sidecar before redoing a job, so a failure never leaves a stale "complete" marker.
//!
//! A job runs in three stages — read, segment, write — that [`run_job`] runs in turn and
//! [`crate::pipeline`] overlaps across the jobs of a batch; each stage turns a panic into the
//! job's failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;

use crate::jobs::{self, Job};
use crate::report::{JobRecord, JobStatus, ModelRecord, OutputFile, Summary};
use slicewise::error::{Error, Result};
use slicewise::infer::{self, Device, Model, Progress, SegmentOptions};
use slicewise::output::OutputFormat;
use slicewise::volume::{InputKind, ReadOptions, Volume};

/// Previews per job.
const PREVIEWS: usize = 3;

/// What every job of a batch shares: where its outputs go and how it segments.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Output folder.
    pub out: PathBuf,
    /// Mask format; `None`: TIFF for TIFF input, NIfTI otherwise.
    pub format: Option<OutputFormat>,
    /// How each job segments: the engine's options, declared once for every front end.
    pub options: SegmentOptions,
    /// Write PNG overlays of the slices with the most foreground.
    pub preview: bool,
    /// Redo jobs whose outputs are already complete.
    pub overwrite: bool,
}

/// The job-level settings as a JSON object names them (beside the segmentation options).
#[derive(Deserialize, Default)]
#[serde(default)]
struct JobKeys {
    out: Option<PathBuf>,
    format: Option<String>,
    preview: bool,
    overwrite: bool,
}

impl JobSettings {
    /// The CLI's defaults, writing into `out`.
    pub fn new(out: impl Into<PathBuf>) -> JobSettings {
        JobSettings {
            out: out.into(),
            format: None,
            options: SegmentOptions::default(),
            preview: false,
            overwrite: false,
        }
    }

    /// Settings from one JSON object with the names users see (Python's keyword arguments):
    /// `out` (required), `format` (`nifti`, `tiff`, `dicom-seg`, `rtstruct`, `nrrd`; null: by
    /// input), `preview`,
    /// `overwrite`, and every [`SegmentOptions`] key. Keys it does not know are ignored (the
    /// front end refuses those it does not offer).
    pub fn from_json(value: &serde_json::Value) -> Result<JobSettings> {
        let options = SegmentOptions::from_json(value)?;
        let keys: JobKeys = infer::from_json_named(value)?;
        let out = keys
            .out
            .ok_or_else(|| Error::InvalidArgument("the output folder (`out`) is missing".into()))?;
        let format = keys.format.as_deref().map(parse_format).transpose()?;
        Ok(JobSettings {
            out,
            format,
            options,
            preview: keys.preview,
            overwrite: keys.overwrite,
        })
    }

    /// The options as the report's `options` object records them (the CLI's spelling).
    pub fn options_json(&self, device: Device, threads: Option<usize>) -> serde_json::Value {
        let mut o = self.options.to_json();
        o["format"] = json!(self.format.map(format_name));
        o["device"] = json!(format!("{device:?}").to_lowercase());
        o["threads"] = json!(threads);
        o["preview"] = json!(self.preview);
        o["overwrite"] = json!(self.overwrite);
        o
    }
}

/// The mask format a user names (`--format`, Python's `format=`).
pub fn parse_format(name: &str) -> Result<OutputFormat> {
    match name {
        "nifti" => Ok(OutputFormat::Nifti),
        "tiff" => Ok(OutputFormat::Tiff),
        "dicom-seg" => Ok(OutputFormat::DicomSeg),
        "nrrd" => Ok(OutputFormat::Nrrd),
        "rtstruct" => Ok(OutputFormat::Rtstruct),
        other => Err(Error::InvalidArgument(format!(
            "format `{other}` is not one of nifti, tiff, dicom-seg, rtstruct, nrrd"
        ))),
    }
}

/// The report's name of a mask format (as `--format` was first recorded: `dicomseg`).
fn format_name(f: OutputFormat) -> &'static str {
    match f {
        OutputFormat::Nifti => "nifti",
        OutputFormat::Tiff => "tiff",
        OutputFormat::DicomSeg => "dicomseg",
        OutputFormat::Nrrd => "nrrd",
        OutputFormat::Rtstruct => "rtstruct",
    }
}

/// The batch's input files, canonical, so that no output can overwrite one.
#[derive(Debug, Clone, Default)]
pub struct InputGuard(HashSet<PathBuf>);

impl InputGuard {
    /// Guards the files among `inputs` (folders are guarded by [`out_problem`]).
    pub fn new(inputs: &[PathBuf]) -> InputGuard {
        InputGuard(
            inputs
                .iter()
                .filter(|p| p.is_file())
                .filter_map(|p| p.canonicalize().ok())
                .collect(),
        )
    }

    /// Whether `p` (existing or not) is one of the guarded inputs.
    pub fn is_input(&self, p: &Path) -> bool {
        self.0.contains(&canonical_lenient(p))
    }
}

/// Why `out` cannot hold the outputs of `inputs`: it lies inside an input folder, so the next
/// run would take the outputs for inputs. `None` when it can.
pub fn out_problem(inputs: &[PathBuf], out: &Path) -> Option<String> {
    let out_canon = canonical_lenient(out);
    inputs
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.canonicalize().ok())
        .find(|d| out_canon.starts_with(d))
        .map(|d| {
            format!(
                "--out {} lies inside the input folder {}; choose an output folder outside the inputs",
                out.display(),
                d.display()
            )
        })
}

/// The canonical path of `p`, or of its nearest existing ancestor joined with the rest.
pub fn canonical_lenient(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut tail = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for t in tail.iter().rev() {
                out.push(t);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// The report's record of the model used for a batch.
pub fn model_record(model: &Model, load_seconds: f64) -> ModelRecord {
    let c = model.contract();
    ModelRecord {
        path: model.path().to_path_buf(),
        name: c.name.clone(),
        version: c.version.clone(),
        provider: model.provider().clone(),
        load_seconds,
    }
}

/// Counts `records` by outcome; `seconds` is the batch's wall time.
pub fn tally(records: &[JobRecord], seconds: f64) -> Summary {
    let mut summary = Summary {
        jobs: records.len(),
        seconds,
        ..Summary::default()
    };
    for r in records {
        match r.status {
            JobStatus::Ok => summary.ok += 1,
            JobStatus::Skipped => summary.skipped += 1,
            JobStatus::Failed => summary.failed += 1,
            JobStatus::NotSelected => summary.not_selected += 1,
        }
    }
    summary
}

/// Runs one job: skipped when complete from an earlier run (unless `overwrite`), else read,
/// segment, write. `progress` sees the slices of the volume and may cancel. A panic becomes the
/// job's failure, so one bad input cannot end a batch. The stages are those that
/// [`crate::pipeline`] overlaps across jobs, run here one after the other.
pub fn run_job(
    job: &Job,
    model: &Model,
    settings: &JobSettings,
    guard: &InputGuard,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> JobRecord {
    let mut rec = match read_stage(job, settings, guard) {
        Stage::Done(rec) => *rec,
        Stage::Next(read) => match segment_stage(job, read, model, settings, progress) {
            Stage::Done(rec) => *rec,
            Stage::Next(seg) => write_stage(job, seg, model, settings),
        },
    };
    // A skipped job's record is the earlier run's; the row is this run's.
    rec.row = job.row;
    rec
}

/// Where a job stands after one stage: handed on to the next, or done (skipped, failed).
pub(crate) enum Stage<T> {
    /// Ready for the next stage.
    Next(T),
    /// Finished: its record (boxed: it is far larger than what the stages hand on).
    Done(Box<JobRecord>),
}

/// A job whose volume is read and whose outputs are prepared.
pub(crate) struct Read {
    rec: JobRecord,
    out: Outputs,
    volume: Volume,
}

/// A segmented job, its outputs still to write. The volume is kept only for previews.
pub(crate) struct Segmented {
    rec: JobRecord,
    out: Outputs,
    volume: Option<Volume>,
    mask: slicewise::Mask,
}

/// Runs `f`, turning a panic into the job's failure (its message and, where the front end
/// installed the engine's quiet hook, its place).
fn catch<T>(job: &Job, f: impl FnOnce() -> T) -> std::result::Result<T, Box<JobRecord>> {
    slicewise::error::catch_panic(f).map_err(|e| {
        let mut r = new_record(job);
        r.error = Some(e.to_string());
        Box::new(r)
    })
}

/// `rec` failed with `e`.
fn failed(mut rec: JobRecord, e: Error) -> JobRecord {
    rec.status = JobStatus::Failed;
    rec.error = Some(e.to_string());
    rec
}

/// A job's record with nothing done yet: its input, row and series.
fn new_record(job: &Job) -> JobRecord {
    let mut rec = JobRecord::new(&job.input, job.series_uid.clone());
    rec.row = job.row;
    rec.channels = job.channels.clone();
    if let Some(s) = &job.series {
        rec.series_number = s.number;
        rec.series_description = s.description.clone();
    }
    rec.warnings.extend(job.selection_note.clone());
    rec
}

/// Stage 1: done at once when the series is not selected, the job cannot run or is complete
/// from an earlier run (unless `overwrite`); else prepares its outputs and reads its volume.
pub(crate) fn read_stage(job: &Job, settings: &JobSettings, guard: &InputGuard) -> Stage<Read> {
    catch(job, || {
        let mut rec = new_record(job);
        if let Some(why) = &job.not_selected {
            rec.status = JobStatus::NotSelected;
            rec.reason = Some(why.clone());
            return Stage::Done(Box::new(rec));
        }
        if let Some(e) = &job.error {
            rec.error = Some(e.clone());
            return Stage::Done(Box::new(rec));
        }
        let out = match outputs(job, settings) {
            Ok((out, note)) => {
                rec.warnings.extend(note);
                out
            }
            Err(e) => return Stage::Done(Box::new(failed(rec, e))),
        };
        if !settings.overwrite {
            if let Some(mut earlier) = complete(job, &out.sidecar) {
                earlier.status = JobStatus::Skipped;
                return Stage::Done(Box::new(earlier));
            }
        }
        let t0 = Instant::now();
        let volume = read_volume(job, guard, &out, &mut rec);
        rec.timings.total = t0.elapsed().as_secs_f64();
        match volume {
            Ok(volume) => Stage::Next(Read { rec, out, volume }),
            Err(e) => Stage::Done(Box::new(failed(rec, e))),
        }
    })
    .unwrap_or_else(Stage::Done)
}

/// Stage 2: segments the volume (the model's session is the shared resource).
pub(crate) fn segment_stage(
    job: &Job,
    read: Read,
    model: &Model,
    settings: &JobSettings,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Stage<Segmented> {
    catch(job, || {
        let Read {
            mut rec,
            out,
            volume,
        } = read;
        let mask = match segment_volume(&volume, model, &settings.options, &mut rec, progress) {
            Ok(mask) => mask,
            Err(e) => return Stage::Done(Box::new(failed(rec, e))),
        };
        // Only previews read the volume again; without them it is freed before the write.
        let volume = settings.preview.then_some(volume);
        Stage::Next(Segmented {
            rec,
            out,
            volume,
            mask,
        })
    })
    .unwrap_or_else(Stage::Done)
}

/// Stage 3: writes the mask, the previews and, last, the sidecar that marks the job complete.
pub(crate) fn write_stage(
    job: &Job,
    seg: Segmented,
    model: &Model,
    settings: &JobSettings,
) -> JobRecord {
    catch(job, || {
        let Segmented {
            mut rec,
            out,
            volume,
            mask,
        } = seg;
        let t = Instant::now();
        let written = write_outputs(model, settings, &out, volume.as_ref(), &mask, &mut rec);
        let seconds = t.elapsed().as_secs_f64();
        rec.timings.total += seconds;
        if let Err(e) = written {
            return failed(rec, e);
        }
        rec.timings.write = seconds;
        rec.status = JobStatus::Ok;
        // The completion marker, written last.
        match write_sidecar(&out.sidecar, &rec) {
            Ok(()) => rec,
            Err(e) => failed(rec, e),
        }
    })
    .unwrap_or_else(|rec| *rec)
}

/// Output paths of a job, under the base name it writes with.
pub(crate) struct Outputs {
    base: String,
    format: OutputFormat,
    mask: PathBuf,
    sidecar: PathBuf,
}

/// The job's output paths. Another input's results are never replaced (unless `overwrite`):
/// when the sidecar at the job's name records a different input or series — the second of
/// `a/x.nii.gz` and `b/x.nii.gz` segmented into one folder by separate runs — the job writes
/// under its distinct name ([`jobs::distinct_base`], the one a run holding both inputs would
/// give it, so reruns find it again) and says so in a warning; when that name is taken by yet
/// another input too, the job fails naming both inputs.
fn outputs(job: &Job, settings: &JobSettings) -> Result<(Outputs, Option<String>)> {
    let first = output_paths(job, settings, &job.base);
    let Some(owner) = other_owner(job, &first.sidecar).filter(|_| !settings.overwrite) else {
        return Ok((first, None));
    };
    let alt = output_paths(job, settings, &jobs::distinct_base(job));
    if alt.base != first.base {
        if let Some(second) = other_owner(job, &alt.sidecar) {
            return Err(taken(job, &alt, &second));
        }
        let note = format!(
            "written as {}: {} holds the result of {}",
            alt.base,
            first.mask.display(),
            owner.display()
        );
        return Ok((alt, Some(note)));
    }
    Err(taken(job, &first, &owner))
}

/// The refusal when the job's output names hold another input's results.
fn taken(job: &Job, out: &Outputs, owner: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{} holds the result of {}, which {} would replace: segment into another output folder, \
         or overwrite to replace it",
        out.mask.display(),
        owner.display(),
        job.input.display()
    ))
}

fn output_paths(job: &Job, settings: &JobSettings, base: &str) -> Outputs {
    let fmt = match settings.format {
        Some(f) => f,
        None if job.kind == Some(InputKind::Tiff) => OutputFormat::Tiff,
        None => OutputFormat::Nifti,
    };
    let ext = match fmt {
        OutputFormat::Tiff => "tif",
        OutputFormat::Nifti => "nii.gz",
        OutputFormat::DicomSeg | OutputFormat::Rtstruct => "dcm",
        OutputFormat::Nrrd => "nrrd",
    };
    // An RT structure set is named for what it is, so that it is not taken for the SEG.
    let kind = match fmt {
        OutputFormat::Rtstruct => "rtstruct",
        _ => "mask",
    };
    Outputs {
        base: base.to_string(),
        format: fmt,
        mask: settings.out.join(format!("{base}_{kind}.{ext}")),
        sidecar: settings.out.join(format!("{base}.slicewise.json")),
    }
}

/// The input recorded by the sidecar at `sidecar` when it is not this job's (another input, or
/// another series of it); `None` when there is none, it is unreadable, or it is this job's.
fn other_owner(job: &Job, sidecar: &Path) -> Option<PathBuf> {
    let rec = read_sidecar(sidecar)?;
    (!records_job(&rec, job)).then_some(rec.input)
}

/// The record a sidecar holds, if it reads as one.
fn read_sidecar(sidecar: &Path) -> Option<JobRecord> {
    let bytes = std::fs::read(sidecar).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `rec` is a record of `job`: the same input (canonically when both paths resolve,
/// else as written: an earlier input since moved is another input unless written alike), the
/// same series, and for a multi-channel case the same channel inputs in the same order.
fn records_job(rec: &JobRecord, job: &Job) -> bool {
    rec.channels.len() == job.channels.len()
        && same_path(&rec.input, &job.input)
        && rec
            .channels
            .iter()
            .zip(&job.channels)
            .all(|(a, b)| same_path(a, b))
        && rec.series_uid == job.series_uid
}

/// Whether `a` and `b` are one file: canonically when both resolve, else as written.
fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The earlier record when the job's outputs are complete. An input that no longer exists (of
/// a case: any channel's) is never complete: its job fails naming it.
fn complete(job: &Job, sidecar: &Path) -> Option<JobRecord> {
    job.input.canonicalize().ok()?;
    for c in &job.channels {
        c.canonicalize().ok()?;
    }
    let rec = read_sidecar(sidecar)?;
    if rec.status != JobStatus::Ok || !records_job(&rec, job) {
        return None;
    }
    let files_ok = rec.mask.iter().chain(rec.previews.iter()).all(|f| {
        std::fs::metadata(&f.path)
            .map(|m| m.is_file() && m.len() == f.bytes)
            .unwrap_or(false)
    });
    (files_ok && rec.mask.is_some()).then_some(rec)
}

fn output_file(path: &Path) -> Result<OutputFile> {
    let m = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
    Ok(OutputFile {
        path: path.to_path_buf(),
        bytes: m.len(),
    })
}

fn write_sidecar(path: &Path, rec: &JobRecord) -> Result<()> {
    slicewise::output::atomic_write(path, |w| {
        serde_json::to_writer_pretty(w, rec)
            .map_err(|e| Error::io("write", path, std::io::Error::other(e)))
    })
}

/// Refuses outputs that would overwrite an input, and removes a stale completion marker.
fn prepare_outputs(out: &Outputs, guard: &InputGuard) -> Result<()> {
    for p in [&out.mask, &out.sidecar] {
        if guard.is_input(p) {
            return Err(Error::InvalidArgument(format!(
                "{}: output would overwrite an input",
                p.display()
            )));
        }
    }
    // A stale marker must not survive a redo that fails.
    match std::fs::remove_file(&out.sidecar) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &out.sidecar, e)),
    }
}

/// Prepares the outputs and reads the job's volume into `rec`.
fn read_volume(
    job: &Job,
    guard: &InputGuard,
    out: &Outputs,
    rec: &mut JobRecord,
) -> Result<Volume> {
    prepare_outputs(out, guard)?;
    // A case's channel files may be found beside a file given (nnU-Net naming): guard them too.
    for p in [&out.mask, &out.sidecar] {
        if job.channels.iter().any(|c| same_path(c, p)) {
            return Err(Error::InvalidArgument(format!(
                "{}: output would overwrite an input",
                p.display()
            )));
        }
    }
    if job.channels.is_empty() {
        // The listed series' UID even when empty: a series without SeriesInstanceUID beside
        // others is the group of files without one.
        let uid = job.series.as_ref().map(|s| s.uid.as_str());
        read_input(&job.input, uid.or(job.series_uid.as_deref()), rec)
    } else {
        read_channels(&job.channels, rec)
    }
}

/// Reads one volume per channel and stacks them ([`Volume::open_channels`]: one grid or
/// refused), recording what [`read_input`] records: a multi-channel job's first step, also for
/// the server.
pub fn read_channels(paths: &[PathBuf], rec: &mut JobRecord) -> Result<Volume> {
    paths.iter().for_each(|p| injected_panic(p));
    let t = Instant::now();
    let volume = Volume::open_channels(paths, &ReadOptions::default())?;
    record_read(&volume, t, rec);
    Ok(volume)
}

/// Records a read volume's read time, dims, spacing and warnings.
fn record_read(volume: &Volume, started: Instant, rec: &mut JobRecord) {
    rec.timings.read = started.elapsed().as_secs_f64();
    rec.dims = Some(volume.dims_xyz());
    rec.spacing = Some(volume.geometry.spacing);
    rec.warnings.extend(volume.meta.warnings.iter().cloned());
}

/// Reads an input volume (of a DICOM folder, the series `series_uid` names), recording its read
/// time, dims, spacing and the reader's warnings in `rec`: a job's first step, also for front
/// ends that answer with the mask themselves (the server).
pub fn read_input(input: &Path, series_uid: Option<&str>, rec: &mut JobRecord) -> Result<Volume> {
    injected_panic(input);
    let t = Instant::now();
    let mut ropts = ReadOptions::default();
    if let Some(uid) = series_uid {
        ropts = ropts.series_uid(uid.to_string());
    }
    let volume = Volume::open_with(input, &ropts)?;
    record_read(&volume, t, rec);
    Ok(volume)
}

/// The variable that names an input file on which a debug build panics while reading it.
pub const DEBUG_PANIC_VAR: &str = "SLICEWISE_DEBUG_PANIC";

/// Debug builds only (tests): panics when [`DEBUG_PANIC_VAR`] names `input`'s file name, so the
/// tests can prove, front end by front end, that a panic inside a job becomes that job's error
/// with its place and that no Rust panic report reaches stderr. Release builds have no such hook.
fn injected_panic(input: &Path) {
    if cfg!(debug_assertions) {
        let name = std::env::var_os(DEBUG_PANIC_VAR);
        if name.is_some() && input.file_name() == name.as_deref() {
            panic!("injected panic ({DEBUG_PANIC_VAR})");
        }
    }
}

/// Segments `volume` with `options`, recording the provider that ran, the stage timings, the
/// engine's warnings and the label statistics in `rec`: a job's second step (`progress` sees
/// the slices done and may cancel).
pub fn segment_volume(
    volume: &Volume,
    model: &Model,
    options: &SegmentOptions,
    rec: &mut JobRecord,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<slicewise::Mask> {
    let t = Instant::now();
    let seg = infer::segment(model, volume, options, progress);
    rec.timings.total += t.elapsed().as_secs_f64();
    let seg = seg?;
    rec.provider = Some(seg.provider);
    rec.timings.preprocess = seg.timings.preprocess;
    rec.timings.inference = seg.timings.inference;
    rec.timings.postprocess = seg.timings.postprocess;
    rec.warnings.extend(seg.warnings);
    rec.labels = seg.mask.stats();
    Ok(seg.mask)
}

/// Writes the mask and, when asked, the previews (of `volume`, kept for them); records them in
/// `rec`.
fn write_outputs(
    model: &Model,
    settings: &JobSettings,
    out: &Outputs,
    volume: Option<&Volume>,
    mask: &slicewise::Mask,
    rec: &mut JobRecord,
) -> Result<()> {
    let c = model.contract();
    match out.format {
        OutputFormat::DicomSeg => {
            let opts = slicewise::output::dicom_seg::DicomSegOptions::default().with_contract(c);
            slicewise::output::dicom_seg::write_mask_with(&out.mask, mask, &opts)?;
        }
        OutputFormat::Rtstruct => {
            let opts = slicewise::output::rtstruct::RtstructOptions::default().with_contract(c);
            slicewise::output::rtstruct::write_mask_with(&out.mask, mask, &opts)?;
        }
        _ => slicewise::output::write_mask(&out.mask, mask)?,
    }
    rec.mask = Some(output_file(&out.mask)?);
    if let (true, Some(volume)) = (settings.preview, volume) {
        let channel = c.source_channels.first().copied().unwrap_or(0);
        for z in crate::preview::top_slices(mask, PREVIEWS) {
            let p = settings
                .out
                .join(format!("{}_preview_z{z:04}.png", out.base));
            crate::preview::write(&p, volume, mask, z, channel)?;
            rec.previews.push(output_file(&p)?);
        }
    }
    Ok(())
}
