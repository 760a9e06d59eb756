//! Sessions (`PUT /session/`): an image uploaded for a while rather than added to the datastore.
//! 3D Slicer's extension segments a volume loaded in Slicer this way: it uploads the volume as
//! a session, then sends `session_id` with each infer request.
//!
//! Each session is a folder `<root>/sessions/<uuid>/` holding `session.json` and the image
//! (`image<ext>` or the folder `image/`). A session idle for longer than its expiry is removed
//! the next time sessions are touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::datastore::{Staged, IMAGE_EXTENSIONS};
use crate::error::{ApiError, ServeError};

/// What MONAI Label says about a session (its `SessionInfo`): `name` and `path` are the id,
/// `image` the stored image's file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session id.
    pub name: String,
    /// The session id (MONAI Label gives its folder; paths of this server stay private).
    pub path: String,
    /// The image's file name inside the session.
    pub image: String,
    /// Free-form metadata (empty).
    pub meta: serde_json::Value,
    /// Creation time, Unix seconds.
    pub create_ts: u64,
    /// Last use, Unix seconds.
    pub last_access_ts: u64,
    /// Seconds of idleness after which the session is removed.
    pub expiry: u64,
}

/// The sessions folder.
pub struct Sessions {
    dir: PathBuf,
    max_expiry: Duration,
}

impl Sessions {
    /// Opens (creating) `<root>/sessions`.
    pub fn open(root: &Path, max_expiry: Duration) -> Result<Sessions, ServeError> {
        let dir = root.join("sessions");
        std::fs::create_dir_all(&dir).map_err(|source| ServeError::Io {
            action: "create folder",
            path: dir.clone(),
            source,
        })?;
        Ok(Sessions { dir, max_expiry })
    }

    /// Makes a session of a staged image; `expiry` seconds (0 or more than the server's
    /// maximum: the maximum).
    pub fn create(&self, staged: Staged, expiry: u64) -> Result<SessionInfo, ApiError> {
        self.purge_expired();
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.dir.join(&id);
        let internal = |e: std::io::Error| ApiError::internal(format!("cannot store session: {e}"));
        std::fs::create_dir(&dir).map_err(internal)?;
        let image = staged.commit(&dir.join("image")).map_err(internal)?;
        let max = self.max_expiry.as_secs();
        let now = now();
        let info = SessionInfo {
            name: id.clone(),
            path: id,
            image: file_name(&image),
            meta: serde_json::json!({}),
            create_ts: now,
            last_access_ts: now,
            expiry: if expiry == 0 || expiry > max {
                max
            } else {
                expiry
            },
        };
        write_info(&dir, &info).map_err(internal)?;
        Ok(info)
    }

    /// The session `id` and its image's path; with `touch`, its idle clock restarts. 404 when
    /// it does not exist or has expired.
    pub fn get(&self, id: &str, touch: bool) -> Result<(SessionInfo, PathBuf), ApiError> {
        self.purge_expired();
        let dir = self.session_dir(id)?;
        let mut info = read_info(&dir).ok_or_else(|| not_found(id))?;
        if touch {
            info.last_access_ts = now();
            let _ = write_info(&dir, &info);
        }
        let image = image_path(&dir).ok_or_else(|| not_found(id))?;
        Ok((info, image))
    }

    /// Removes the session `id`, returning what it was.
    pub fn remove(&self, id: &str) -> Result<SessionInfo, ApiError> {
        let (info, _) = self.get(id, false)?;
        let _ = std::fs::remove_dir_all(self.session_dir(id)?);
        Ok(info)
    }

    /// The folder of session `id`; only a UUID is a session id, so it never leaves `sessions/`.
    fn session_dir(&self, id: &str) -> Result<PathBuf, ApiError> {
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found(id))?;
        Ok(self.dir.join(uuid.hyphenated().to_string()))
    }

    fn purge_expired(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = now();
        for dir in entries.flatten().map(|e| e.path()) {
            let expired = match read_info(&dir) {
                Some(i) => i.last_access_ts.saturating_add(i.expiry) < now,
                // A folder without a readable record is a failed creation.
                None => true,
            };
            if expired {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_session",
        format!("no session {id:?} (it may have expired)"),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn image_path(dir: &Path) -> Option<PathBuf> {
    let folder = dir.join("image");
    if folder.is_dir() {
        return Some(folder);
    }
    IMAGE_EXTENSIONS
        .iter()
        .map(|e| dir.join(format!("image{e}")))
        .find(|p| p.is_file())
}

fn read_info(dir: &Path) -> Option<SessionInfo> {
    let text = std::fs::read(dir.join("session.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes `session.json` through a temporary file, so readers never see half of it.
fn write_info(dir: &Path, info: &SessionInfo) -> std::io::Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(tmp.as_file(), info)?;
    tmp.persist(dir.join("session.json"))
        .map(|_| ())
        .map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_uuid_ids_are_unknown_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sessions::open(dir.path(), Duration::from_secs(60)).unwrap();
        for id in ["../images", "x", "00000000-0000-0000-0000-000000000000"] {
            assert_eq!(s.get(id, false).unwrap_err().status.as_u16(), 404, "{id}");
        }
    }
}
