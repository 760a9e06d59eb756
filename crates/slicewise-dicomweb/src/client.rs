//! [`DicomWeb`]: the client of one PACS's DICOMweb service (e.g. Orthanc's
//! `http://127.0.0.1:8042/dicom-web`).
//!
//! - QIDO-RS (`GET series?...`) finds series, their study and instance count;
//! - WADO-RS (`GET studies/S/series/R`, multipart/related of application/dicom, in the stored
//!   transfer syntax) fetches a series' instances into a new folder ([`DicomWeb::fetch`]), or,
//!   for a client with a cache, into `<cache>/<SeriesInstanceUID>/`, reused while the PACS
//!   reports the same count ([`DicomWeb::series`]);
//! - STOW-RS (`POST studies`) stores a DICOM object (a SEG) whole, in one request;
//! - [`DicomWeb::forward`] sends a viewer's requests on, as MONAI Label's proxy does.
//!
//! Credentials: basic auth as the URL's user info (`http://user:password@host/...`), or a
//! bearer token ([`DicomWeb::bearer_token`]); neither is ever shown ([`redact`]).
//!
//! A fetch is written to the staging folder and renamed into the cache only once complete, so
//! a broken transfer leaves nothing behind. Every failure is a [`PacsError`]. This client
//! speaks HTTP to the PACS only: what a front end answers its own clients for each failure is
//! its choice, not this module's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::{PacsError, SetupError};
use crate::series::{items, text, SeriesInfo};

/// DICOM JSON, what QIDO-RS and STOW-RS answer.
const DICOM_JSON: &str = "application/dicom+json";
/// WADO-RS in the transfer syntax the PACS stored (no transcoding; the engine reads them all).
const ACCEPT_DICOM: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
/// How long connecting to the PACS may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while waiting for or reading a PACS answer: a PACS that stops sending is
/// treated as gone rather than holding a job place until the request's own time limit.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Modalities that are not images (a server's datastore listing leaves them out, as MONAI
/// Label's search filter does).
pub const NOT_IMAGES: [&str; 6] = ["SEG", "SR", "PR", "KO", "RTSTRUCT", "DOC"];

/// A series fetched (or found in the cache), ready for the engine.
#[derive(Debug, Clone)]
pub struct LocalSeries {
    /// The cache folder holding its instances.
    pub path: PathBuf,
    /// What QIDO-RS said of it.
    pub info: SeriesInfo,
    /// Whether it was downloaded now (false: the cache was current).
    pub downloaded: bool,
}

/// A DICOM object STOW-RS stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its RetrieveURL, when the PACS gives one.
    pub retrieve_url: Option<String>,
}

