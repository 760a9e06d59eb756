//! How the watcher learns of new series: Orthanc's changes feed (`StableSeries`: Orthanc deems
//! the series complete), or, on any DICOMweb server, QIDO-RS polled for SeriesInstanceUIDs
//! the journal does not know, each taken once its instance count held still over two polls
//! (QIDO-RS has no notion of a complete series); optionally only studies of the last days
//! (`StudyDate` range), so that a poll of a large PACS stays small.
//!
//! A first start (empty journal) without `backfill` ignores what the PACS already holds: the
//! feed's current end is its starting point, or the series QIDO-RS lists are journalled `seen`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use slicewise_dicomweb::orthanc::Orthanc;
use slicewise_dicomweb::{PacsError, SeriesInfo};

use crate::journal::{Entry, JournalError, State};
use crate::shared::Shared;

/// The model key of `seen` lines.
pub const ANY_MODEL: &str = "*";

/// Series that arrived, and where the feed stands.
pub struct News {
    /// The new series, in arrival order.
    pub arrivals: Vec<SeriesInfo>,
    /// The feed position to journal once the arrivals are claimed (Orthanc).
    pub cursor: Option<u64>,
    /// Nothing more to read now (the feed's end; no QIDO-RS series still growing).
    pub caught_up: bool,
}

/// Where the watcher reads news from.
pub enum Feed {
    /// Orthanc's changes, after `cursor`.
    Orthanc {
        /// The last change read.
        cursor: u64,
    },
    /// QIDO-RS polling.
    Qido {
        /// Unknown series seen at the last poll, with their instance count then.
        growing: Mutex<HashMap<String, usize>>,
    },
}

impl Feed {
    /// The feed of a starting watcher, journalling its starting point on a first start.
    pub async fn start(shared: &Arc<Shared>) -> Result<Feed, StartError> {
        let first = shared.journal.lock().map(|j| j.is_empty()).unwrap_or(false);
        let backfill = shared.opts.backfill;
        if shared.opts.orthanc {
            let known = shared.journal.lock().ok().and_then(|j| j.cursor());
            let cursor = match known {
                Some(c) => c,
                None if backfill || !first => 0,
                None => {
                    let orthanc = Orthanc::new(&shared.pacs);
                    shared
                        .patiently("Orthanc's changes feed", || orthanc.last_change())
                        .await?
                }
            };
            shared.record(Entry {
                cursor: Some(cursor),
                ..Entry::default()
            })?;
            return Ok(Feed::Orthanc { cursor });
        }
        if first && !backfill {
            let query = crate::options::qido_query(shared.opts.study_days);
            let all = shared
                .patiently("QIDO-RS series", || shared.pacs.query_series(&query))
                .await?;
            for s in &all {
                shared.record(Entry::new(
                    &s.series_uid,
                    &s.study_uid,
                    ANY_MODEL,
                    State::Seen,
                ))?;
            }
            // The marker that the first start is done, even on an empty PACS.
            shared.record(Entry::new(ANY_MODEL, "", ANY_MODEL, State::Seen))?;
        }
        Ok(Feed::Qido {
            growing: Mutex::new(HashMap::new()),
        })
    }

    /// The news since the last call.
    pub async fn poll(&self, shared: &Shared) -> Result<News, PacsError> {
        match self {
            Feed::Orthanc { cursor } => orthanc_news(shared, *cursor).await,
            Feed::Qido { growing } => qido_news(shared, growing).await,
        }
    }

    /// Moves the feed past `news` (its arrivals claimed).
    pub fn advance(&mut self, news: &News) {
        if let (Feed::Orthanc { cursor }, Some(c)) = (self, news.cursor) {
            *cursor = c;
        }
    }
}

/// One page of Orthanc's changes: each stable series, described by QIDO-RS.
async fn orthanc_news(shared: &Shared, since: u64) -> Result<News, PacsError> {
    let orthanc = Orthanc::new(&shared.pacs);
    let page = orthanc.changes(since).await?;
    let mut arrivals = Vec::new();
    for (_, id) in &page.stable_series {
        let Some(uid) = orthanc.series_uid(id).await? else {
            continue; // deleted since
        };
        match shared.pacs.find_series(&uid).await {
            Ok(info) => arrivals.push(info),
            Err(PacsError::NoSuchSeries { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(News {
        arrivals,
        cursor: Some(page.last),
        caught_up: page.done,
    })
}

/// The unknown series QIDO-RS lists whose instance count held still since the last poll.
async fn qido_news(
    shared: &Shared,
    growing: &Mutex<HashMap<String, usize>>,
) -> Result<News, PacsError> {
    let query = crate::options::qido_query(shared.opts.study_days);
    let all = shared.pacs.query_series(&query).await?;
    let mut growing = growing.lock().unwrap_or_else(|p| p.into_inner());
    let journal = shared.journal.lock().ok();
    let in_flight = shared.in_flight.lock().ok();
    let unknown = |s: &&SeriesInfo| {
        !journal.as_ref().is_some_and(|j| j.knows(&s.series_uid))
            && !in_flight
                .as_ref()
                .is_some_and(|f| f.contains(&s.series_uid))
    };
    let mut still = HashMap::new();
    let mut arrivals = Vec::new();
    for s in all.iter().filter(unknown) {
        let n = s.instances.unwrap_or(0);
        if growing.get(&s.series_uid) == Some(&n) {
            arrivals.push(s.clone());
        } else {
            still.insert(s.series_uid.clone(), n);
        }
    }
    *growing = still;
    let caught_up = growing.is_empty();
    Ok(News {
        arrivals,
        cursor: None,
        caught_up,
    })
}

/// Why the feed cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The PACS refused for good.
    #[error(transparent)]
    Pacs(#[from] PacsError),
    /// The journal cannot be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}
