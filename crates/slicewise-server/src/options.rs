//! [`ServeOptions`]: everything `slicewise serve` can be told, with builder-style setters.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use slicewise::infer::{Device, ModelOptions};

/// Called once with the address the server listens on (useful with port 0).
pub type OnListening = Arc<dyn Fn(SocketAddr) + Send + Sync>;

/// How the server is set up. `ServeOptions::default()` listens on 127.0.0.1:8000, loads
/// `./models/*.onnx`, keeps its datastore under the user's cache folder, runs one job at a time
/// with four waiting, and requires no token.
#[derive(Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder whose `*.onnx` files are loaded, each once, at start.
    pub models_dir: PathBuf,
    /// Datastore folder (`None`: [`default_datastore`]).
    pub datastore: Option<PathBuf>,
    /// Bearer token every endpoint requires, when set.
    pub token: Option<String>,
    /// Origins allowed by CORS (`*` allows any); none: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Segmentation jobs that run at once.
    pub workers: usize,
    /// Jobs that may wait for a worker; past it requests get 503 with `Retry-After`.
    pub queue: usize,
    /// Largest accepted request body (uploads), in bytes.
    pub max_upload_bytes: usize,
    /// Longest a request may take; a job whose request times out is cancelled.
    pub request_timeout: Duration,
    /// How long an idle session (`PUT /session/`) is kept unless the client asks for less.
    pub session_expiry: Duration,
    /// Device, threads and ONNX Runtime library for every model.
    pub model: ModelOptions,
    /// Slices per inference batch.
    pub batch_size: usize,
    /// DICOMweb root of a PACS (e.g. `http://127.0.0.1:8042/dicom-web`): image ids that are
    /// UIDs name its series, DICOM SEG results are stored back, `/proxy/dicom/` forwards to it.
    pub dicomweb: Option<String>,
    /// Folder of a built OHIF viewer to serve at `/ohif/` (MONAI Label's, from its wheel).
    pub ohif_dir: Option<PathBuf>,
    /// Told the bound address once the server listens.
    pub on_listening: Option<OnListening>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            models_dir: PathBuf::from("models"),
            datastore: None,
            token: None,
            cors_origins: Vec::new(),
            workers: 1,
            queue: 4,
            max_upload_bytes: 1 << 30,
            request_timeout: Duration::from_secs(600),
            session_expiry: Duration::from_secs(3600),
            model: ModelOptions::default(),
            batch_size: 8,
            dicomweb: None,
            ohif_dir: None,
            on_listening: None,
        }
    }
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("models_dir", &self.models_dir)
            .field("datastore", &self.datastore)
            // Never print the secret itself.
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cors_origins", &self.cors_origins)
            .field("workers", &self.workers)
            .field("queue", &self.queue)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("session_expiry", &self.session_expiry)
            .field("model", &self.model)
            .field("batch_size", &self.batch_size)
            .field(
                "dicomweb",
                &self.dicomweb.as_deref().map(crate::dicomweb::redact),
            )
            .field("ohif_dir", &self.ohif_dir)
            .finish_non_exhaustive()
    }
}

impl ServeOptions {
    /// Sets the listen address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// Sets the models folder.
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = dir.into();
        self
    }
    /// Sets the datastore folder.
    pub fn datastore(mut self, dir: impl Into<PathBuf>) -> Self {
        self.datastore = Some(dir.into());
        self
    }
    /// Requires `Authorization: Bearer <token>` on every endpoint.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Allows one more CORS origin (`*`: any).
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }
    /// Sets how many jobs run at once (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
    /// Sets how many jobs may wait.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }
    /// Sets the request body limit in bytes.
    pub fn max_upload_bytes(mut self, n: usize) -> Self {
        self.max_upload_bytes = n;
        self
    }
    /// Sets the per-request timeout.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    /// Sets the longest a session is kept.
    pub fn session_expiry(mut self, d: Duration) -> Self {
        self.session_expiry = d;
        self
    }
    /// Sets the execution provider.
    pub fn device(mut self, d: Device) -> Self {
        self.model.device = d;
        self
    }
    /// Sets ONNX Runtime's intra-op threads per model.
    pub fn threads(mut self, n: usize) -> Self {
        self.model.threads = Some(n);
        self
    }
    /// Sets the ONNX Runtime library.
    pub fn runtime_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.model.runtime_path = Some(p.into());
        self
    }
    /// Sets the slices per inference batch (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Uses the DICOMweb service at `url` as the PACS.
    pub fn dicomweb(mut self, url: impl Into<String>) -> Self {
        self.dicomweb = Some(url.into());
        self
    }
    /// Serves the OHIF viewer in `dir` at `/ohif/`.
    pub fn ohif_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ohif_dir = Some(dir.into());
        self
    }
    /// Calls `f` with the bound address once the server listens.
    pub fn on_listening(mut self, f: impl Fn(SocketAddr) + Send + Sync + 'static) -> Self {
        self.on_listening = Some(Arc::new(f));
        self
    }
}

/// The datastore used when none is given: `$XDG_CACHE_HOME/slicewise/datastore`, else
/// `~/.cache/slicewise/datastore`, else `slicewise-datastore` in the temporary folder. A cache
/// folder, like MONAI Label's own default: uploads survive restarts but are not precious.
pub fn default_datastore() -> PathBuf {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(non_empty)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(non_empty)
                .map(|h| h.join(".cache"))
        })
        .map(|c| c.join("slicewise").join("datastore"))
        .unwrap_or_else(|| std::env::temp_dir().join("slicewise-datastore"))
}