/// The DICOMweb client of one PACS, with its cache if it has one.
pub struct DicomWeb {
    client: reqwest::Client,
    /// The DICOMweb root, ending in `/` (credentials, if any, in its user info).
    root: Url,
    /// The root as logs and messages show it: no credentials.
    shown: String,
    /// A bearer token sent with every request, when set.
    token: Option<String>,
    /// Where [`DicomWeb::series`] keeps fetched series, when this client has a cache.
    cache: Option<PathBuf>,
    staging: PathBuf,
    max_bytes: usize,
    // Replacing a cached series is remove-then-rename: one at a time.
    replace: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DicomWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials: the root as shown, whether a token is set.
        f.debug_struct("DicomWeb")
            .field("url", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl DicomWeb {
    /// A client of the DICOMweb service at `url` (`http://user:password@host/...` for basic
    /// auth), staging downloads in `staging`, refusing series larger than `max_bytes`.
    pub fn new(url: &str, staging: &Path, max_bytes: usize) -> Result<DicomWeb, SetupError> {
        let bad = |why: String| SetupError::Url {
            url: redact(url),
            why,
        };
        let mut root = Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(root.scheme(), "http" | "https") || root.host().is_none() {
            return Err(bad("give an http:// or https:// URL".into()));
        }
        if root.scheme() == "https" && !cfg!(feature = "tls") {
            return Err(bad(
                "this build has no TLS: rebuild with `--features slicewise-dicomweb/tls`".into(),
            ));
        }
        root.set_query(None);
        root.set_fragment(None);
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        let shown = redact(root.as_str());
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("slicewise/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("cannot build an HTTP client: {e}")))?;
        Ok(DicomWeb {
            client,
            root,
            shown,
            token: None,
            cache: None,
            staging: staging.to_path_buf(),
            max_bytes,
            replace: tokio::sync::Mutex::new(()),
        })
    }

    /// Keeps the series [`DicomWeb::series`] fetches in `dir` (created if needed).
    pub fn with_cache(mut self, dir: impl Into<PathBuf>) -> Result<DicomWeb, SetupError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| SetupError::Cache {
            path: dir.clone(),
            source,
        })?;
        self.cache = Some(dir);
        Ok(self)
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer_token(mut self, token: impl Into<String>) -> DicomWeb {
        self.token = Some(token.into());
        self
    }

    /// The DICOMweb root, with its credentials: for the PACS's other APIs (Orthanc's REST).
    pub(crate) fn root(&self) -> &Url {
        &self.root
    }

    /// The DICOMweb root, without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The most bytes a series, or a request forwarded to the PACS, may have.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Finds series `uid` with QIDO-RS.
    pub async fn find_series(&self, uid: &str) -> Result<SeriesInfo, PacsError> {
        let what = format!("QIDO-RS series {uid}");
        let list = self
            .qido(&format!("series?SeriesInstanceUID={uid}"), &what)
            .await?;
        list.iter()
            .filter_map(SeriesInfo::from_json)
            .find(|s| s.series_uid == uid)
            .ok_or_else(|| PacsError::NoSuchSeries {
                url: self.shown.clone(),
                uid: uid.to_string(),
            })
    }

    /// Every image series in the PACS (QIDO-RS `series`), less non-image modalities.
    pub async fn list_series(&self) -> Result<Vec<SeriesInfo>, PacsError> {
        let list = self.qido("series", "QIDO-RS series").await?;
        Ok(list
            .iter()
            .filter_map(SeriesInfo::from_json)
            .filter(|s| {
                !s.modality
                    .as_deref()
                    .is_some_and(|m| NOT_IMAGES.contains(&m))
            })
            .collect())
    }

    /// The series a QIDO-RS query finds (`query`: the part after `series?`, e.g.
    /// `StudyDate=20240101-`; empty for all), whatever their modality.
    pub async fn query_series(&self, query: &str) -> Result<Vec<SeriesInfo>, PacsError> {
        let rel = match query {
            "" => "series".to_string(),
            q => format!("series?{q}"),
        };
        let list = self.qido(&rel, &format!("QIDO-RS {rel}")).await?;
        Ok(list.iter().filter_map(SeriesInfo::from_json).collect())
    }

    /// The series `uid` as a local folder: QIDO-RS first (the PACS is the source of truth, so
    /// an unreachable PACS fails the request even when the series is cached), then the cache if
    /// it holds as many instances as the PACS reports, else a WADO-RS download.
    pub async fn series(&self, uid: &str) -> Result<LocalSeries, PacsError> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| PacsError::Cache("this PACS client has no cache".into()))?;
        let info = self.find_series(uid).await?;
        let dest = cache.join(&info.series_uid);
        let cached = count_files(&dest);
        if cached > 0 && info.instances.is_none_or(|n| n == cached) {
            return Ok(LocalSeries {
                path: dest,
                info,
                downloaded: false,
            });
        }
        let staged = self.fetch(&info).await?;
        let _one_at_a_time = self.replace.lock().await;
        if dest.exists() {
            // Out of the way first, so that the new folder appears in one rename.
            let old = self
                .staging
                .join(format!("stale-{}", uuid::Uuid::new_v4().simple()));
            tokio::fs::rename(&dest, &old)
                .await
                .map_err(|e| PacsError::Cache(format!("{}: {e}", dest.display())))?;
            let _ = tokio::fs::remove_dir_all(&old).await;
        }
        tokio::fs::rename(staged.path(), &dest)
            .await
            .map_err(|e| PacsError::Cache(format!("{}: {e}", dest.display())))?;
        Ok(LocalSeries {
            path: dest,
            info,
            downloaded: true,
        })
    }

