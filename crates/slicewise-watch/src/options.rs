//! [`WatchOptions`]: everything `slicewise watch` can be told, with the defaults it documents.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use slicewise::infer::{ModelOptions, SegmentOptions};
use slicewise::output::OutputFormat;

/// How the watcher is set up. [`WatchOptions::new`] gives the defaults: QIDO-RS polling every
/// 10 s, one series segmented at a time with 16 waiting, DICOM SEG results, waits between
/// retries doubling from 1 s up to 60 s.
#[derive(Clone)]
pub struct WatchOptions {
    /// DICOMweb root of the PACS (e.g. `http://127.0.0.1:8042/dicom-web`); basic auth as
    /// `http://user:password@host/...`.
    pub pacs: String,
    /// A bearer token sent to the PACS, when set.
    pub token: Option<String>,
    /// Follow Orthanc's changes feed (`StableSeries`) rather than polling QIDO-RS.
    pub orthanc: bool,
    /// The models (ONNX files with their cards), each loaded once.
    pub models: Vec<PathBuf>,
    /// The state folder: the journal that makes each (series, model) done exactly once, the
    /// audit log, and the private folder series are fetched into.
    pub state: PathBuf,
    /// The result format: a DICOM one, stored back with STOW-RS.
    pub format: OutputFormat,
    /// How often the PACS is asked for news once caught up.
    pub poll: Duration,
    /// QIDO-RS polling: ask only for studies dated today or in the `n - 1` days before
    /// (`StudyDate=<from>-`), so that a poll of a large PACS stays small; `None`: every series.
    pub study_days: Option<u32>,
    /// Process what the PACS has now, then exit (tests, cron).
    pub once: bool,
    /// On the first start (an empty state folder), treat the series already in the PACS as
    /// new; without it only later arrivals are segmented.
    pub backfill: bool,
    /// Series segmented at once.
    pub workers: usize,
    /// Series that may wait for a worker; the feed is not read further while it is full.
    pub queue: usize,
    /// Longest wait between two tries while the PACS is away.
    pub max_backoff: Duration,
    /// Largest series fetched, in bytes.
    pub max_series_bytes: usize,
    /// Device, threads and ONNX Runtime library of every model.
    pub model: ModelOptions,
    /// How each series is segmented (the engine's options, as `slicewise segment` takes them).
    pub segment: SegmentOptions,
}

impl WatchOptions {
    /// The defaults, for the PACS at `pacs`, the `models`, and the state folder `state`.
    pub fn new(pacs: impl Into<String>, models: Vec<PathBuf>, state: impl Into<PathBuf>) -> Self {
        WatchOptions {
            pacs: pacs.into(),
            token: None,
            orthanc: false,
            models,
            state: state.into(),
            format: OutputFormat::DicomSeg,
            poll: Duration::from_secs(10),
            study_days: None,
            once: false,
            backfill: false,
            workers: 1,
            queue: 16,
            max_backoff: Duration::from_secs(60),
            max_series_bytes: 1 << 30,
            model: ModelOptions::default(),
            segment: SegmentOptions::default(),
        }
    }
}

impl fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchOptions")
            // Never the credentials.
            .field("pacs", &slicewise_dicomweb::redact(&self.pacs))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("orthanc", &self.orthanc)
            .field("models", &self.models)
            .field("state", &self.state)
            .field("format", &self.format)
            .field("poll", &self.poll)
            .field("study_days", &self.study_days)
            .field("once", &self.once)
            .field("backfill", &self.backfill)
            .field("workers", &self.workers)
            .field("queue", &self.queue)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// The name a result format goes by in UIDs and audit lines, for the formats the watcher can
/// store (DICOM ones); `None` for the others.
pub fn stored_format_name(format: OutputFormat) -> Option<&'static str> {
    match format {
        OutputFormat::DicomSeg => Some("seg"),
        OutputFormat::Rtstruct => Some("rtstruct"),
        _ => None,
    }
}

/// The QIDO-RS query of a poll: `StudyDate=<from>-` for a window of `days` days ending today
/// (local time), or every series.
pub fn qido_query(study_days: Option<u32>) -> String {
    match study_days {
        Some(days) => {
            let back = chrono::Duration::days(i64::from(days.max(1)) - 1);
            let from = chrono::Local::now().date_naive() - back;
            format!("StudyDate={}-", from.format("%Y%m%d"))
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_window_ends_today() {
        let today = chrono::Local::now()
            .date_naive()
            .format("%Y%m%d")
            .to_string();
        assert_eq!(qido_query(Some(1)), format!("StudyDate={today}-"));
        assert!(qido_query(Some(7)) < qido_query(Some(1)));
        assert_eq!(qido_query(None), "");
    }
}
