//! What the feed reader and the workers share: the options, the PACS client, the models, the
//! journal, the audit, and the series in flight.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use slicewise::infer::Model;
use slicewise_dicomweb::{DicomWeb, PacsError, SeriesInfo};

use crate::audit::Audit;
use crate::journal::{Entry, Journal, JournalError};
use crate::options::WatchOptions;

/// A loaded model and the key its results are journalled under.
pub struct Loaded {
    /// The model, shared by the workers.
    pub model: Arc<Model>,
    /// `name@version` from its card.
    pub key: String,
}

/// One series to segment with some of the models.
pub struct WorkItem {
    /// What QIDO-RS says of it.
    pub info: SeriesInfo,
    /// Indices into [`Shared::models`].
    pub models: Vec<usize>,
    /// When the watcher learnt of it.
    pub arrived: Instant,
}

/// How this run went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Results stored (or found already stored).
    pub stored: usize,
    /// (series, model) pairs the model did not select.
    pub skipped: usize,
    /// (series, model) pairs that failed for good.
    pub failed: usize,
}

/// The shared state.
pub struct Shared {
    /// The options.
    pub opts: WatchOptions,
    /// The PACS.
    pub pacs: DicomWeb,
    /// The models.
    pub models: Vec<Loaded>,
    /// The durable state.
    pub journal: Mutex<Journal>,
    /// The audit trail.
    pub audit: Audit,
    /// Where series are fetched to and results written, privately.
    pub staging: PathBuf,
    /// Series queued or being segmented.
    pub in_flight: Mutex<HashSet<String>>,
    /// A journal write failed: the watcher stops (it cannot promise exactly once without it).
    pub fatal: Mutex<Option<String>>,
    stored: AtomicUsize,
    skipped: AtomicUsize,
    failed: AtomicUsize,
}

impl Shared {
    /// The shared state of a starting watcher.
    pub fn new(
        opts: WatchOptions,
        pacs: DicomWeb,
        models: Vec<Loaded>,
        journal: Journal,
        audit: Audit,
        staging: PathBuf,
    ) -> Shared {
        Shared {
            opts,
            pacs,
            models,
            journal: Mutex::new(journal),
            audit,
            staging,
            in_flight: Mutex::new(HashSet::new()),
            fatal: Mutex::new(None),
            stored: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// Journals `entry` (synced to disk), counting outcomes; a failure to write stops the
    /// watcher.
    pub fn record(&self, entry: Entry) -> Result<(), JournalError> {
        use crate::journal::State;
        let counter = match entry.state {
            Some(State::Stored) => Some(&self.stored),
            Some(State::Skipped) => Some(&self.skipped),
            Some(State::Failed) => Some(&self.failed),
            _ => None,
        };
        let result = self
            .journal
            .lock()
            .map_err(|_| JournalError::Io {
                path: self.opts.state.clone(),
                source: std::io::Error::other("journal lock poisoned"),
            })
            .and_then(|mut j| j.record(entry));
        match &result {
            Ok(()) => {
                if let Some(c) = counter {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(e) => {
                if let Ok(mut f) = self.fatal.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
        result
    }

    /// Runs a PACS exchange, waiting while the PACS is away.
    pub async fn patiently<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, PacsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PacsError>>,
    {
        crate::retry::patiently(what, self.opts.max_backoff, &self.audit, attempt).await
    }

    /// Series queued or running.
    pub fn busy(&self) -> usize {
        self.in_flight.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        Summary {
            stored: self.stored.load(Ordering::SeqCst),
            skipped: self.skipped.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
        }
    }
}
