//! The audit trail: one JSON line per event of a series (`arrived`, `selected`, `skipped` with
//! the reason, `segmented`, `stored`, `failed`, with seconds since arrival) and per PACS outage
//! (`pacs_waiting` with the reason), on stdout and appended to `<state>/audit.jsonl`. Never a
//! credential: URLs are shown without their user info.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

/// Where audit lines go.
pub struct Audit {
    file: Mutex<File>,
}

impl Audit {
    /// Appends to `<state>/audit.jsonl`.
    pub fn open(state: &Path) -> std::io::Result<Audit> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join("audit.jsonl"))?;
        Ok(Audit {
            file: Mutex::new(file),
        })
    }

    /// Writes `fields` (a JSON object) with `event` and the time added.
    pub fn event(&self, event: &str, mut fields: Value) {
        if let Some(o) = fields.as_object_mut() {
            o.insert("event".into(), json!(event));
            o.insert(
                "t".into(),
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
        let mut line = fields.to_string();
        line.push('\n');
        // Audit lines are best effort: a full disk must not stop the segmentation itself.
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}
