//! [`WatchError`]: why the watcher cannot start or had to stop.

/// Why the watcher cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// An option, the state folder or a model is unusable.
    #[error("{0}")]
    Setup(String),
    /// The PACS refused for good (not a passing outage: those are waited out).
    #[error(transparent)]
    Pacs(#[from] slicewise_dicomweb::PacsError),
    /// The journal cannot be written: exactly once cannot be promised without it.
    #[error("the journal cannot be written: {0}")]
    Journal(String),
}
