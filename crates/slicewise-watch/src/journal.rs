//! The watcher's durable state: `<state>/journal.jsonl`, one JSON object a line, each line
//! written whole and fsynced before the watcher acts on it, so that after a crash or a kill
//! the journal says exactly what was decided and what was stored.
//!
//! Per (series, model) the last line wins: `claimed` (selected, result not yet known to be in
//! the PACS: redone at the next start), `stored` (with the result's SOPInstanceUID),
//! `skipped` (the model does not select the series), `failed` (the engine or the PACS refused
//! it for good). A `cursor` line records how far Orthanc's changes feed has been read;
//! `seen` lines (model `*`) the series a first start without backfill found already there.
//! A torn last line (a crash mid-write) is ignored. Each start rewrites the journal compacted
//! (latest line per key) through a fsynced temporary file and a rename. A lock file keeps a
//! second watcher off the same state folder.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a (series, model) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Selected; its result is not yet known to be stored.
    Claimed,
    /// Its result is in the PACS.
    Stored,
    /// The model does not select the series.
    Skipped,
    /// Refused for good (engine error, series gone).
    Failed,
    /// Already in the PACS when the watcher first started (no backfill): never processed.
    Seen,
}

/// One journal line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry {
    /// When it was written (RFC 3339).
    #[serde(default)]
    pub t: String,
    /// SeriesInstanceUID of the source series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// StudyInstanceUID of the source series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
    /// The model, as `name@version` (`*` for `seen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The state reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// SOPInstanceUID of the stored result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How far Orthanc's changes feed was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
}

impl Entry {
    /// A line for `(series, model)` reaching `state`.
    pub fn new(series: &str, study: &str, model: &str, state: State) -> Entry {
        Entry {
            series: Some(series.into()),
            study: Some(study.into()),
            model: Some(model.into()),
            state: Some(state),
            ..Entry::default()
        }
    }
}

/// Why the state folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file of the state folder cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another watcher holds the folder.
    #[error("{}: another `slicewise watch` uses this state folder", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A line other than the last does not read.
    #[error("{}: line {line} is not a journal entry: {why}", path.display())]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// Its 1-based number.
        line: usize,
        /// The parser's message.
        why: String,
    },
}

/// The journal, open for appending, with the state it holds.
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Latest entry per (series, model).
    keys: HashMap<(String, String), Entry>,
    cursor: Option<u64>,
    // Held for the journal's life: the lock is released when the file closes.
    _lock: File,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, locking the folder, and compacts it.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JournalError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(JournalError::Locked { path: lock_path });
        }
        let path = dir.join("journal.jsonl");
        let (keys, cursor) = replay(&path)?;
        compact(&path, &keys, cursor).map_err(io(&path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Journal {
            path,
            file,
            keys,
            cursor,
            _lock: lock,
        })
    }

    /// Appends `entry` and syncs it to disk before returning.
    pub fn record(&mut self, mut entry: Entry) -> Result<(), JournalError> {
        entry.t = now();
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        apply(&mut self.keys, &mut self.cursor, entry);
        Ok(())
    }

    /// The state of `(series, model)`, if any.
    pub fn state(&self, series: &str, model: &str) -> Option<State> {
        let key = (series.to_string(), model.to_string());
        self.keys.get(&key).and_then(|e| e.state)
    }

    /// Whether the journal has any line for `series` (any model, or `seen`).
    pub fn knows(&self, series: &str) -> bool {
        self.keys.keys().any(|(s, _)| s == series)
    }

    /// The (series, study, model) still `claimed`: to be redone.
    pub fn claimed(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = self
            .keys
            .iter()
            .filter(|(_, e)| e.state == Some(State::Claimed))
            .map(|((s, m), e)| (s.clone(), e.study.clone().unwrap_or_default(), m.clone()))
            .collect();
        out.sort();
        out
    }

    /// How far Orthanc's changes feed was read.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// Whether a first start already recorded the series it found (`seen` or anything else).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.cursor.is_none()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

type Keys = HashMap<(String, String), Entry>;

fn apply(keys: &mut Keys, cursor: &mut Option<u64>, e: Entry) {
    if let Some(c) = e.cursor {
        *cursor = Some(cursor.map_or(c, |old| old.max(c)));
    }
    if let (Some(s), Some(m)) = (e.series.clone(), e.model.clone()) {
        keys.insert((s, m), e);
    }
}

/// The state the journal at `path` holds (empty when there is none).
fn replay(path: &Path) -> Result<(Keys, Option<u64>), JournalError> {
    let (mut keys, mut cursor) = (Keys::new(), None);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((keys, cursor)),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.into(),
                source,
            })
        }
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Io {
            path: path.into(),
            source,
        })?;
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => apply(&mut keys, &mut cursor, e),
            // A crash mid-write tears the last line only: it was never acted on.
            Err(_) if i + 1 == last => log::warn!("{}: ignoring a torn last line", path.display()),
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.into(),
                    line: i + 1,
                    why: e.to_string(),
                })
            }
        }
    }
    Ok((keys, cursor))
}

/// Rewrites the journal with the latest line per key: a fsynced temporary file renamed over it.
fn compact(path: &Path, keys: &Keys, cursor: Option<u64>) -> std::io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = File::create(&tmp)?;
    let mut entries: Vec<&Entry> = keys.values().collect();
    entries.sort_by(|a, b| a.t.cmp(&b.t));
    let mut out = Vec::new();
    if let Some(c) = cursor {
        let e = Entry {
            t: now(),
            cursor: Some(c),
            ..Entry::default()
        };
        out.extend(serde_json::to_vec(&e).unwrap_or_default());
        out.push(b'\n');
    }
    for e in entries {
        out.extend(serde_json::to_vec(e).unwrap_or_default());
        out.push(b'\n');
    }
    f.write_all(&out)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename itself must survive a power cut.
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_per_key_wins_across_reopens_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.record(Entry::new("1.2", "1", "m@1", State::Claimed))
                .unwrap();
            j.record(Entry::new("1.3", "1", "m@1", State::Claimed))
                .unwrap();
            let mut stored = Entry::new("1.2", "1", "m@1", State::Stored);
            stored.result = Some("2.25.9".into());
            j.record(stored).unwrap();
            j.record(Entry {
                cursor: Some(7),
                ..Entry::default()
            })
            .unwrap();
            assert!(
                Journal::open(dir.path()).is_err(),
                "second watcher locked out"
            );
        }
        let path = dir.path().join("journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"series\":\"1.4\",\"mod").unwrap();
        drop(f);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.state("1.2", "m@1"), Some(State::Stored));
        assert_eq!(j.state("1.4", "m@1"), None);
        assert_eq!(j.claimed(), vec![("1.3".into(), "1".into(), "m@1".into())]);
        assert_eq!(j.cursor(), Some(7));
        assert!(j.knows("1.3") && !j.knows("1.5"));
        // Compacted: one line per key plus the cursor.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn a_bad_line_before_the_last_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("journal.jsonl"), "nonsense\n{}\n").unwrap();
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("journal.jsonl") && e.contains("line 1"), "{e}");
    }
}