    /// Downloads every instance of the series (WADO-RS) into a new folder in the staging
    /// folder, removed when dropped; fails unless it holds as many instances as QIDO-RS
    /// reported.
    pub async fn fetch(&self, info: &SeriesInfo) -> Result<tempfile::TempDir, PacsError> {
        let what = format!("WADO-RS series {}", info.series_uid);
        let rel = format!("studies/{}/series/{}", info.study_uid, info.series_uid);
        let req = self
            .client
            .get(self.join(&rel))
            .header(header::ACCEPT, ACCEPT_DICOM);
        let resp = self.send(req, &what).await?;
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let boundary = multipart_boundary(&content_type).ok_or_else(|| {
            self.bad_answer(
                &what,
                format!("Content-Type {content_type:?} is not multipart/related with a boundary"),
            )
        })?;
        let dir = tempfile::Builder::new()
            .prefix("wado-")
            .tempdir_in(&self.staging)
            .map_err(|e| PacsError::Cache(format!("cannot stage a download: {e}")))?;
        let mut parts = multer::Multipart::new(resp.bytes_stream(), boundary);
        let (mut n, mut bytes) = (0usize, 0usize);
        loop {
            let field = parts.next_field().await;
            let Some(mut field) = field.map_err(|e| self.multipart_error(&what, e))? else {
                break;
            };
            let path = dir.path().join(format!("{n:05}.dcm"));
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| PacsError::Cache(format!("{}: {e}", path.display())))?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| self.multipart_error(&what, e))?
            {
                bytes += chunk.len();
                if bytes > self.max_bytes {
                    return Err(PacsError::TooLarge {
                        uid: info.series_uid.clone(),
                        limit: self.max_bytes,
                    });
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| PacsError::Cache(format!("{}: {e}", path.display())))?;
            }
            file.flush()
                .await
                .map_err(|e| PacsError::Cache(format!("{}: {e}", path.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(self.bad_answer(&what, "no instances in the answer".into()));
        }
        if let Some(expected) = info.instances.filter(|&e| e != n) {
            return Err(self.bad_answer(
                &what,
                format!("{n} instances, while QIDO-RS reported {expected}"),
            ));
        }
        log::info!(
            "fetched series {} from {}: {n} instances, {bytes} bytes",
            info.series_uid,
            self.shown
        );
        Ok(dir)
    }

    /// Stores one DICOM file (a SEG) with STOW-RS, whole, in one request.
    pub async fn store(&self, dicom: &[u8]) -> Result<Stored, PacsError> {
        let what = "STOW-RS of the DICOM result";
        let boundary = format!("slicewise-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::with_capacity(dicom.len() + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {}\r\n\r\n",
                dicom.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(dicom);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type =
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
        let req = self
            .client
            .post(self.join("studies"))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, DICOM_JSON)
            .body(body);
        let resp = self.send(req, what).await?;
        let answer = resp.bytes().await.map_err(|e| self.unreachable(what, &e))?;
        let v: Value = serde_json::from_slice(&answer)
            .map_err(|e| self.bad_answer(what, format!("not DICOM JSON: {e}")))?;
        if let Some(failed) = items(&v, "00081198").first() {
            // FailureReason (0008,1197): the PACS kept nothing of it.
            let reason = text(failed, "00081197").unwrap_or_else(|| "unknown".into());
            return Err(self.bad_answer(what, format!("the PACS refused it (reason {reason})")));
        }
        let stored = items(&v, "00081199");
        let Some(item) = stored.first() else {
            return Err(self.bad_answer(what, "no ReferencedSOPSequence in the answer".into()));
        };
        Ok(Stored {
            retrieve_url: text(item, "00081190"),
        })
    }

    /// Sends a viewer's request on to the PACS, as MONAI Label's `endpoints/proxy.py` does:
    /// `method` to `<root>/rel?query`, with the request's `Accept` and `Content-Type` and, for a
    /// POST, its `body`. Gives the PACS's answer as it is, whatever its status: only a PACS that
    /// cannot be reached, or a `rel` that would leave the root, is an error.
    pub async fn forward(
        &self,
        method: Method,
        rel: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: impl Into<reqwest::Body>,
    ) -> Result<reqwest::Response, PacsError> {
        let mut url = self.join(rel);
        url.set_query(query);
        if !url.as_str().starts_with(self.root.as_str()) {
            return Err(PacsError::OutsideRoot { path: rel.into() });
        }
        let what = format!("{method} {rel}");
        let mut req = self.authorised(self.client.request(method.clone(), url));
        for name in [header::ACCEPT, header::CONTENT_TYPE] {
            if let Some(v) = headers.get(&name) {
                req = req.header(name, v.clone());
            }
        }
        if method == Method::POST {
            req = req.body(body);
        }
        req.send().await.map_err(|e| self.unreachable(&what, &e))
    }

    /// `GET url` answered with JSON (Orthanc's REST API shares this client and its
    /// credentials).
    pub(crate) async fn get_json(&self, url: Url, what: &str) -> Result<Value, PacsError> {
        let req = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json");
        let resp = self.send(req, what).await?;
        let body = resp.bytes().await.map_err(|e| self.unreachable(what, &e))?;
        serde_json::from_slice(&body).map_err(|e| self.bad_answer(what, format!("not JSON: {e}")))
    }

    async fn qido(&self, rel: &str, what: &str) -> Result<Vec<Value>, PacsError> {
        let req = self
            .client
            .get(self.join(rel))
            .header(header::ACCEPT, DICOM_JSON);
        let resp = self.send(req, what).await?;
        // 204: no match (some servers answer so rather than with []).
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let body = resp.bytes().await.map_err(|e| self.unreachable(what, &e))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Array(list)) => Ok(list),
            Ok(_) => Err(self.bad_answer(what, "not a JSON array".into())),
            Err(e) => Err(self.bad_answer(what, format!("not JSON: {e}"))),
        }
    }

    /// Sends a request; transport failures and error statuses become [`PacsError`]s.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, PacsError> {
        let resp = self
            .authorised(req)
            .send()
            .await
            .map_err(|e| self.unreachable(what, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(PacsError::Status {
            url: self.shown.clone(),
            what: what.to_string(),
            status: status.as_u16(),
            body: body
                .chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string(),
        })
    }

    /// The request with the bearer token, when there is one (basic auth rides in the URL).
    fn authorised(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    fn join(&self, rel: &str) -> Url {
        // `rel` is built from validated UIDs or checked proxy paths: joining cannot fail.
        self.root.join(rel).unwrap_or_else(|_| self.root.clone())
    }

    fn unreachable(&self, what: &str, e: &reqwest::Error) -> PacsError {
        // reqwest's own message only repeats the URL; its causes say what happened.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "the exchange broke off"
        };
        let reason = match std::error::Error::source(e) {
            Some(cause) => format!("{kind}: {}", error_chain(cause)),
            None => kind.to_string(),
        };
        PacsError::Unreachable {
            url: self.shown.clone(),
            what: what.to_string(),
            reason,
        }
    }

    pub(crate) fn bad_answer(&self, what: &str, why: String) -> PacsError {
        PacsError::BadAnswer {
            url: self.shown.clone(),
            what: what.to_string(),
            why,
        }
    }

    fn multipart_error(&self, what: &str, e: multer::Error) -> PacsError {
        match e {
            // The connection broke mid-answer.
            multer::Error::StreamReadFailed(source) => PacsError::Unreachable {
                url: self.shown.clone(),
                what: what.to_string(),
                reason: format!("the answer broke off: {}", error_chain(&*source)),
            },
            other => self.bad_answer(what, format!("malformed multipart/related: {other}")),
        }
    }
}

