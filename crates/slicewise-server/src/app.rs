//! The state every handler shares: the loaded models, the datastore, the sessions, the job
//! queue and the security settings. Built once at start and handed to the router explicitly.

use std::sync::Arc;

use crate::datastore::Datastore;
use crate::dicomweb::DicomWeb;
use crate::error::ApiError;
use crate::jobs::Jobs;
use crate::models::Models;
use crate::sessions::Sessions;

/// The shared state.
pub struct App {
    /// Loaded models.
    pub models: Models,
    /// Uploaded images.
    pub datastore: Datastore,
    /// Uploaded session images.
    pub sessions: Sessions,
    /// Segmentation jobs.
    pub jobs: Jobs,
    /// The bearer token every endpoint requires, when set.
    pub token: Option<String>,
    /// Slices per inference batch.
    pub batch_size: usize,
    /// The PACS (`--dicomweb`), when there is one.
    pub dicomweb: Option<DicomWeb>,
}

/// What handlers receive.
pub type AppState = Arc<App>;

/// Runs blocking work (file system, volume reading) off the async threads.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("worker thread failed: {e}"))))
}
