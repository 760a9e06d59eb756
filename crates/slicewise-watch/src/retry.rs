//! Waiting for the PACS: an exchange that fails for a reason that may pass (the PACS is down,
//! restarting, overloaded) is tried again after a wait that doubles from one second up to the
//! watcher's `max_backoff`, the reason logged and audited each time; other failures return.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use slicewise_dicomweb::PacsError;

use crate::audit::Audit;

/// The first wait.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Runs `attempt` until it succeeds or fails for good.
pub async fn patiently<T, F, Fut>(
    what: &str,
    max_backoff: Duration,
    audit: &Audit,
    mut attempt: F,
) -> Result<T, PacsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PacsError>>,
{
    let mut wait = FIRST_WAIT.min(max_backoff);
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => {
                log::warn!("{what}: {e}; trying again in {:.0} s", wait.as_secs_f64());
                audit.event(
                    "pacs_waiting",
                    json!({"what": what, "reason": e.to_string(), "retry_in": wait.as_secs_f64()}),
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(max_backoff);
            }
            other => return other,
        }
    }
}