/// The `boundary` parameter of a multipart Content-Type (quotes removed).
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';').map(str::trim);
    if !params
        .next()?
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Files directly in `dir` (0 when it does not exist).
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .count()
        })
        .unwrap_or(0)
}

/// A URL without its user info (which may hold a password).
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<the given URL>".into(),
    }
}

/// An error and its causes, e.g. "client error (Connect): tcp connect error: Connection refused
/// (os error 111)".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_found_quoted_or_not() {
        let b = |s| multipart_boundary(s);
        assert_eq!(
            b("multipart/related; type=\"application/dicom\"; boundary=ab-12").as_deref(),
            Some("ab-12")
        );
        assert_eq!(
            b("multipart/related; boundary=\"x y\"; type=application/dicom").as_deref(),
            Some("x y")
        );
        assert_eq!(b("application/dicom; boundary=x"), None);
        assert_eq!(b("multipart/related"), None);
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact("http://user:pw@host:8042/dicom-web/"),
            "http://host:8042/dicom-web/"
        );
    }

    #[test]
    fn a_bearer_token_never_shows_in_the_client() {
        let dir = std::env::temp_dir();
        let c = DicomWeb::new("http://u:secret@h:1/dicom-web", &dir, 1)
            .unwrap()
            .bearer_token("t0ken");
        assert_eq!(c.url(), "http://h:1/dicom-web/");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
